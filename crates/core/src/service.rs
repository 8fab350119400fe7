//! The [`Shortener`] service: the one entry point to every feature.

use crate::analytics::{
    self, AnalyticsConfig, PendingClick, Stats, StatsSnapshot, VisitorHasher, run_forwarder,
    run_worker,
};
use crate::auth::{self, AccessClaims};
use crate::bus::EventBus;
use crate::cache::{Cache, Invalidation};
use crate::clock::{Clock, SystemClock, stored_precision};
use crate::code::{CodeGenerator, is_plausible_code, validate_alias};
use crate::error::{Error, GoneReason, Result};
use crate::ids::IdAllocator;
use crate::limiter::{LimitScope, RateLimitDecision, RateLimiter, RateLimits};
use crate::memory::{MemoryEventBus, MemoryIdAllocator, MemoryRateLimiter, MemoryStore};
use crate::model::{
    AnalyticsSummary, ApiKey, ApiKeyRecord, CacheEntry, ClickBudget, Cursor, Link, LinkPatch,
    LinkQuery, NewLink, Page, Principal, RedirectTarget, RedirectType, RefreshTokenRecord,
    RotateOutcome, TokenPair, User, UserRecord, Visit,
};
use crate::qr::{self, QrFormat};
use crate::store::{AnalyticsStore, LinkStore, UserStore};
use crate::text::StackString;
use crate::validate::{
    validate_email, validate_password, validate_tags, validate_title, validate_url,
};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Ids taken from the allocator at a time.
pub const ID_BLOCK_SIZE: u64 = 1000;
/// Most items in one bulk create.
pub const MAX_BULK_ITEMS: usize = 1000;
/// Default page size of listings.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size of listings.
pub const MAX_PAGE_SIZE: u32 = 100;

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

/// Listing options, as a client sends them.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Page size, 1–100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only links whose URL, title or code contains this text.
    pub query: Option<String>,
}

/// What a QR code encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrContent {
    /// The short URL of an existing code.
    ShortCode(String),
    /// Any http(s) URL.
    Url(String),
}

/// The state of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentHealth {
    /// `store`, `cache`, `rate_limiter`, `id_allocator`, `bus`.
    pub name: &'static str,
    /// Whether it answered.
    pub healthy: bool,
    /// Whether the service is down without it (the shared cache is optional: redirects go
    /// to the store when it fails).
    pub required: bool,
    /// The error, when unhealthy.
    pub error: Option<String>,
}

/// The state of every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// One entry per backend.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// False when a required backend is down.
    pub fn is_healthy(&self) -> bool {
        self.components.iter().all(|c| c.healthy || !c.required)
    }

    /// True when an optional backend is down.
    pub fn is_degraded(&self) -> bool {
        self.components.iter().any(|c| !c.healthy)
    }
}

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
    cache: Option<Arc<dyn Cache>>,
    limiter: Arc<dyn RateLimiter>,
    ids: Arc<dyn IdAllocator>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
    codes: CodeGenerator,
    id_block: tokio::sync::Mutex<Range<u64>>,
    l1: quick_cache::sync::Cache<String, L1Entry>,
    /// Bumped by invalidations: a cache fill that started before one for its code is not
    /// stored, so a reader racing an edit cannot put the old link back into L1.
    l1_epochs: L1Epochs,
    config: Config,
    jwt_secret: Arc<[u8]>,
    clicks: mpsc::Sender<PendingClick>,
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
    own_host: Option<String>,
    limits: RateLimits,
    l1_ttl: Duration,
    negative_ttl: Duration,
    shared_ttl: Duration,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

struct Tasks {
    stop_forwarder: watch::Sender<bool>,
    forwarder: JoinHandle<()>,
    stop_worker: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
}

/// An L1 entry and when it stops being trusted.
#[derive(Clone)]
struct L1Entry {
    entry: CacheEntry,
    expires: Instant,
}

/// Builds a [`Shortener`]; every setting has a default.
#[derive(Default)]
pub struct ShortenerBuilder {
    links: Option<Arc<dyn LinkStore>>,
    users: Option<Arc<dyn UserStore>>,
    analytics: Option<Arc<dyn AnalyticsStore>>,
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
    /// One store for links, users and analytics (what a PostgreSQL or memory store is).
    pub fn store<S>(mut self, store: Arc<S>) -> Self
    where
        S: LinkStore + UserStore + AnalyticsStore + 'static,
    {
        self.links = Some(store.clone());
        self.users = Some(store.clone());
        self.analytics = Some(store);
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

    /// Rate limit quotas (default: API.md's).
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
        let base_url = base_url.trim_end_matches('/').to_string();

        let memory = Arc::new(MemoryStore::new());
        let links = self.links.unwrap_or_else(|| memory.clone());
        let users = self.users.unwrap_or_else(|| memory.clone());
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
        if !(1..=analytics::MAX_BATCH_SIZE).contains(&analytics_config.batch_size)
            || analytics_config.flush_interval.is_zero()
        {
            return Err(Error::invalid(
                "analytics",
                "invalid_config",
                format!(
                    "batch size must be 1 to {} and the flush interval positive",
                    analytics::MAX_BATCH_SIZE
                ),
            ));
        }
        let l1_ttl = self.l1_ttl.unwrap_or(Duration::from_secs(60));
        let negative_ttl = self.negative_ttl.unwrap_or(Duration::from_secs(5));
        let l1 = quick_cache::sync::Cache::new(self.l1_capacity.unwrap_or(100_000).max(1) as usize);
        let stats = Arc::new(Stats::default());
        let (clicks, buffer) = mpsc::channel(analytics_config.buffer_capacity.max(1));

        let inner = Arc::new(Inner {
            links,
            users,
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
            config: Config {
                base_url,
                own_host,
                limits: self.limits.unwrap_or_default(),
                l1_ttl,
                negative_ttl,
                shared_ttl: self.shared_ttl.unwrap_or(Duration::from_secs(3600)),
                access_ttl: Duration::from_secs(15 * 60),
                refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            },
            jwt_secret,
            clicks,
            stats: stats.clone(),
            tasks: Mutex::new(None),
        });

        let (stop_forwarder, forwarder_stop) = watch::channel(false);
        let forwarder = tokio::spawn(run_forwarder(
            buffer,
            bus.clone(),
            VisitorHasher::new(analytics_secret),
            analytics_config,
            stats.clone(),
            forwarder_stop,
        ));
        let (stop_worker, worker_stop) = watch::channel(false);
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
                run_worker(consumer, store, analytics_config, stats, worker_stop).await;
            })
        });
        if let Some(cache) = &inner.cache {
            let weak = Arc::downgrade(&inner);
            cache.listen(Arc::new(move |invalidation| {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                match invalidation {
                    Invalidation::Code(code) => inner.forget_locally(code),
                    Invalidation::All => {
                        tracing::warn!(
                            "cache invalidations may have been missed; clearing the L1 cache"
                        );
                        inner.l1_epochs.bump_all();
                        inner.l1.clear();
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
        });
        Ok(Shortener { inner })
    }
}

impl Inner {
    fn forget_locally(&self, code: &str) {
        self.l1_epochs.bump(code);
        self.l1.remove(code);
    }
}

/// Invalidation counters striped by code. One global counter would make every fill lose
/// to any concurrent edit: with a steady stream of creates (each invalidates its new
/// code) fills would rarely be stored and the L1 hit ratio would collapse.
struct L1Epochs {
    all: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hasher: foldhash::fast::FixedState,
}

impl Default for L1Epochs {
    fn default() -> Self {
        L1Epochs {
            all: AtomicU64::new(0),
            stripes: (0..1024).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl std::fmt::Debug for L1Epochs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("L1Epochs")
    }
}

impl L1Epochs {
    fn stripe(&self, code: &str) -> &AtomicU64 {
        use std::hash::BuildHasher;
        &self.stripes[self.hasher.hash_one(code) as usize % self.stripes.len()]
    }

    /// The epoch of `code`: changes whenever `code` (or everything) is invalidated.
    fn of(&self, code: &str) -> (u64, u64) {
        (
            self.all.load(Ordering::Acquire),
            self.stripe(code).load(Ordering::Acquire),
        )
    }

    fn bump(&self, code: &str) {
        self.stripe(code).fetch_add(1, Ordering::AcqRel);
    }

    fn bump_all(&self) {
        self.all.fetch_add(1, Ordering::AcqRel);
    }
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

    /// The short URL of a code: `BASE_URL/code`.
    pub fn short_url(&self, short_code: &str) -> String {
        format!("{}/{short_code}", self.inner.config.base_url)
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

    fn validate_url(&self, raw: &str) -> Result<String> {
        Ok(validate_url("original_url", raw, self.inner.config.own_host.as_deref())?.into())
    }

    fn validate_expiry(&self, expires_at: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
        match expires_at {
            Some(t) if t <= self.inner.clock.now() => Err(Error::invalid(
                "expires_at",
                "invalid_expiry",
                "must be in the future",
            )),
            other => Ok(other.map(stored_precision)),
        }
    }

    fn validate_max_clicks(max_clicks: Option<u64>) -> Result<Option<u64>> {
        match max_clicks {
            Some(0) => Err(Error::invalid(
                "max_clicks",
                "invalid_max_clicks",
                "must be at least 1",
            )),
            Some(n) if n > i64::MAX as u64 => Err(Error::invalid(
                "max_clicks",
                "invalid_max_clicks",
                "is too large",
            )),
            other => Ok(other),
        }
    }

    /// Creates a short link, with a generated code or the requested alias.
    ///
    /// Fails with `Invalid` naming the field for bad input and with
    /// `Conflict { code: "alias_taken" }` when the alias exists.
    pub async fn shorten(&self, request: NewLink, owner: Option<&Principal>) -> Result<Link> {
        let original_url = self.validate_url(&request.original_url)?;
        if let Some(alias) = &request.custom_alias {
            validate_alias(alias)?;
        }
        let expires_at = self.validate_expiry(request.expires_at)?;
        let max_clicks = Self::validate_max_clicks(request.max_clicks)?;
        let title = validate_title(request.title.as_deref())?;
        let tags = validate_tags(request.tags.as_deref().unwrap_or_default())?;
        let now = self.now();
        let mut link = Link {
            id: Uuid::now_v7(),
            short_code: String::new(),
            original_url,
            title,
            tags,
            redirect_type: request.redirect_type.unwrap_or_default(),
            owner_id: owner.map(|p| p.user_id),
            created_at: now,
            updated_at: now,
            expires_at,
            max_clicks,
            click_count: 0,
            is_active: true,
        };
        if let Some(alias) = request.custom_alias {
            link.short_code = alias;
            self.inner.links.insert(&link).await?;
        } else {
            // A generated code can only be taken by a custom alias that happens to look
            // like one: skip to the next id.
            let mut attempts = 0;
            loop {
                link.short_code = self.inner.codes.encode(self.next_id().await?);
                match self.inner.links.insert(&link).await {
                    Ok(()) => break,
                    Err(Error::Conflict { .. }) if attempts < 16 => attempts += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        // The code may have been cached as unknown.
        self.invalidate(&link.short_code).await;
        Ok(link)
    }

    /// Creates up to 1,000 links; one result per item, in order.
    pub async fn shorten_many(
        &self,
        requests: Vec<NewLink>,
        owner: Option<&Principal>,
    ) -> Result<Vec<Result<Link>>> {
        if requests.len() > MAX_BULK_ITEMS {
            return Err(Error::invalid(
                "items",
                "too_many_items",
                format!(
                    "at most {MAX_BULK_ITEMS} items per request, got {}",
                    requests.len()
                ),
            ));
        }
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.shorten(request, owner).await);
        }
        Ok(results)
    }

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
                user_agent: visit.user_agent.map(Box::from),
                referrer: visit.referrer.map(Box::from),
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
        let human = !visit.user_agent.is_some_and(analytics::is_bot);
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

    /// Fills the caches from the shared cache or the store.
    async fn load(&self, short_code: &str) -> Result<CacheEntry> {
        let inner = &*self.inner;
        let epoch = inner.l1_epochs.of(short_code);
        let mut entry = None;
        if let Some(cache) = &inner.cache {
            match cache.get(short_code).await {
                Ok(found) => entry = found,
                Err(e) => {
                    Stats::bump(&inner.stats.shared_cache_errors, 1);
                    tracing::warn!(error = %e, "shared cache read failed; using the store");
                }
            }
        }
        let entry = match entry {
            Some(entry) => entry,
            None => {
                let entry = match inner.links.get_by_code(short_code).await? {
                    Some(link) => CacheEntry::Found(Arc::new(link.redirect_target())),
                    None => CacheEntry::Missing,
                };
                // An invalidation since the load began means the store may have answered
                // with the old link: don't share it (the L1 check below skips it too).
                if let Some(cache) = &inner.cache
                    && inner.l1_epochs.of(short_code) == epoch
                {
                    let ttl = match entry {
                        CacheEntry::Found(_) => inner.config.shared_ttl,
                        CacheEntry::Missing => inner.config.negative_ttl,
                    };
                    if let Err(e) = cache.set(short_code, &entry, ttl).await {
                        Stats::bump(&inner.stats.shared_cache_errors, 1);
                        tracing::warn!(error = %e, "shared cache write failed");
                    }
                }
                entry
            }
        };
        if inner.l1_epochs.of(short_code) == epoch {
            let ttl = match entry {
                CacheEntry::Found(_) => inner.config.l1_ttl,
                CacheEntry::Missing => inner.config.negative_ttl,
            };
            let cached = L1Entry {
                entry: entry.clone(),
                expires: Instant::now() + ttl,
            };
            inner.l1.insert(short_code.to_string(), cached);
        }
        Ok(entry)
    }

    /// Makes every instance forget a code: this one at once, the others through the
    /// shared cache's invalidation listeners.
    async fn invalidate(&self, short_code: &str) {
        self.inner.forget_locally(short_code);
        if let Some(cache) = &self.inner.cache
            && let Err(e) = cache.invalidate(short_code).await
        {
            Stats::bump(&self.inner.stats.invalidation_failures, 1);
            tracing::error!(error = %e, short_code, "cache invalidation failed; other instances may serve the old link until their L1 TTL passes");
        }
    }

    /// A link of the caller's.
    pub async fn get_link(&self, principal: &Principal, id: Uuid) -> Result<Link> {
        let link = self
            .inner
            .links
            .get(id)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        owned_by(link, principal)
    }

    /// The caller's links, newest first.
    pub async fn list_links(
        &self,
        principal: &Principal,
        options: ListOptions,
    ) -> Result<Page<Link>> {
        let limit = options.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                "invalid_limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}, got {limit}"),
            ));
        }
        let cursor = options.cursor.as_deref().map(Cursor::decode).transpose()?;
        let text = options
            .query
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > 200) {
            return Err(Error::invalid(
                "q",
                "invalid_query",
                "must be at most 200 characters",
            ));
        }
        let tag = options
            .tag
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        self.inner
            .links
            .list(&LinkQuery {
                owner_id: principal.user_id,
                limit,
                cursor,
                tag,
                text,
            })
            .await
    }

    /// Changes a link of the caller's; the very next redirect sees the change.
    pub async fn update_link(
        &self,
        principal: &Principal,
        id: Uuid,
        mut patch: LinkPatch,
    ) -> Result<Link> {
        let link = self.get_link(principal, id).await?;
        if let Some(url) = &patch.original_url {
            patch.original_url = Some(self.validate_url(url)?);
        }
        if let Some(expires_at) = patch.expires_at {
            patch.expires_at = Some(self.validate_expiry(expires_at)?);
        }
        if let Some(max_clicks) = patch.max_clicks {
            Self::validate_max_clicks(max_clicks)?;
        }
        if let Some(title) = &patch.title {
            patch.title = Some(validate_title(title.as_deref())?);
        }
        if let Some(tags) = &patch.tags {
            patch.tags = Some(validate_tags(tags)?);
        }
        if patch.is_empty() {
            return Ok(link);
        }
        let updated = self
            .inner
            .links
            .update(id, &patch, self.now())
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        self.invalidate(&updated.short_code).await;
        Ok(updated)
    }

    /// Deletes a link of the caller's; its code answers 404 from the very next redirect.
    pub async fn delete_link(&self, principal: &Principal, id: Uuid) -> Result<()> {
        self.get_link(principal, id).await?;
        let deleted = self
            .inner
            .links
            .delete(id)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        self.invalidate(&deleted.short_code).await;
        Ok(())
    }

    /// The analytics summary of a link of the caller's over the last `days` days
    /// (1–365, today included).
    pub async fn analytics_summary(
        &self,
        principal: &Principal,
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
        if !is_plausible_code(short_code) {
            return Err(Error::NotFound { what: "link" });
        }
        let link = self
            .inner
            .links
            .get_by_code(short_code)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        let link = owned_by(link, principal)?;
        let to = self.inner.clock.now().date_naive();
        let from = to - chrono::Days::new(u64::from(days) - 1);
        let window = self.inner.analytics.rollups(link.id, from, to).await?;
        Ok(analytics::summarize(&link.short_code, from, to, window))
    }

    /// A QR code of a short link or of any http(s) URL.
    pub async fn qr_code(
        &self,
        content: QrContent,
        format: QrFormat,
        size: u32,
    ) -> Result<Vec<u8>> {
        let data = match content {
            QrContent::ShortCode(code) => {
                if !is_plausible_code(&code) {
                    return Err(Error::NotFound { what: "link" });
                }
                self.inner
                    .links
                    .get_by_code(&code)
                    .await?
                    .ok_or(Error::NotFound { what: "link" })?;
                self.short_url(&code)
            }
            QrContent::Url(url) => validate_url("url", &url, None)?.into(),
        };
        tokio::task::spawn_blocking(move || qr::render(&data, format, size))
            .await
            .map_err(|e| Error::backend("qr", e))?
    }

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

    /// Registers a user.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
    ) -> Result<User> {
        let email = validate_email(email)?;
        validate_password(password)?;
        let full_name = match full_name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
                return Err(Error::invalid(
                    "full_name",
                    "invalid_name",
                    "must be at most 100 printable characters",
                ));
            }
            other => other.map(str::to_string),
        };
        let password = password.to_string();
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| Error::backend("argon2", e))??;
        let user = User {
            id: Uuid::now_v7(),
            email,
            full_name,
            created_at: self.now(),
        };
        self.inner
            .users
            .create_user(&UserRecord {
                user: user.clone(),
                password_hash,
            })
            .await?;
        Ok(user)
    }

    fn issue_access_token(&self, user_id: Uuid, family_id: Uuid) -> Result<String> {
        let now = self.inner.clock.now().timestamp();
        auth::sign_access_token(
            &self.inner.jwt_secret,
            &AccessClaims {
                sub: user_id,
                sid: family_id,
                iat: now,
                exp: now + self.inner.config.access_ttl.as_secs() as i64,
            },
        )
    }

    fn new_refresh_token(&self, user_id: Uuid, family_id: Uuid) -> (String, RefreshTokenRecord) {
        let token = auth::new_secret(auth::REFRESH_TOKEN_PREFIX);
        let now = self.now();
        let record = RefreshTokenRecord {
            id: Uuid::now_v7(),
            user_id,
            family_id,
            token_hash: auth::token_hash(&token),
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.inner.config.refresh_ttl)
                    .unwrap_or(chrono::Duration::days(30)),
        };
        (token, record)
    }

    fn token_pair(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        refresh_token: String,
    ) -> Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.issue_access_token(user_id, family_id)?,
            refresh_token,
            token_type: "bearer",
            expires_in: self.inner.config.access_ttl.as_secs(),
        })
    }

    /// Logs in: one answer (`Unauthorized`) for an unknown email and a wrong password,
    /// in about the same time.
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair> {
        let record = if email.len() <= 254 {
            self.inner.users.user_by_email(email.trim()).await?
        } else {
            None
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        let password = password.to_string();
        let verified = tokio::task::spawn_blocking(move || {
            password.len() <= crate::validate::MAX_PASSWORD_BYTES
                && auth::verify_password(&password, stored.as_deref())
        })
        .await
        .map_err(|e| Error::backend("argon2", e))?;
        let (true, Some(record)) = (verified, record) else {
            return Err(Error::Unauthorized {
                reason: "invalid email or password",
            });
        };
        let user_id = record.user.id;
        let family_id = Uuid::now_v7();
        let (token, stored) = self.new_refresh_token(user_id, family_id);
        self.inner.users.insert_refresh_token(&stored).await?;
        self.token_pair(user_id, family_id, token)
    }

    /// Exchanges a refresh token for a new pair. The old token dies; presenting a dead
    /// token again revokes the whole login (every token of its family).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let invalid = Error::Unauthorized {
            reason: "invalid refresh token",
        };
        let old_hash = auth::token_hash(refresh_token);
        let Some(old) = self.inner.users.refresh_token(&old_hash).await? else {
            return Err(invalid);
        };
        let family_id = old.family_id;
        let (token, record) = self.new_refresh_token(old.user_id, family_id);
        match self
            .inner
            .users
            .rotate_refresh_token(&old_hash, &record, self.inner.clock.now())
            .await?
        {
            RotateOutcome::Rotated { user_id } => self.token_pair(user_id, family_id, token),
            RotateOutcome::Reused => {
                tracing::warn!(%family_id, "refresh token reused; login revoked");
                Err(Error::Unauthorized {
                    reason: "refresh token reuse detected; the login is revoked",
                })
            }
            RotateOutcome::Invalid => Err(invalid),
        }
    }

    /// Ends a login: its refresh token and access tokens stop working. Unknown tokens
    /// are ignored (logging out twice is fine).
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let hash = auth::token_hash(refresh_token);
        if let Some(token) = self.inner.users.refresh_token(&hash).await? {
            self.inner.users.revoke_family(token.family_id).await?;
        }
        Ok(())
    }

    /// Checks an access token: signature, expiry, and that its login was not revoked.
    pub async fn authenticate_bearer(&self, access_token: &str) -> Result<Principal> {
        let claims = auth::verify_access_token(
            &self.inner.jwt_secret,
            access_token,
            self.inner.clock.now().timestamp(),
        )?;
        if !self.inner.users.family_active(claims.sid).await? {
            return Err(Error::Unauthorized {
                reason: "login revoked",
            });
        }
        Ok(Principal {
            user_id: claims.sub,
        })
    }

    /// Checks an API key.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        if !key.starts_with(auth::API_KEY_PREFIX) || key.len() > 200 {
            return Err(Error::Unauthorized {
                reason: "invalid API key",
            });
        }
        let found = self
            .inner
            .users
            .api_key_by_hash(&auth::token_hash(key))
            .await?;
        found
            .map(|k| Principal { user_id: k.user_id })
            .ok_or(Error::Unauthorized {
                reason: "invalid API key",
            })
    }

    /// The caller's account.
    pub async fn user(&self, principal: &Principal) -> Result<User> {
        self.inner
            .users
            .user_by_id(principal.user_id)
            .await?
            .ok_or(Error::Unauthorized {
                reason: "user no longer exists",
            })
    }

    /// Creates an API key; the secret is returned here only, and stored hashed.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "invalid_name",
                "must be 1 to 100 printable characters",
            ));
        }
        let secret = auth::new_secret(auth::API_KEY_PREFIX);
        let key = ApiKey {
            id: Uuid::now_v7(),
            user_id: principal.user_id,
            name: name.to_string(),
            prefix: secret.chars().take(8).collect(),
            created_at: self.now(),
        };
        self.inner
            .users
            .insert_api_key(&ApiKeyRecord {
                key: key.clone(),
                key_hash: auth::token_hash(&secret),
            })
            .await?;
        Ok((key, secret))
    }

    /// The caller's live API keys, newest first.
    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        self.inner.users.list_api_keys(principal.user_id).await
    }

    /// Revokes one of the caller's API keys; it stops working at once.
    pub async fn revoke_api_key(&self, principal: &Principal, key_id: Uuid) -> Result<()> {
        if self
            .inner
            .users
            .revoke_api_key(principal.user_id, key_id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound { what: "api key" })
        }
    }

    /// Asks every backend whether it answers (each within 2 s).
    pub async fn health(&self) -> HealthReport {
        async fn probe(
            name: &'static str,
            required: bool,
            check: impl std::future::Future<Output = Result<()>>,
        ) -> ComponentHealth {
            let result = tokio::time::timeout(Duration::from_secs(2), check)
                .await
                .unwrap_or_else(|_| Err(Error::unavailable(name, "no answer within 2 s")));
            ComponentHealth {
                name,
                healthy: result.is_ok(),
                required,
                error: result.err().map(|e| e.to_string()),
            }
        }
        let inner = &*self.inner;
        let mut components = vec![
            probe("store", true, inner.links.health()).await,
            probe("rate_limiter", false, inner.limiter.health()).await,
            probe("id_allocator", true, inner.ids.health()).await,
            probe("bus", false, inner.bus.health()).await,
        ];
        if let Some(cache) = &inner.cache {
            components.insert(1, probe("cache", false, cache.health()).await);
        }
        HealthReport { components }
    }

    /// Stops the background work: no click is accepted after this; the buffered ones are
    /// published, the worker drains the bus and flushes to the store, then this returns.
    /// Calling it again does nothing.
    pub async fn shutdown(&self) {
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(tasks) = tasks else { return };
        let _ = tasks.stop_forwarder.send(true);
        if let Err(e) = tasks.forwarder.await {
            tracing::error!(error = %e, "click forwarder failed");
        }
        if let Err(e) = self.inner.bus.flush().await {
            tracing::error!(error = %e, "flushing the event bus failed; unsent clicks may be lost");
        }
        let _ = tasks.stop_worker.send(true);
        if let Some(worker) = tasks.worker
            && let Err(e) = worker.await
        {
            tracing::error!(error = %e, "analytics worker failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::L1Epochs;

    #[test]
    fn an_invalidation_only_disturbs_fills_of_its_own_code() {
        let epochs = L1Epochs::default();
        let others: Vec<String> = (0..200).map(|i| format!("code{i}")).collect();
        let before: Vec<_> = others.iter().map(|c| epochs.of(c)).collect();
        let edited = epochs.of("edited");
        epochs.bump("edited");
        assert_ne!(epochs.of("edited"), edited, "its own fill is discarded");
        let unaffected = others
            .iter()
            .zip(&before)
            .filter(|(c, b)| epochs.of(c) == **b)
            .count();
        // Only codes sharing its stripe (1 in 1,024) see the bump.
        assert!(unaffected >= 195, "{unaffected} of 200 unaffected");
        let one = epochs.of("code1");
        epochs.bump_all();
        assert_ne!(
            epochs.of("code1"),
            one,
            "clearing everything discards every fill"
        );
    }
}
