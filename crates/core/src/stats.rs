//! The service's counters, read by `/metrics` and by embedders.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the service, for metrics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) shared_cache_errors: AtomicU64,
    pub(crate) invalidation_failures: AtomicU64,
    pub(crate) clicks_buffered: AtomicU64,
    pub(crate) clicks_dropped: AtomicU64,
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

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            cache_hits: r(&self.cache_hits),
            cache_misses: r(&self.cache_misses),
            shared_cache_errors: r(&self.shared_cache_errors),
            invalidation_failures: r(&self.invalidation_failures),
            clicks_buffered: r(&self.clicks_buffered),
            clicks_dropped: r(&self.clicks_dropped),
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
