//! The in-process (L1) cache of redirect targets and its coherence: fills that raced an
//! invalidation are not stored, and invalidations reach every instance through the
//! shared cache.

use super::{Inner, Shortener};
use crate::error::Result;
use crate::records::{CacheEntry, RedirectTarget};
use crate::stats::Stats;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// An L1 entry and when it stops being trusted.
#[derive(Clone)]
pub(super) struct L1Entry {
    pub(super) entry: CacheEntry,
    pub(super) expires: Instant,
}

impl Inner {
    pub(super) fn forget_locally(&self, code: &str) {
        self.l1_epochs.bump(code);
        self.l1.remove(code);
    }
}

/// Invalidation counters striped by code. One global counter would make every fill lose
/// to any concurrent edit: with a steady stream of creates (each invalidates its new
/// code) fills would rarely be stored and the L1 hit ratio would collapse.
pub(super) struct L1Epochs {
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
    pub(super) fn of(&self, code: &str) -> (u64, u64) {
        (
            self.all.load(Ordering::Acquire),
            self.stripe(code).load(Ordering::Acquire),
        )
    }

    pub(super) fn bump(&self, code: &str) {
        self.stripe(code).fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn bump_all(&self) {
        self.all.fetch_add(1, Ordering::AcqRel);
    }
}

impl Shortener {
    /// Fills the caches from the shared cache or the store.
    pub(super) async fn load(&self, short_code: &str) -> Result<CacheEntry> {
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
                    Some(link) => CacheEntry::Found(Arc::new(RedirectTarget::of(&link))),
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
    pub(super) async fn invalidate(&self, short_code: &str) {
        self.inner.forget_locally(short_code);
        if let Some(cache) = &self.inner.cache
            && let Err(e) = cache.invalidate(short_code).await
        {
            Stats::bump(&self.inner.stats.invalidation_failures, 1);
            tracing::error!(error = %e, short_code, "cache invalidation failed; other instances may serve the old link until their L1 TTL passes");
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
