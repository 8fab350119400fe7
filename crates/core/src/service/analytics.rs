//! Analytics summaries.

use super::{Shortener, owned_by};
use crate::analytics;
use crate::code::is_plausible_code;
use crate::error::{Error, Result};
use crate::model::{AnalyticsSummary, Principal};

impl Shortener {
    /// The analytics summary of a link of the caller's over the last `days` days
    /// (1–365, today included).
    pub async fn analytics_summary(
        &self,
        principal: &Principal,
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
        if !is_plausible_code(short_code) {
            return Err(Error::NotFound { what: "link" });
        }
        let link = self
            .inner
            .links
            .get_by_code(short_code)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        let link = owned_by(link, principal)?;
        let to = self.inner.clock.now().date_naive();
        let from = to - chrono::Days::new(u64::from(days) - 1);
        let window = self.inner.analytics.rollups(link.id, from, to).await?;
        Ok(analytics::summarize(&link.short_code, from, to, window))
    }
}
