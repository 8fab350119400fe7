//! Links in and out: export pages and imports (see [`crate::transfer`] for the files).

use super::Shortener;
use crate::error::{Error, Result};
use crate::model::{Cursor, Link, Page, Principal};
use crate::records::LinkQuery;
use crate::transfer::{ImportFailure, ImportReport, ImportRow, parse_import};

/// Links per page of an export.
pub const EXPORT_PAGE: u32 = 100;
/// Rows of an import in flight at once.
const IMPORT_CONCURRENCY: usize = 16;

impl ImportReport {
    /// Adds one row's outcome; a backend failure stops the import.
    fn count(&mut self, line: u64, outcome: Result<bool>) -> Result<()> {
        match outcome {
            Ok(true) => self.created += 1,
            Ok(false) => self.skipped += 1,
            Err(e @ Error::Backend { .. }) => return Err(e),
            Err(e) => self.failed.push(ImportFailure::of(line, &e)),
        }
        Ok(())
    }
}

impl Shortener {
    /// A page of the caller's links for an export, newest first: call again with the
    /// page's `next_cursor` until it is `None`. Memory stays bounded by a page whatever
    /// the number of links.
    pub async fn export_page(
        &self,
        principal: &Principal,
        cursor: Option<Cursor>,
    ) -> Result<Page<Link>> {
        self.inner
            .links
            .list(&LinkQuery {
                owner_id: Some(principal.user_id),
                domain: None,
                blocked: None,
                limit: EXPORT_PAGE,
                cursor,
                sort: crate::LinkSort::Newest,
                tag: None,
                text: None,
            })
            .await
    }

    /// Imports a CSV file (hoplink's export, or Bitly's or Shlink's) into the caller's
    /// links; see [`Shortener::import_rows`].
    pub async fn import_csv(&self, principal: &Principal, bytes: &[u8]) -> Result<ImportReport> {
        let (_, rows) = parse_import(bytes)?;
        self.import_rows(principal, rows).await
    }

    /// Imports rows into the caller's links. Each row is validated like a create (URL
    /// rules, blocklist); it keeps its code when that code is free on its domain. A row
    /// whose code exists with the same URL and owner is skipped (so a second import of a
    /// file creates nothing), one whose code another link has fails (`alias_taken`).
    /// Failed rows don't stop the others; only a backend failure stops the import.
    ///
    /// Rows are imported 16 at a time; a row naming a code an earlier
    /// row of its window names waits for that one, so the outcome is that of importing
    /// them in order.
    pub async fn import_rows(
        &self,
        principal: &Principal,
        rows: Vec<std::result::Result<ImportRow, ImportFailure>>,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut seen = std::collections::HashSet::new();
            let mut now = Vec::new();
            let mut later = Vec::new();
            for row in rows.by_ref().take(IMPORT_CONCURRENCY * 4) {
                match row {
                    Err(failure) => report.failed.push(failure),
                    Ok(row) => {
                        let key = (
                            row.link.domain.as_deref().map(str::to_ascii_lowercase),
                            row.link
                                .custom_alias
                                .as_deref()
                                .map(str::to_ascii_lowercase),
                        );
                        if key.1.is_none() || seen.insert(key) {
                            now.push(row);
                        } else {
                            later.push(row);
                        }
                    }
                }
            }
            let mut tasks = tokio::task::JoinSet::new();
            let mut queued = now.into_iter();
            loop {
                while tasks.len() < IMPORT_CONCURRENCY {
                    let Some(row) = queued.next() else { break };
                    let (shortener, principal) = (self.clone(), *principal);
                    tasks.spawn(async move {
                        let line = row.line;
                        (line, shortener.import_row(&principal, row).await)
                    });
                }
                let Some(done) = tasks.join_next().await else {
                    break;
                };
                let (line, outcome) = done.map_err(|e| Error::backend("import", e))?;
                report.count(line, outcome)?;
            }
            for row in later {
                let line = row.line;
                let outcome = self.import_row(principal, row).await;
                report.count(line, outcome)?;
            }
        }
        report.failed.sort_by_key(|f| f.line);
        Ok(report)
    }

    /// One row: `true` created, `false` skipped (already here).
    async fn import_row(&self, principal: &Principal, mut row: ImportRow) -> Result<bool> {
        let domain = match self.domain_named(row.link.domain.as_deref()).await {
            Ok(domain) => domain,
            Err(Error::Invalid { .. }) if !row.domain_required => None,
            Err(e) => return Err(e),
        };
        row.link.domain.clone_from(&domain);
        if let Some(code) = row.link.custom_alias.as_deref()
            && crate::code::is_plausible_code(code)
            && let Some(existing) = self
                .inner
                .links
                .get_by_code(domain.as_deref(), code)
                .await?
        {
            let url = self
                .validate_destination("original_url", &row.link.original_url)
                .await?;
            if existing.owner_id == Some(principal.user_id) && existing.original_url == url {
                return Ok(false);
            }
            return Err(Error::Conflict {
                code: "alias_taken",
                message: format!("short code {code:?} is already taken"),
            });
        }
        self.create_link(row.link, Some(principal), Some(row.is_active))
            .await
            .map(|_| true)
    }
}
