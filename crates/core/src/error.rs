//! The one error type of the domain.

use std::borrow::Cow;
use std::time::Duration;

/// Why a link that exists no longer redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// `expires_at` has passed.
    Expired,
    /// The owner set `is_active` to false.
    Disabled,
    /// `max_clicks` human clicks have been counted.
    ClickLimitReached,
    /// Blocked by an administrator, or its destination's host by the blocklist.
    Blocked,
}

impl GoneReason {
    /// A stable machine-readable name (`expired`, `disabled`, `click_limit_reached`,
    /// `link_blocked`).
    pub fn as_str(self) -> &'static str {
        match self {
            GoneReason::Expired => "expired",
            GoneReason::Disabled => "disabled",
            GoneReason::ClickLimitReached => "click_limit_reached",
            GoneReason::Blocked => "link_blocked",
        }
    }
}

impl std::fmt::Display for GoneReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every failure of the domain, in kinds a caller can act on.
///
/// The server maps each kind to one HTTP status in one place; an embedding
/// application can match on it the same way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resource does not exist, or belongs to someone else (never revealed).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for (`link`, `user`, `api key`).
        what: &'static str,
    },
    /// The link exists but no longer redirects.
    #[error("link is gone: {reason}")]
    Gone {
        /// Why it stopped redirecting.
        reason: GoneReason,
    },
    /// A unique value is already taken (`alias_taken`, `email_taken`).
    #[error("{message}")]
    Conflict {
        /// Machine-readable code, e.g. `alias_taken`.
        code: &'static str,
        /// What is taken, for humans.
        message: String,
    },
    /// Input refused by validation, naming the field and the reason.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field, e.g. `original_url`.
        field: Cow<'static, str>,
        /// Machine-readable code, e.g. `invalid_url`, `reserved_alias`.
        code: &'static str,
        /// Why it was refused, for humans.
        reason: String,
    },
    /// Too many requests; try again after `retry_after`.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// How long until a request would be allowed.
        retry_after: Duration,
    },
    /// The caller is known but may not do this (an administrator's operation).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why, for logs.
        reason: &'static str,
    },
    /// The link asks for a password and the visit gave none.
    #[error("the link asks for a password")]
    PasswordRequired,
    /// Missing, invalid, expired or revoked credentials (or a link's wrong password).
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why, for logs (the server answers the same to every caller).
        reason: &'static str,
    },
    /// A backend (database, cache, broker) failed.
    #[error("{backend} backend failed: {message}")]
    Backend {
        /// Which backend (`postgres`, `redis`, `memory`, …).
        backend: &'static str,
        /// What went wrong.
        message: String,
        /// Whether the same call may succeed if tried again (timeouts, lost connections).
        retryable: bool,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            code,
            reason: reason.into(),
        }
    }

    /// Shorthand for a retryable [`Error::Backend`] (unreachable, timed out).
    pub fn unavailable(backend: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Backend {
            backend,
            message: message.to_string(),
            retryable: true,
        }
    }

    /// Shorthand for a non-retryable [`Error::Backend`].
    pub fn backend(backend: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Backend {
            backend,
            message: message.to_string(),
            retryable: false,
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                retryable: true,
                ..
            } | Error::RateLimited { .. }
        )
    }
}

/// `Result` with the domain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
