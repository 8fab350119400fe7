#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! - [`Shortener`]: the service, built with [`Shortener::builder`]; the domain types it
//!   speaks ([`Link`], [`NewLink`], [`Visit`], …) and its [`Error`] are at the root.
//! - Traits a backend implements: [`LinkStore`], [`UserStore`], [`AnalyticsStore`],
//!   [`DomainStore`], [`ModerationStore`], [`WebhookStore`], [`Cache`], [`RateLimiter`], [`IdAllocator`],
//!   [`EventBus`]; what they store and
//!   exchange is in [`records`].
//! - [`memory`]: the in-memory implementation of each, the defaults.
//! - `testing` (feature `testing`): the conformance suite every backend runs.
//! - [`implementing_a_backend`]: a short guide for backend authors.
//! - Building blocks with their own rules: [`agent`] (user-agent families), [`code`]
//!   (short codes and aliases), [`validate`] (URLs, emails, passwords), [`auth`]
//!   (passwords, tokens and keys), [`transfer`] (CSV in and out), [`webhooks`] (signing,
//!   retries, the delivery client).
//!
//! # Features
//!
//! - `qr` (default): QR codes of short links ([`Shortener::qr_code`]).
//! - `testing`: the conformance suite.

pub mod agent;
mod analytics;
pub mod auth;
mod bus;
mod cache;
mod clock;
pub mod code;
mod error;
mod fold;
mod geoip;
mod ids;
mod limiter;
pub mod memory;
mod model;
#[cfg(feature = "qr")]
mod qr;
pub mod records;
pub mod rules;
mod service;
mod stats;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
pub mod transfer;
pub mod validate;
mod visitor;
pub mod webhooks;

pub use analytics::AnalyticsConfig;
pub use bus::{EventBus, EventConsumer};
pub use cache::{Cache, Invalidation, InvalidationListener, Listeners};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, GoneReason, Result};
pub use geoip::GeoIp;
pub use ids::IdAllocator;
pub use limiter::{LimitScope, Quota, RateLimitDecision, RateLimiter, RateLimits};
pub use model::{
    AnalyticsSummary, ApiKey, BlockedHost, Click, Cursor, DayClicks, Domain, DomainPatch, Link,
    LinkPatch, LinkSort, NewLink, Page, Principal, RedirectType, Report, ReportReason,
    ReportStatus, Role, TokenPair, User, ValueCount, Visit,
};
#[cfg(feature = "qr")]
pub use qr::{DEFAULT_QR_SIZE, MAX_QR_SIZE, MIN_QR_SIZE, QrFormat};
pub use rules::{ConditionType, RedirectRule, RuleCondition};
#[cfg(feature = "qr")]
pub use service::QrContent;
pub use service::{
    ClickOptions, ComponentHealth, DEFAULT_CLICK_PAGE, DEFAULT_CLICK_RETENTION, DEFAULT_PAGE_SIZE,
    EXPORT_PAGE, HealthReport, ID_BLOCK_SIZE, ListOptions, MAX_BULK_ITEMS, MAX_CLICK_PAGE,
    MAX_CLICKS, MAX_LINK_PASSWORD, MAX_PAGE_SIZE, Preview, Redirect, Shortener, ShortenerBuilder,
    normalize_pattern,
};
pub use stats::{StatsSnapshot, StripedCounters};
pub use store::{AnalyticsStore, DomainStore, LinkStore, ModerationStore, UserStore, WebhookStore};
pub use text::{StackString, excerpt};

/// How to write a backend.
///
/// 1. Implement the trait (`#[async_trait]`), following its `# Contract` section.
/// 2. Map driver errors at your edge: unique violations to [`Error::Conflict`] with the
///    code the contract names, lost connections and timeouts to
///    [`Error::unavailable`] (retryable), the rest to [`Error::backend`].
/// 3. Run the conformance suite from your crate's tests with the `testing` feature:
///
/// ```ignore
/// #[tokio::test]
/// async fn conformance() {
///     let store = Arc::new(MyStore::connect(&url).await.unwrap());
///     hoplink::testing::link_store(store.clone()).await;
///     hoplink::testing::user_store(store.clone()).await;
///     hoplink::testing::analytics_store(store.clone()).await;
///     hoplink::testing::click_log(store.clone()).await;
///     hoplink::testing::webhook_store(store).await;
/// }
/// ```
///
/// 4. A shared [`Cache`] also runs `testing::two_instances` with two handles on one
///    backend (as two processes would have): after an edit returns, the very next redirect
///    on the other instance must see it. [`Listeners`] keeps a cache's listeners.
/// 5. Give each test run its own namespace (schema, key prefix, topic) so runs don't collide.
pub mod implementing_a_backend {}
