//! [`ShortenerBuilder`]: every setting with its default, and the start of the service's
//! background tasks.

use crate::agent::SharedClassifier;
use crate::analytics::{AnalyticsConfig, ClickBuffer, VisitorHasher, run_forwarder, run_worker};
use crate::auth;
use crate::bus::EventBus;
use crate::cache::{Cache, Invalidation};
use crate::clock::{Clock, SystemClock};
use crate::code::CodeGenerator;
use crate::error::{Error, Result};
use crate::geoip::GeoIp;
use crate::ids::IdAllocator;
use crate::limiter::{RateLimiter, RateLimits};
use crate::memory::{MemoryEventBus, MemoryIdAllocator, MemoryRateLimiter, MemoryStore};
use crate::stats::Stats;
use crate::store::{
    AnalyticsStore, DomainStore, LinkStore, ModerationStore, UserStore, WebhookStore,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

use super::domains::{DOMAINS_CHANGED, DomainIds, DomainTable};
use super::l1::{L1Epochs, L1Ref};
use super::moderation::{BLOCKLIST_CHANGED, BlockedSet};
use super::{Config, Inner, Shortener, Tasks};
use crate::records::split_cache_key;
use arc_swap::ArcSwap;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

/// Default of [`ShortenerBuilder::refresh_grace`].
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(10);

/// Builds a [`Shortener`]; every setting has a default.
#[derive(Default)]
pub struct ShortenerBuilder {
    links: Option<Arc<dyn LinkStore>>,
    users: Option<Arc<dyn UserStore>>,
    analytics: Option<Arc<dyn AnalyticsStore>>,
    domains: Option<Arc<dyn DomainStore>>,
    moderation: Option<Arc<dyn ModerationStore>>,
    webhooks: Option<Arc<dyn WebhookStore>>,
    webhooks_allow_private: bool,
    admin_emails: HashSet<String>,
    cache: Option<Arc<dyn Cache>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    ids: Option<Arc<dyn IdAllocator>>,
    bus: Option<Arc<dyn EventBus>>,
    clock: Option<Arc<dyn Clock>>,
    base_url: Option<String>,
    code_secret: Option<u64>,
    jwt_secret: Option<Vec<u8>>,
    analytics_secret: Option<Vec<u8>>,
    limits: Option<RateLimits>,
    analytics_config: Option<AnalyticsConfig>,
    l1_capacity: Option<u64>,
    l1_ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
    shared_ttl: Option<Duration>,
    reserved_aliases: Vec<Box<str>>,
    refresh_grace: Option<Duration>,
    geoip: Option<Arc<GeoIp>>,
    click_retention: Option<Duration>,
}

impl std::fmt::Debug for ShortenerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShortenerBuilder")
            .field("base_url", &self.base_url)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl ShortenerBuilder {
    /// One store for links, users, analytics, domains, moderation and webhooks (what a
    /// PostgreSQL or memory store is).
    pub fn store<S>(mut self, store: Arc<S>) -> Self
    where
        S: LinkStore
            + UserStore
            + AnalyticsStore
            + DomainStore
            + ModerationStore
            + WebhookStore
            + 'static,
    {
        self.links = Some(store.clone());
        self.webhooks = Some(store.clone());
        self.users = Some(store.clone());
        self.domains = Some(store.clone());
        self.moderation = Some(store.clone());
        self.analytics = Some(store);
        self
    }

    /// The webhook store alone.
    pub fn webhook_store(mut self, store: Arc<dyn WebhookStore>) -> Self {
        self.webhooks = Some(store);
        self
    }

    /// Let webhook deliveries go to private and loopback addresses (receivers inside the
    /// operator's network, tests); refused by default, at registration and at each
    /// delivery (on the address the name resolves to then).
    pub fn webhooks_allow_private(mut self, allow: bool) -> Self {
        self.webhooks_allow_private = allow;
        self
    }

    /// The domain store alone.
    pub fn domain_store(mut self, store: Arc<dyn DomainStore>) -> Self {
        self.domains = Some(store);
        self
    }

    /// The moderation store alone.
    pub fn moderation_store(mut self, store: Arc<dyn ModerationStore>) -> Self {
        self.moderation = Some(store);
        self
    }

    /// Emails of administrators (compared without regard to case): they manage domains,
    /// the blocklist, reports and every owner's links.
    pub fn admin_emails<I, S>(mut self, emails: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.admin_emails.extend(
            emails
                .into_iter()
                .map(|e| e.as_ref().trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty()),
        );
        self
    }

    /// How long raw clicks are kept (default 90 days): older ones are pruned every hour.
    pub fn click_retention(mut self, retention: Duration) -> Self {
        self.click_retention = Some(retention);
        self
    }

    /// A MaxMind DB of countries: `country` redirect rules and the countries of clicks
    /// use it when the visit names no country of its own ([`Visit::country`](crate::Visit::country)).
    pub fn geoip(mut self, geoip: GeoIp) -> Self {
        self.geoip = Some(Arc::new(geoip));
        self
    }

    /// The link store alone. Its `click_count`s are grown by the analytics store, so
    /// give both the same data.
    pub fn link_store(mut self, store: Arc<dyn LinkStore>) -> Self {
        self.links = Some(store);
        self
    }

    /// The user store alone.
    pub fn user_store(mut self, store: Arc<dyn UserStore>) -> Self {
        self.users = Some(store);
        self
    }

    /// The analytics store alone.
    pub fn analytics_store(mut self, store: Arc<dyn AnalyticsStore>) -> Self {
        self.analytics = Some(store);
        self
    }

    /// A shared (L2) cache; without one, each instance has only its in-process L1.
    pub fn cache(mut self, cache: Arc<dyn Cache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The rate limiter (default: in memory).
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The id allocator (default: in memory).
    pub fn id_allocator(mut self, ids: Arc<dyn IdAllocator>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// The event bus (default: in memory).
    pub fn event_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Prefix of short URLs (default `http://localhost:8080`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Key of the code permutation; every instance sharing a store must use the same.
    pub fn code_secret(mut self, secret: u64) -> Self {
        self.code_secret = Some(secret);
        self
    }

    /// HS256 secret of access tokens (default: random per process, so tokens die with it).
    pub fn jwt_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.jwt_secret = Some(secret.into());
        self
    }

    /// Secret of the daily visitor salt; instances must share it for unique-visitor
    /// counts to agree (default: derived from the JWT secret).
    pub fn analytics_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.analytics_secret = Some(secret.into());
        self
    }

    /// Rate limit quotas (default: [`RateLimits::default`]).
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Click batching and the analytics worker.
    pub fn analytics(mut self, config: AnalyticsConfig) -> Self {
        self.analytics_config = Some(config);
        self
    }

    /// Entries the in-process cache holds (default 100,000).
    pub fn l1_capacity(mut self, entries: u64) -> Self {
        self.l1_capacity = Some(entries);
        self
    }

    /// How long the in-process cache keeps a link (default 60 s): the bound on staleness
    /// should an invalidation message be lost.
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = Some(ttl);
        self
    }

    /// How long an unknown code is remembered as unknown (default 5 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// How long the shared cache keeps a link (default 1 hour).
    pub fn shared_cache_ttl(mut self, ttl: Duration) -> Self {
        self.shared_ttl = Some(ttl);
        self
    }

    /// How long a refresh token, once exchanged, still gets the same successor back
    /// (default 10 s): two tabs refreshing at once both stay signed in. Past it, the old
    /// token counts as stolen and revokes its login.
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.refresh_grace = Some(grace);
        self
    }

    /// Words no alias may be (compared without regard to case), besides
    /// [`RESERVED_WORDS`](crate::code::RESERVED_WORDS): a server passes the top-level
    /// names of its own routes, so that no short link can shadow one.
    pub fn reserved_aliases<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        self.reserved_aliases
            .extend(words.into_iter().map(Into::into));
        self
    }

    /// Builds the service and starts its background tasks (click forwarding, the
    /// analytics worker, cache invalidation). Must be called inside a Tokio runtime.
    pub fn build(self) -> Result<Shortener> {
        tokio::runtime::Handle::try_current().map_err(|_| {
            Error::backend(
                "runtime",
                "Shortener::build must be called inside a Tokio runtime",
            )
        })?;
        let base_url = self
            .base_url
            .unwrap_or_else(|| "http://localhost:8080".to_string());
        let parsed = url::Url::parse(&base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Error::invalid(
                    "base_url",
                    "invalid_url",
                    format!("{base_url:?} is not an absolute http(s) URL"),
                )
            })?;
        let own_host = parsed.host_str().map(|h| h.to_ascii_lowercase());
        let scheme = parsed.scheme().to_string();
        let base_url = base_url.trim_end_matches('/').to_string();

        let memory = Arc::new(MemoryStore::new());
        let links = self.links.unwrap_or_else(|| memory.clone());
        let users = self.users.unwrap_or_else(|| memory.clone());
        let domains = self.domains.unwrap_or_else(|| memory.clone());
        let moderation = self.moderation.unwrap_or_else(|| memory.clone());
        let webhooks = self.webhooks.unwrap_or_else(|| memory.clone());
        let sender = crate::webhooks::Sender::new(self.webhooks_allow_private)?;
        let analytics_store = self.analytics.unwrap_or(memory);
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let limiter = self
            .limiter
            .unwrap_or_else(|| Arc::new(MemoryRateLimiter::with_clock(clock.clone())));
        let ids = self
            .ids
            .unwrap_or_else(|| Arc::new(MemoryIdAllocator::new()));
        let bus = self
            .bus
            .unwrap_or_else(|| Arc::new(MemoryEventBus::default()));
        let jwt_secret: Arc<[u8]> = self
            .jwt_secret
            .unwrap_or_else(|| auth::random_bytes::<32>().to_vec())
            .into();
        let analytics_secret: Arc<[u8]> = match self.analytics_secret {
            Some(s) => s.into(),
            None => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(b"hoplink analytics secret ");
                h.update(&jwt_secret);
                h.finalize().to_vec().into()
            }
        };
        let analytics_config = self.analytics_config.unwrap_or_default();
        if !(1..=AnalyticsConfig::MAX_BATCH_SIZE).contains(&analytics_config.batch_size)
            || analytics_config.flush_interval.is_zero()
        {
            return Err(Error::invalid(
                "analytics",
                "invalid_config",
                format!(
                    "batch size must be 1 to {} and the flush interval positive",
                    AnalyticsConfig::MAX_BATCH_SIZE
                ),
            ));
        }
        let l1_ttl = self.l1_ttl.unwrap_or(Duration::from_secs(60));
        let negative_ttl = self.negative_ttl.unwrap_or(Duration::from_secs(5));
        let l1 = super::l1::new_cache(self.l1_capacity.unwrap_or(100_000));
        let stats = Arc::new(Stats::default());
        let clicks = Arc::new(ClickBuffer::new(analytics_config.buffer_capacity.max(1)));

        let started_at = crate::clock::stored_precision(clock.now());
        let inner = Arc::new(Inner {
            links,
            users,
            domains,
            moderation,
            webhooks,
            sender,
            webhook_wake: tokio::sync::Notify::new(),
            subscribers: Mutex::default(),
            analytics: analytics_store.clone(),
            cache: self.cache,
            limiter,
            ids,
            bus: bus.clone(),
            clock,
            codes: CodeGenerator::new(self.code_secret.unwrap_or(0x686f_706c_696e_6b21)),
            id_block: tokio::sync::Mutex::new(0..0),
            l1,
            l1_epochs: L1Epochs::default(),
            domains_table: ArcSwap::from_pointee(DomainTable::stale()),
            domains_epoch: AtomicU64::new(0),
            domains_reload: tokio::sync::Mutex::new(()),
            domain_ids: Mutex::new(DomainIds::default()),
            blocklist: ArcSwap::from_pointee(BlockedSet::stale()),
            blocklist_epoch: AtomicU64::new(0),
            blocklist_reload: tokio::sync::Mutex::new(()),
            file_blocklist: Mutex::new(Vec::new()),
            started_at,
            config: Config {
                base_url,
                scheme,
                own_host,
                admin_emails: self.admin_emails,
                limits: self.limits.unwrap_or_default(),
                l1_ttl,
                negative_ttl,
                shared_ttl: self.shared_ttl.unwrap_or(Duration::from_secs(3600)),
                access_ttl: Duration::from_secs(15 * 60),
                refresh_ttl: Duration::from_secs(30 * 24 * 3600),
                refresh_grace: self.refresh_grace.unwrap_or(DEFAULT_REFRESH_GRACE),
                reserved_aliases: self.reserved_aliases,
                click_retention: self
                    .click_retention
                    .unwrap_or(super::DEFAULT_CLICK_RETENTION),
            },
            jwt_secret,
            agents: SharedClassifier::default(),
            geoip: self.geoip.clone(),
            clicks: clicks.clone(),
            stats: stats.clone(),
            tasks: Mutex::new(None),
        });

        let (stop_forwarder, forwarder_stop) = watch::channel(false);
        let forwarder = tokio::spawn(run_forwarder(
            clicks,
            bus.clone(),
            VisitorHasher::new(analytics_secret),
            self.geoip,
            analytics_config,
            stats.clone(),
            forwarder_stop,
        ));
        let (stop_worker, worker_stop) = watch::channel(false);
        let hook: Arc<dyn crate::analytics::AfterRecord> =
            Arc::new(super::webhooks::ClickHook(Arc::downgrade(&inner)));
        let worker = analytics_config.run_worker.then(|| {
            let store = analytics_store.clone();
            let stats = stats.clone();
            let bus = bus.clone();
            tokio::spawn(async move {
                let consumer = loop {
                    match bus
                        .subscribe("hoplink-analytics", &Uuid::new_v4().to_string())
                        .await
                    {
                        Ok(c) => break c,
                        Err(e) => {
                            tracing::warn!(error = %e, "joining the analytics consumer group failed; retrying");
                            if *worker_stop.borrow() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                run_worker(consumer, store, hook, analytics_config, stats, worker_stop).await;
            })
        });
        let (stop_deliveries, deliveries_stop) = watch::channel(false);
        let deliveries = tokio::spawn(super::webhooks::run_deliveries(
            Arc::downgrade(&inner),
            deliveries_stop,
        ));
        if let Some(cache) = &inner.cache {
            let weak = Arc::downgrade(&inner);
            cache.listen(Arc::new(move |invalidation| {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                let shortener = Shortener { inner };
                match invalidation {
                    Invalidation::Code(DOMAINS_CHANGED) => shortener.domains_changed_locally(),
                    Invalidation::Code(BLOCKLIST_CHANGED) => shortener.blocklist_changed_locally(),
                    Invalidation::Code(key) => {
                        let (host, code) = split_cache_key(key);
                        if let Some(id) = shortener.domain_id(host) {
                            shortener.inner.forget_locally(L1Ref { domain: id, code });
                        }
                    }
                    Invalidation::All => {
                        tracing::warn!(
                            "cache invalidations may have been missed; clearing the L1 cache"
                        );
                        shortener.domains_changed_locally();
                        shortener.blocklist_changed_locally();
                    }
                }
                true
            }));
        }
        *inner.tasks.lock().unwrap_or_else(|e| e.into_inner()) = Some(Tasks {
            stop_forwarder,
            forwarder,
            stop_worker,
            worker,
            stop_deliveries,
            deliveries,
        });
        tokio::spawn(prune_clicks_hourly(Arc::downgrade(&inner)));
        Ok(Shortener { inner })
    }
}

/// Prunes the raw click log every hour while the service lives (the first time a minute
/// after the start, so a start stays quick).
async fn prune_clicks_hourly(inner: std::sync::Weak<Inner>) {
    let mut delay = Duration::from_secs(60);
    loop {
        tokio::time::sleep(delay).await;
        delay = Duration::from_secs(3600);
        let Some(inner) = inner.upgrade() else { return };
        let shortener = Shortener { inner };
        match shortener.prune_clicks().await {
            Ok(removed) => tracing::debug!(removed, "raw clicks pruned"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning raw clicks failed; trying again in an hour")
            }
        }
    }
}
