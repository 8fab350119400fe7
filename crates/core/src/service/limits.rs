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
        self.check_rate_limit_cost(scope, subject, 1).await
    }

    /// [`Shortener::check_rate_limit`] for a request that counts as `cost` requests (a
    /// bulk request of `cost` items): allowed only when all fit.
    pub async fn check_rate_limit_cost(
        &self,
        scope: LimitScope,
        subject: &str,
        cost: u32,
    ) -> Result<Option<RateLimitDecision>> {
        let Some(quota) = self.inner.config.limits.quota(scope) else {
            return Ok(None);
        };
        let limiter = &self.inner.limiter;
        // Built on the stack: the redirect flood guard runs on every redirect.
        let mut key = StackString::<128>::new();
        let built = [scope.as_str(), ":", subject]
            .into_iter()
            .try_for_each(|part| key.write_str(part));
        let decision = match (built, cost) {
            (Ok(()), 1) => match limiter.check_local(key.as_str(), quota) {
                Some(decision) => decision,
                None => limiter.check(key.as_str(), quota).await?,
            },
            (Ok(()), cost) => limiter.check_cost(key.as_str(), quota, cost).await?,
            (Err(_), cost) => {
                let key = format!("{}:{subject}", scope.as_str());
                limiter.check_cost(&key, quota, cost).await?
            }
        };
        Ok(Some(decision))
    }
}
