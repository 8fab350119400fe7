//! Links in and out: `/api/v1/urls/export` (a CSV streamed page by page) and
//! `/api/v1/urls/import` (hoplink's, Bitly's or Shlink's CSV).

use super::{ApiResult, Auth, Tag};
use crate::state::AppState;
use hoplink::transfer::{EXPORT_HEADER, ImportFailure, ImportReport, export_row};
use hoplink::{Cursor, Principal, Shortener};
use poem::web::Data;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi, ResponseContent};
use std::sync::Arc;

/// A row that was not imported.
#[derive(Debug, Object)]
pub struct ImportFailureBody {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// Why, for programs: `invalid_url`, `alias_taken`, `invalid_row`, `blocked_host`, …
    pub code: String,
    /// Why, for people.
    pub detail: String,
}

/// What an import did.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ImportReportBody {
    /// Links created.
    pub created: u64,
    /// Rows whose link is already here (same code, URL and owner).
    pub skipped: u64,
    /// Rows refused, each with its line and reason; the other rows were imported.
    pub failed: Vec<ImportFailureBody>,
}

impl From<ImportReport> for ImportReportBody {
    fn from(r: ImportReport) -> Self {
        ImportReportBody {
            created: r.created,
            skipped: r.skipped,
            failed: r
                .failed
                .into_iter()
                .map(|ImportFailure { line, code, detail }| ImportFailureBody {
                    line,
                    code,
                    detail,
                })
                .collect(),
        }
    }
}

impl poem_openapi::types::Example for ImportReportBody {
    fn example() -> Self {
        ImportReportBody {
            created: 2,
            skipped: 1,
            failed: vec![ImportFailureBody {
                line: 4,
                code: "alias_taken".into(),
                detail: "short code \"launch\" is already taken".into(),
            }],
        }
    }
}

/// A CSV file: hoplink's export, Bitly's or Shlink's, told apart by the header line.
#[derive(ApiRequest)]
pub enum CsvUpload {
    /// At most 10 MiB.
    #[oai(content_type = "text/csv")]
    Csv(Binary<Vec<u8>>),
}

/// A CSV document.
#[derive(ResponseContent)]
pub enum CsvContent {
    /// RFC 4180, UTF-8; cells that start with `=`, `+`, `-` or `@` get a leading `'`.
    #[oai(content_type = "text/csv; charset=utf-8")]
    Csv(Binary<poem::Body>),
}

#[derive(ApiResponse)]
enum OkExport {
    /// Your links, newest first, one per row after the header.
    #[oai(status = 200)]
    Ok(CsvContent, #[oai(header = "content-disposition")] String),
}

#[derive(ApiResponse)]
enum OkImport {
    /// What was created, skipped and refused.
    #[oai(status = 200)]
    Ok(Json<ImportReportBody>),
}

/// The export as a stream of pages: memory stays bounded by a page.
fn export_body(shortener: Shortener, principal: Principal) -> poem::Body {
    enum Next {
        Header,
        Page(Option<Cursor>),
        Done,
    }
    let pages = futures_util::stream::unfold(Next::Header, move |next| {
        let shortener = shortener.clone();
        async move {
            let cursor = match next {
                Next::Done => return None,
                Next::Header => {
                    let chunk = format!("{EXPORT_HEADER}\r\n");
                    return Some((Ok(chunk.into_bytes()), Next::Page(None)));
                }
                Next::Page(cursor) => cursor,
            };
            match shortener.export_page(&principal, cursor).await {
                Ok(page) => {
                    let mut chunk = String::new();
                    for link in &page.items {
                        let url = shortener.link_url(link);
                        // Empty for the default domain: the file imports into another
                        // deployment's default domain, whatever its host.
                        let host = link.domain.as_deref().unwrap_or_default();
                        export_row(&mut chunk, link, host, &url);
                    }
                    let next = match page.next_cursor {
                        Some(cursor) => Next::Page(Some(cursor)),
                        None => Next::Done,
                    };
                    Some((Ok(chunk.into_bytes()), next))
                }
                // The body ends without its last chunk: the client sees a broken
                // transfer, never a short file that looks whole.
                Err(e) => {
                    tracing::warn!(error = %e, "export stopped");
                    Some((Err(std::io::Error::other(e.to_string())), Next::Done))
                }
            }
        }
    });
    poem::Body::from_bytes_stream(pages)
}

pub struct TransferApi;

#[OpenApi]
impl TransferApi {
    /// Export your links as CSV
    ///
    /// Streamed page by page, newest first. Columns: `short_code`, `domain` (its host;
    /// empty for the default domain),
    /// `short_url`, `original_url`, `title`, `tags` (joined by `|`), `redirect_type`,
    /// `created_at`, `expires_at`, `max_clicks`, `click_count`, `is_active`. The file
    /// imports into another account or deployment as the same links.
    #[oai(
        path = "/api/v1/urls/export",
        method = "get",
        operation_id = "export_links",
        tag = "Tag::Urls"
    )]
    async fn export_links(&self, state: Data<&Arc<AppState>>, auth: Auth) -> ApiResult<OkExport> {
        let body = export_body(state.shortener.clone(), auth.principal());
        Ok(OkExport::Ok(
            CsvContent::Csv(Binary(body)),
            "attachment; filename=\"hoplink-links.csv\"".into(),
        ))
    }

    /// Import links from CSV
    ///
    /// hoplink's export, Bitly's CSV export or Shlink's, told apart by the header line.
    /// Each row is checked like a create; it keeps its short code when that code is free
    /// on its domain. A row whose code you already have with the same URL is skipped (a
    /// second import of a file creates nothing); a code held by another link fails with
    /// `alias_taken`. Failed rows don't stop the others. A file that is not CSV, or whose
    /// header is none of these, is refused whole (422).
    #[oai(
        path = "/api/v1/urls/import",
        method = "post",
        operation_id = "import_links",
        tag = "Tag::Urls"
    )]
    async fn import_links(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: CsvUpload,
    ) -> ApiResult<OkImport> {
        let CsvUpload::Csv(Binary(bytes)) = body;
        let report = state
            .shortener
            .import_csv(&auth.principal(), &bytes)
            .await?;
        Ok(OkImport::Ok(Json(report.into())))
    }
}
