//! Links in and out: export pages and imports (see [`crate::transfer`] for the files).

use super::Shortener;
use crate::error::{Error, Result};
use crate::model::{Cursor, Link, Page, Principal};
use crate::records::LinkQuery;
use crate::transfer::{ImportFailure, ImportReport, ImportRow, parse_import};

/// Links per page of an export.
pub const EXPORT_PAGE: u32 = 100;

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
    pub async fn import_rows(
        &self,
        principal: &Principal,
        rows: Vec<std::result::Result<ImportRow, ImportFailure>>,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        for row in rows {
            let row = match row {
                Ok(row) => row,
                Err(failure) => {
                    report.failed.push(failure);
                    continue;
                }
            };
            let line = row.line;
            match self.import_row(principal, row).await {
                Ok(true) => report.created += 1,
                Ok(false) => report.skipped += 1,
                Err(e @ Error::Backend { .. }) => return Err(e),
                Err(e) => report.failed.push(ImportFailure::of(line, &e)),
            }
        }
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
