//! The [`Shortener`] service: the one entry point to every feature, a file per capability.
//!
//! - `builder`: configuration, and the background tasks started with the service
//! - `redirect`: the hot path, [`Shortener::resolve`]
//! - `l1`: the in-process cache and its coherence with other instances
//! - `links`, `accounts`, `analytics`, `qr`, `limits`: what their names say
//! - `health`: backend health and graceful shutdown

mod accounts;
mod analytics;
mod builder;
mod domains;
mod health;
mod l1;
mod limits;
mod links;
mod moderation;
#[cfg(feature = "qr")]
mod qr;
mod redirect;
mod smart;
mod transfer;
mod webhooks;

pub use analytics::{ClickOptions, DEFAULT_CLICK_PAGE, DEFAULT_CLICK_RETENTION, MAX_CLICK_PAGE};
pub use builder::ShortenerBuilder;
pub use health::{ComponentHealth, HealthReport};
pub use links::{ListOptions, MAX_CLICKS};
pub use moderation::normalize_pattern;
#[cfg(feature = "qr")]
pub use qr::QrContent;
pub use redirect::Redirect;
pub use smart::{MAX_LINK_PASSWORD, Preview};
pub use transfer::EXPORT_PAGE;

use crate::analytics::ClickBuffer;
use crate::bus::EventBus;
use crate::cache::Cache;
use crate::clock::{Clock, stored_precision};
use crate::code::CodeGenerator;
use crate::error::{Error, Result};
use crate::ids::IdAllocator;
use crate::limiter::{RateLimiter, RateLimits};
use crate::model::{Link, Principal};
use crate::stats::{Stats, StatsSnapshot};
use crate::store::{
    AnalyticsStore, DomainStore, LinkStore, ModerationStore, UserStore, WebhookStore,
};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use domains::{DomainIds, DomainTable};
use l1::L1Epochs;
use moderation::BlockedSet;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Ids taken from the allocator at a time.
pub const ID_BLOCK_SIZE: u64 = 1000;
/// Most items in one bulk create.
pub const MAX_BULK_ITEMS: usize = 1000;
/// Default page size of listings.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size of listings.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The URL shortener: shortening, redirects, links, analytics, QR codes, users and keys.
///
/// Cheap to clone (all clones share one service). Built with [`Shortener::builder`];
/// with no backend given, every one is in memory.
#[derive(Clone, Debug)]
pub struct Shortener {
    inner: Arc<Inner>,
}

struct Inner {
    links: Arc<dyn LinkStore>,
    users: Arc<dyn UserStore>,
    analytics: Arc<dyn AnalyticsStore>,
    domains: Arc<dyn DomainStore>,
    moderation: Arc<dyn ModerationStore>,
    webhooks: Arc<dyn WebhookStore>,
    /// Sends webhook deliveries.
    sender: crate::webhooks::Sender,
    /// Wakes the delivery loop when something was queued here.
    webhook_wake: tokio::sync::Notify,
    subscribers: Mutex<webhooks::Subscribers>,
    cache: Option<Arc<dyn Cache>>,
    limiter: Arc<dyn RateLimiter>,
    ids: Arc<dyn IdAllocator>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    codes: CodeGenerator,
    id_block: tokio::sync::Mutex<Range<u64>>,
    l1: l1::L1Cache,
    /// Bumped by invalidations: a cache fill that started before one for its code is not
    /// stored, so a reader racing an edit cannot put the old link back into L1.
    l1_epochs: L1Epochs,
    config: Config,
    /// The domains as the redirect path reads them, swapped whole on a change.
    domains_table: ArcSwap<DomainTable>,
    /// Bumped when the domains change (here or, through the shared cache, elsewhere).
    domains_epoch: AtomicU64,
    domains_reload: tokio::sync::Mutex<()>,
    domain_ids: Mutex<DomainIds>,
    /// The blocked hosts as cache fills read them, swapped whole on a change.
    blocklist: ArcSwap<BlockedSet>,
    blocklist_epoch: AtomicU64,
    blocklist_reload: tokio::sync::Mutex<()>,
    /// This instance's `BLOCKLIST_FILE` patterns.
    file_blocklist: Mutex<Vec<String>>,
    /// When the service started (the default domain's `created_at`).
    started_at: DateTime<Utc>,
    jwt_secret: Arc<[u8]>,
    /// User agents of visits to links with rules, classified once.
    agents: crate::agent::SharedClassifier,
    geoip: Option<Arc<crate::geoip::GeoIp>>,
    clicks: Arc<ClickBuffer>,
    stats: Arc<Stats>,
    tasks: Mutex<Option<Tasks>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shortener")
            .field("links", &self.links)
            .field("cache", &self.cache)
            .field("bus", &self.bus)
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Config {
    base_url: String,
    /// `BASE_URL`'s scheme, for the short URLs of other domains.
    scheme: String,
    own_host: Option<String>,
    /// Emails of administrators, in lower case.
    admin_emails: HashSet<String>,
    limits: RateLimits,
    l1_ttl: Duration,
    negative_ttl: Duration,
    shared_ttl: Duration,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// How long a rotated refresh token still gets its successor back.
    refresh_grace: Duration,
    /// Words aliases may not be, besides [`crate::code::RESERVED_WORDS`].
    reserved_aliases: Vec<Box<str>>,
    /// How long raw clicks are kept.
    click_retention: Duration,
}

struct Tasks {
    stop_forwarder: watch::Sender<bool>,
    forwarder: JoinHandle<()>,
    stop_worker: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
    stop_deliveries: watch::Sender<bool>,
    deliveries: JoinHandle<()>,
}

fn owned_by(link: Link, principal: &Principal) -> Result<Link> {
    if link.owner_id == Some(principal.user_id) {
        Ok(link)
    } else {
        Err(Error::NotFound { what: "link" })
    }
}

impl Shortener {
    /// A builder with every backend in memory.
    pub fn builder() -> ShortenerBuilder {
        ShortenerBuilder::default()
    }

    /// The service's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    fn now(&self) -> DateTime<Utc> {
        stored_precision(self.inner.clock.now())
    }

    async fn next_id(&self) -> Result<u64> {
        let mut block = self.inner.id_block.lock().await;
        if block.is_empty() {
            *block = self.inner.ids.allocate(ID_BLOCK_SIZE).await?;
        }
        block
            .next()
            .ok_or_else(|| Error::backend("id allocator", "returned an empty block"))
    }
}
