//! Rate limits.

use super::Shortener;
use crate::error::Result;
use crate::limiter::{LimitScope, RateLimitDecision};
use crate::text::StackString;
use std::fmt::Write as _;

impl Shortener {
    /// Counts a request against a scope's quota; `None` when the scope has no limit.
    /// Refused requests come back with `allowed: false` (not as an error) so that the
    /// caller can send the `RateLimit-*` headers either way.
    pub async fn check_rate_limit(
        &self,
        scope: LimitScope,
        subject: &str,
    ) -> Result<Option<RateLimitDecision>> {
        let Some(quota) = self.inner.config.limits.quota(scope) else {
            return Ok(None);
        };
        // Built on the stack: the redirect flood guard runs on every redirect.
        let mut key = StackString::<128>::new();
        let built = [scope.as_str(), ":", subject]
            .into_iter()
            .try_for_each(|part| key.write_str(part));
        let decision = if built.is_ok() {
            let key = key.as_str();
            match self.inner.limiter.check_local(key, quota) {
                Some(decision) => decision,
                None => self.inner.limiter.check(key, quota).await?,
            }
        } else {
            let key = format!("{}:{subject}", scope.as_str());
            self.inner.limiter.check(&key, quota).await?
        };
        Ok(Some(decision))
    }
}
