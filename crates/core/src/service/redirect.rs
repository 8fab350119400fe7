//! The hot path: [`Shortener::resolve`].

use super::Shortener;
use super::domains::DomainRef;
use super::l1::L1Ref;
use crate::agent;
use crate::analytics::{self, PendingClick};
use crate::code::is_plausible_code;
use crate::error::{Error, GoneReason, Result};
use crate::model::{RedirectType, Visit};
use crate::records::{CacheEntry, ClickBudget, RedirectTarget};
use crate::stats::Hot;
use std::sync::Arc;
use std::time::Instant;

/// A redirect to answer with: to a link's destination, or to its domain's fallback.
#[derive(Debug, Clone)]
pub struct Redirect {
    to: To,
    /// Where a smart link sends this visit, when not to its own URL.
    location: Option<Box<str>>,
}

#[derive(Debug, Clone)]
enum To {
    Link(Arc<RedirectTarget>),
    /// A domain's `not_found_redirect` or `gone_redirect`: a 302, nothing counted.
    Fallback(Arc<str>),
}

impl Redirect {
    fn of(to: To) -> Self {
        Redirect { to, location: None }
    }

    /// The `Location` header.
    pub fn location(&self) -> &str {
        match (&self.location, &self.to) {
            (Some(chosen), _) => chosen,
            (None, To::Link(target)) => &target.location,
            (None, To::Fallback(url)) => url,
        }
    }

    /// Whether the answer depends on the visit (rules, query forwarding, a password):
    /// then no cache may keep it (`Cache-Control: private, no-store`).
    pub fn is_private(&self) -> bool {
        matches!(&self.to, To::Link(target) if target.smart.is_some())
    }

    /// The status to answer with.
    pub fn redirect_type(&self) -> RedirectType {
        match &self.to {
            To::Link(target) => target.redirect_type,
            To::Fallback(_) => RedirectType::Found,
        }
    }

    /// The link's code; `None` for a domain's fallback.
    pub fn short_code(&self) -> Option<&str> {
        match &self.to {
            To::Link(target) => Some(&target.short_code),
            To::Fallback(_) => None,
        }
    }
}

/// Whether a link redirects at `now`: not blocked, not disabled, not expired.
#[inline]
pub(super) fn check_live(
    target: &RedirectTarget,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let reason = if target.blocked {
        GoneReason::Blocked
    } else if !target.is_active {
        GoneReason::Disabled
    } else if target.expires_at.is_some_and(|t| t <= now) {
        GoneReason::Expired
    } else {
        return Ok(());
    };
    Err(Error::Gone { reason })
}

impl Shortener {
    /// Resolves a code for a redirect: the hot path. The domain is the one of
    /// `visit.host` (the default domain when absent or unknown).
    ///
    /// On an in-process cache hit this does no I/O and, on the default domain's host,
    /// allocates nothing: the click is handed to a bounded buffer without waiting
    /// (dropped and counted when the buffer is full). Links with `max_clicks` are
    /// counted exactly in the store before answering. An unknown code is `NotFound`, a
    /// link that no longer redirects `Gone`, unless its domain has a fallback redirect.
    pub async fn resolve(&self, short_code: &str, visit: &Visit<'_>) -> Result<Redirect> {
        if let Some(target) = self.resolve_hit(short_code, visit) {
            return Ok(Redirect::of(To::Link(target)));
        }
        // Boxed so that this future stays small: callers embed (and move) it in their
        // own, and only misses, fallbacks and refusals need the long way's state.
        Box::pin(self.resolve_cold(short_code, visit)).await
    }

    /// The common case without awaiting anything: an L1 hit of a live link without a
    /// click budget on a domain the current table knows. `None` sends the request the
    /// long way ([`Shortener::resolve_cold`]), which answers everything else.
    #[inline]
    fn resolve_hit(&self, short_code: &str, visit: &Visit<'_>) -> Option<Arc<RedirectTarget>> {
        let inner = &*self.inner;
        let domain = self.domain_id_now(visit.host)?;
        if !is_plausible_code(short_code) {
            return None;
        }
        let key = L1Ref {
            domain,
            code: short_code,
        };
        let cached = inner.l1.get(&key)?;
        let CacheEntry::Found(target) = cached.entry else {
            return None;
        };
        if cached.expires <= Instant::now() || target.max_clicks.is_some() || target.smart.is_some()
        {
            return None;
        }
        let now = inner.clock.now();
        check_live(&target, now).ok()?;
        inner.stats.hot(Hot::CacheHits);
        if visit.count {
            self.hand_over_click(&target, visit, now, false);
        }
        Some(target)
    }

    #[cold]
    async fn resolve_cold(&self, short_code: &str, visit: &Visit<'_>) -> Result<Redirect> {
        let domain = self.domain_of_host(visit.host).await?;
        match self.resolve_on(&domain, short_code, visit).await {
            Ok(redirect) => Ok(redirect),
            Err(e) => self.answer_without_link(&domain, short_code, e).await,
        }
    }

    /// A link that is unknown or gone: its domain's fallback redirect, when it has one.
    /// A path that can't be a code (`/favicon.ico`) is no unknown link and gets none.
    #[cold]
    async fn answer_without_link(
        &self,
        domain: &DomainRef,
        short_code: &str,
        e: Error,
    ) -> Result<Redirect> {
        if !matches!(e, Error::NotFound { .. } | Error::Gone { .. })
            || !is_plausible_code(short_code)
        {
            return Err(e);
        }
        match self.fallback(domain, &e).await? {
            Some(url) => Ok(Redirect::of(To::Fallback(url))),
            None => Err(e),
        }
    }

    /// A domain's redirect for an answer that is not a link's.
    async fn fallback(&self, domain: &DomainRef, error: &Error) -> Result<Option<Arc<str>>> {
        let row = if domain.id == 0 {
            self.domain_table().await?.default_row()
        } else {
            domain.domain.clone()
        };
        let Some(row) = row else { return Ok(None) };
        let url = match error {
            Error::NotFound { .. } => row.not_found_redirect.as_deref(),
            _ => row.gone_redirect.as_deref(),
        };
        Ok(url.map(Arc::from))
    }

    /// The link of `short_code` on `domain`, checked and its click handed over.
    async fn resolve_on(
        &self,
        domain: &DomainRef,
        short_code: &str,
        visit: &Visit<'_>,
    ) -> Result<Redirect> {
        let target = self.target_on(domain, short_code).await?;
        let now = self.inner.clock.now();
        check_live(&target, now)?;
        let mut location = None;
        if let Some(smart) = &target.smart {
            // The password before anything is counted or revealed.
            if let Some(hash) = &smart.password_hash {
                self.check_link_password(&target, hash, visit).await?;
            }
            location = self.smart_destination(&target, smart, visit, now);
        }
        let counted_at_redirect = match target.max_clicks {
            None => false,
            Some(_) => self.check_budget(&target, visit).await?,
        };
        if visit.count {
            self.hand_over_click(&target, visit, now, counted_at_redirect);
        }
        Ok(Redirect {
            to: To::Link(target),
            location,
        })
    }

    /// The cached or stored target of `short_code` on `domain`.
    pub(super) async fn target_on(
        &self,
        domain: &DomainRef,
        short_code: &str,
    ) -> Result<Arc<RedirectTarget>> {
        let inner = &*self.inner;
        if !is_plausible_code(short_code) {
            return Err(Error::NotFound { what: "link" });
        }
        let key = L1Ref {
            domain: domain.id,
            code: short_code,
        };
        let entry = match inner.l1.get(&key) {
            Some(cached) if cached.expires > Instant::now() => {
                inner.stats.hot(Hot::CacheHits);
                cached.entry
            }
            _ => {
                inner.stats.hot(Hot::CacheMisses);
                self.load(domain, short_code).await?
            }
        };
        match entry {
            CacheEntry::Found(target) => Ok(target),
            CacheEntry::Missing => Err(Error::NotFound { what: "link" }),
        }
    }

    /// Hands a click to the bounded buffer without waiting (full: dropped and counted).
    fn hand_over_click(
        &self,
        target: &RedirectTarget,
        visit: &Visit<'_>,
        now: chrono::DateTime<chrono::Utc>,
        counted_at_redirect: bool,
    ) {
        let inner = &*self.inner;
        let click = PendingClick {
            link_id: target.link_id,
            short_code: &target.short_code,
            at: now,
            ip: visit.client_ip,
            user_agent: visit.user_agent,
            referrer: visit.referrer.map(analytics::referrer_of),
            country: visit.country,
            counted_at_redirect,
        };
        if inner.clicks.push(&click) {
            inner.stats.hot(Hot::ClicksBuffered);
        } else {
            inner.stats.hot(Hot::ClicksDropped);
        }
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
        self.unspent_link(target).await?;
        Ok(false)
    }

    /// The stored link of `target`, `Gone` when its click budget is used up.
    pub(super) async fn unspent_link(&self, target: &RedirectTarget) -> Result<crate::Link> {
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
        Ok(link)
    }
}
