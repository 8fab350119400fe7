//! Analytics summaries.

use super::{Shortener, owned_by};
use crate::analytics;
use crate::error::{Error, Result};
use crate::model::{AnalyticsSummary, Principal};

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
}
