//! Analytics: summaries of the daily rollups, and the raw click log.

use super::{Shortener, owned_by};
use crate::analytics;
use crate::error::{Error, Result};
use crate::model::{AnalyticsSummary, Click, Cursor, Page, Principal};
use crate::records::ClickQuery;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Largest page of raw clicks.
pub const MAX_CLICK_PAGE: u32 = 1000;
/// Default page of raw clicks.
pub const DEFAULT_CLICK_PAGE: u32 = 100;
/// How long raw clicks are kept unless the builder says otherwise.
pub const DEFAULT_CLICK_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Which raw clicks to read, as a client asks.
#[derive(Debug, Clone, Default)]
pub struct ClickOptions {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only clicks at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only clicks before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl Shortener {
    /// The analytics summary of a link of the caller's over the last `days` days
    /// (1–365, today included). `domain` is the link's short domain (`None`: the
    /// default).
    pub async fn analytics_summary(
        &self,
        principal: &Principal,
        domain: Option<&str>,
        short_code: &str,
        days: u32,
    ) -> Result<AnalyticsSummary> {
        if !(1..=365).contains(&days) {
            return Err(Error::invalid(
                "days",
                "invalid_days",
                format!("must be between 1 and 365, got {days}"),
            ));
        }
        let link = owned_by(self.link_by_code(domain, short_code).await?, principal)?;
        let to = self.inner.clock.now().date_naive();
        let from = to - chrono::Days::new(u64::from(days) - 1);
        let window = self.inner.analytics.rollups(link.id, from, to).await?;
        Ok(analytics::summarize(&link.short_code, from, to, window))
    }

    /// A page of the raw clicks of a link of the caller's, newest first (bots included,
    /// marked). Clicks show within a few seconds, like the summary.
    pub async fn click_log(
        &self,
        principal: &Principal,
        domain: Option<&str>,
        short_code: &str,
        options: ClickOptions,
    ) -> Result<Page<Click>> {
        let limit = options.limit.unwrap_or(DEFAULT_CLICK_PAGE);
        if !(1..=MAX_CLICK_PAGE).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                "invalid_limit",
                format!("must be between 1 and {MAX_CLICK_PAGE}, got {limit}"),
            ));
        }
        if let (Some(from), Some(to)) = (options.from, options.to)
            && from >= to
        {
            return Err(Error::invalid("to", "invalid_range", "must be after from"));
        }
        let cursor = options.cursor.as_deref().map(Cursor::decode).transpose()?;
        let link = owned_by(self.link_by_code(domain, short_code).await?, principal)?;
        let mut items = self
            .inner
            .analytics
            .clicks(&ClickQuery {
                link_id: link.id,
                from: options.from,
                to: options.to,
                after: cursor.map(|c| c.id),
                limit: limit + 1,
            })
            .await?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = more.then(|| items.last()).flatten().map(|c| Cursor {
            created_at: c.at,
            id: c.id,
            clicks: None,
        });
        Ok(Page { items, next_cursor })
    }

    /// Removes raw clicks older than the retention (see
    /// [`ShortenerBuilder::click_retention`](crate::ShortenerBuilder::click_retention));
    /// rollups, and so summaries, stay. Runs every hour by itself; returns what the store
    /// removed.
    pub async fn prune_clicks(&self) -> Result<u64> {
        let retention = chrono::Duration::from_std(self.inner.config.click_retention)
            .unwrap_or(chrono::Duration::MAX);
        let before = self
            .inner
            .clock
            .now()
            .checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.inner.analytics.prune_clicks(before).await
    }
}
