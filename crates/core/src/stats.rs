//! The service's counters, read by `/metrics` and by embedders.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes of a [`StripedCounters`]: threads beyond that many share one.
const STRIPES: usize = 8;

/// This thread's stripe, handed out in turn the first time a thread asks.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// Counters that many threads add to at once: each thread adds to a copy of its own, a
/// cache line or more away from the others', and reading sums the copies. A redirect
/// then never waits for a cache line another core has just written; reading (a metrics
/// scrape) costs a few loads more.
///
/// ```
/// let counters = hoplink::StripedCounters::new(2);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| counters.add(1, 1)));
///     }
/// });
/// assert_eq!((counters.get(0), counters.get(1)), (0, 4000));
/// ```
#[derive(Debug)]
pub struct StripedCounters {
    len: usize,
    stride: usize,
    cells: Box<[AtomicU64]>,
}

impl StripedCounters {
    /// `len` counters, all zero.
    pub fn new(len: usize) -> Self {
        // 8 counters (64 bytes) or more between one stripe's last and the next one's first.
        let stride = (len + 8).next_multiple_of(16);
        StripedCounters {
            len,
            stride,
            cells: (0..stride * STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds `n` to counter `i` (ignored past the end).
    pub fn add(&self, i: usize, n: u64) {
        if i < self.len {
            self.cells[stripe() * self.stride + i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counter `i`: the sum of its stripes (0 past the end).
    pub fn get(&self, i: usize) -> u64 {
        if i >= self.len {
            return 0;
        }
        (0..STRIPES)
            .map(|s| self.cells[s * self.stride + i].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

/// The counters a redirect bumps, striped ([`StripedCounters`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hot {
    CacheHits,
    CacheMisses,
    ClicksBuffered,
    ClicksDropped,
}

/// Counters of the service, for metrics.
#[derive(Debug)]
pub(crate) struct Stats {
    hot: StripedCounters,
    pub(crate) shared_cache_errors: AtomicU64,
    pub(crate) invalidation_failures: AtomicU64,
    pub(crate) clicks_published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) clicks_recorded: AtomicU64,
    pub(crate) clicks_duplicate: AtomicU64,
    pub(crate) record_failures: AtomicU64,
    pub(crate) webhook_deliveries: AtomicU64,
    pub(crate) webhook_failures: AtomicU64,
    pub(crate) webhook_drops: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Redirects answered from the in-process cache.
    pub cache_hits: u64,
    /// Redirects that had to look further.
    pub cache_misses: u64,
    /// Failed calls to the shared cache (served from the store instead).
    pub shared_cache_errors: u64,
    /// Invalidations the shared cache did not take (other instances rely on the L1 TTL).
    pub invalidation_failures: u64,
    /// Clicks accepted into the buffer.
    pub clicks_buffered: u64,
    /// Clicks dropped because the buffer was full or closed.
    pub clicks_dropped: u64,
    /// Clicks published to the event bus.
    pub clicks_published: u64,
    /// Failed publish attempts (retried).
    pub publish_failures: u64,
    /// Clicks written to the analytics store (first time).
    pub clicks_recorded: u64,
    /// Redelivered clicks recognised as already written.
    pub clicks_duplicate: u64,
    /// Failed batch writes (retried).
    pub record_failures: u64,
    /// Webhook deliveries a receiver took.
    pub webhook_deliveries: u64,
    /// Webhook delivery attempts that failed (retried with backoff).
    pub webhook_failures: u64,
    /// Webhook deliveries dropped because the store's queue was full.
    pub webhook_drops: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hot: StripedCounters::new(4),
            shared_cache_errors: AtomicU64::new(0),
            invalidation_failures: AtomicU64::new(0),
            clicks_published: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            clicks_recorded: AtomicU64::new(0),
            clicks_duplicate: AtomicU64::new(0),
            record_failures: AtomicU64::new(0),
            webhook_deliveries: AtomicU64::new(0),
            webhook_failures: AtomicU64::new(0),
            webhook_drops: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Counts one of the redirect's events.
    pub(crate) fn hot(&self, counter: Hot) {
        self.hot_by(counter, 1);
    }

    /// Adds `n` to one of the redirect's counters.
    pub(crate) fn hot_by(&self, counter: Hot, n: u64) {
        self.hot.add(counter as usize, n);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            cache_hits: self.hot.get(Hot::CacheHits as usize),
            cache_misses: self.hot.get(Hot::CacheMisses as usize),
            shared_cache_errors: r(&self.shared_cache_errors),
            invalidation_failures: r(&self.invalidation_failures),
            clicks_buffered: self.hot.get(Hot::ClicksBuffered as usize),
            clicks_dropped: self.hot.get(Hot::ClicksDropped as usize),
            clicks_published: r(&self.clicks_published),
            publish_failures: r(&self.publish_failures),
            clicks_recorded: r(&self.clicks_recorded),
            clicks_duplicate: r(&self.clicks_duplicate),
            record_failures: r(&self.record_failures),
            webhook_deliveries: r(&self.webhook_deliveries),
            webhook_failures: r(&self.webhook_failures),
            webhook_drops: r(&self.webhook_drops),
        }
    }
}
