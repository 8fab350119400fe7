//! Rate limiting.

use crate::error::{Error, Result};
use async_trait::async_trait;
use std::fmt::Debug;
use std::str::FromStr;
use std::time::Duration;

/// `limit` requests per `period`, with bursts up to `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period.
    pub limit: u32,
    /// The period.
    pub period: Duration,
}

impl Quota {
    /// `limit` per `period`; `None` when either is zero.
    pub fn new(limit: u32, period: Duration) -> Option<Self> {
        (limit > 0 && !period.is_zero()).then_some(Quota { limit, period })
    }

    /// Parses `N/SECONDS` (e.g. `20/60`); `off` gives `None` (no limit).
    pub fn parse(text: &str) -> Result<Option<Quota>> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || {
            Error::invalid(
                "quota",
                "invalid_quota",
                format!("{text:?} is not N/SECONDS (e.g. 20/60) or off"),
            )
        };
        let (n, s) = text.split_once('/').ok_or_else(bad)?;
        let limit = u32::from_str(n.trim()).map_err(|_| bad())?;
        let secs = u64::from_str(s.trim()).map_err(|_| bad())?;
        Quota::new(limit, Duration::from_secs(secs))
            .map(Some)
            .ok_or_else(bad)
    }
}

/// The answer of a limiter: allowed or not, and what goes in the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether this request may proceed.
    pub allowed: bool,
    /// `RateLimit-Limit`.
    pub limit: u32,
    /// `RateLimit-Remaining`: requests still allowed right now.
    pub remaining: u32,
    /// `RateLimit-Reset`: time until the full quota is available again.
    pub reset_after: Duration,
    /// `Retry-After` when refused: time until one request is allowed.
    pub retry_after: Option<Duration>,
}

/// Counts requests per key against a quota.
///
/// # Contract
/// - `check` counts the request and decides, atomically per key: of `limit` + n concurrent
///   checks on a fresh key exactly `limit` are allowed. Refused requests are not counted.
/// - `check_cost` counts `cost` requests at once (a bulk request of `cost` items): allowed
///   only when all of them fit, and then all are counted; a refusal counts none. A cost
///   above `limit` is always refused. A cost of 0 counts nothing and decides whether one
///   more request would be allowed now (a look before an expensive check that is
///   counted only when it fails, such as a password).
/// - Keys are independent, and one key with different quotas is undefined (callers
///   prefix keys with their scope).
/// - `remaining` counts down from `limit - 1`; a refusal carries `retry_after > 0`.
#[async_trait]
pub trait RateLimiter: Send + Sync + Debug {
    /// Counts one request for `key` and decides.
    async fn check(&self, key: &str, quota: Quota) -> Result<RateLimitDecision> {
        self.check_cost(key, quota, 1).await
    }
    /// Counts `cost` requests for `key` at once and decides.
    async fn check_cost(&self, key: &str, quota: Quota, cost: u32) -> Result<RateLimitDecision>;
    /// The same decision without I/O and without allocating, when the limiter can make it
    /// locally (an in-process limiter always can; a shared one may answer from its local
    /// share); `None` sends the caller to [`RateLimiter::check`]. Counts the request when
    /// it answers.
    fn check_local(&self, _key: &str, _quota: Quota) -> Option<RateLimitDecision> {
        None
    }
    /// Whether the limiter answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// The scopes of the built-in limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// Anonymous API requests, per client IP.
    Anonymous,
    /// Authenticated API requests, per user.
    Authenticated,
    /// Registrations, per client IP.
    Register,
    /// Logins, per client IP.
    Login,
    /// Redirects, per client IP (flood guard).
    Redirect,
    /// Wrong passwords of a password-protected link, per client IP and link.
    Password,
}

impl LimitScope {
    /// Key prefix of the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Anonymous => "anon",
            LimitScope::Authenticated => "auth",
            LimitScope::Register => "register",
            LimitScope::Login => "login",
            LimitScope::Redirect => "redirect",
            LimitScope::Password => "password",
        }
    }
}

/// The quota of each scope; `None` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Default 20 / 60 s.
    pub anonymous: Option<Quota>,
    /// Default 100 / 60 s.
    pub authenticated: Option<Quota>,
    /// Default 10 / hour.
    pub register: Option<Quota>,
    /// Default 20 / 5 min.
    pub login: Option<Quota>,
    /// Default 600 / 60 s.
    pub redirect: Option<Quota>,
    /// Wrong passwords per client IP and link; default 10 / 10 min.
    pub password: Option<Quota>,
}

impl Default for RateLimits {
    fn default() -> Self {
        let q = |n, s| Quota::new(n, Duration::from_secs(s));
        RateLimits {
            anonymous: q(20, 60),
            authenticated: q(100, 60),
            register: q(10, 3600),
            login: q(20, 300),
            redirect: q(600, 60),
            password: q(10, 600),
        }
    }
}

impl RateLimits {
    /// No limits at all.
    pub fn off() -> Self {
        RateLimits {
            anonymous: None,
            authenticated: None,
            register: None,
            login: None,
            redirect: None,
            password: None,
        }
    }

    /// The quota of a scope.
    pub fn quota(&self, scope: LimitScope) -> Option<Quota> {
        match scope {
            LimitScope::Anonymous => self.anonymous,
            LimitScope::Authenticated => self.authenticated,
            LimitScope::Register => self.register,
            LimitScope::Login => self.login,
            LimitScope::Redirect => self.redirect,
            LimitScope::Password => self.password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotas() {
        assert_eq!(
            Quota::parse("20/60").unwrap(),
            Quota::new(20, Duration::from_secs(60))
        );
        assert_eq!(Quota::parse("OFF").unwrap(), None);
        for bad in ["abc", "20", "0/60", "20/0", "-1/60", "20/x", ""] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }
}
