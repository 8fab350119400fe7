//! The hot path: [`Shortener::resolve`].

use super::Shortener;
use crate::agent;
use crate::analytics::{self, PendingClick};
use crate::code::is_plausible_code;
use crate::error::{Error, GoneReason, Result};
use crate::model::{RedirectType, Visit};
use crate::records::{CacheEntry, ClickBudget, RedirectTarget};
use crate::stats::Stats;
use std::sync::Arc;
use std::time::Instant;

/// A redirect to answer with.
#[derive(Debug, Clone)]
pub struct Redirect {
    target: Arc<RedirectTarget>,
}

impl Redirect {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        &self.target.location
    }

    /// The status to answer with.
    pub fn redirect_type(&self) -> RedirectType {
        self.target.redirect_type
    }

    /// The link's code.
    pub fn short_code(&self) -> &str {
        &self.target.short_code
    }
}

impl Shortener {
    /// Resolves a code for a redirect: the hot path.
    ///
    /// On an in-process cache hit this does no I/O; the click is handed to a bounded
    /// buffer without waiting (dropped and counted when the buffer is full). Links with
    /// `max_clicks` are counted exactly in the store before answering.
    pub async fn resolve(&self, short_code: &str, visit: &Visit<'_>) -> Result<Redirect> {
        let inner = &*self.inner;
        if !is_plausible_code(short_code) {
            return Err(Error::NotFound { what: "link" });
        }
        let entry = match inner.l1.get(short_code) {
            Some(cached) if cached.expires > Instant::now() => {
                Stats::bump(&inner.stats.cache_hits, 1);
                cached.entry
            }
            _ => {
                Stats::bump(&inner.stats.cache_misses, 1);
                self.load(short_code).await?
            }
        };
        let CacheEntry::Found(target) = entry else {
            return Err(Error::NotFound { what: "link" });
        };
        if !target.is_active {
            return Err(Error::Gone {
                reason: GoneReason::Disabled,
            });
        }
        let now = inner.clock.now();
        if target.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::Gone {
                reason: GoneReason::Expired,
            });
        }
        let counted_at_redirect = match target.max_clicks {
            None => false,
            Some(_) => self.check_budget(&target, visit).await?,
        };
        if visit.count {
            let click = PendingClick {
                link_id: target.link_id,
                short_code: target.short_code.clone(),
                at: now,
                ip: visit.client_ip,
                user_agent: visit.user_agent.map(analytics::user_agent_of),
                referrer: visit.referrer.map(analytics::referrer_of),
                country: visit.country.map(Box::from),
                counted_at_redirect,
            };
            match inner.clicks.try_send(click) {
                Ok(()) => Stats::bump(&inner.stats.clicks_buffered, 1),
                Err(_) => Stats::bump(&inner.stats.clicks_dropped, 1),
            }
        }
        Ok(Redirect { target })
    }

    /// Exact budget check of a `max_clicks` link: a human click is counted atomically in
    /// the store; bots and HEAD only look. Returns whether the click was counted.
    async fn check_budget(&self, target: &RedirectTarget, visit: &Visit<'_>) -> Result<bool> {
        let human = !visit.user_agent.is_some_and(agent::is_bot);
        if visit.count && human {
            return match self.inner.links.consume_click(target.link_id).await? {
                ClickBudget::Counted => Ok(true),
                ClickBudget::Exhausted => Err(Error::Gone {
                    reason: GoneReason::ClickLimitReached,
                }),
                ClickBudget::Missing => Err(Error::NotFound { what: "link" }),
            };
        }
        let link = self
            .inner
            .links
            .get(target.link_id)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        if link.max_clicks.is_some_and(|max| link.click_count >= max) {
            return Err(Error::Gone {
                reason: GoneReason::ClickLimitReached,
            });
        }
        Ok(false)
    }
}
