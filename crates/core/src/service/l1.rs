//! The in-process (L1) cache of redirect targets and its coherence: fills that raced an
//! invalidation are not stored, and invalidations reach every instance through the
//! shared cache.

use super::domains::DomainRef;
use super::{Inner, Shortener};
use crate::error::Result;
use crate::records::{CacheEntry, RedirectTarget, cache_key};
use crate::stats::Stats;
use quick_cache::Equivalent;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The L1 cache. Hashed with foldhash (seeded per process) rather than SipHash: a
/// key is two parts (domain and code), and SipHash over both cost the redirect path
/// about a fifth of an L1 hit.
pub(super) type L1Cache = quick_cache::sync::Cache<
    L1Key,
    L1Entry,
    quick_cache::UnitWeighter,
    foldhash::fast::RandomState,
>;

/// An empty L1 cache holding up to `capacity` entries.
pub(super) fn new_cache(capacity: u64) -> L1Cache {
    let capacity = capacity.max(1);
    quick_cache::sync::Cache::with(
        capacity as usize,
        capacity,
        quick_cache::UnitWeighter,
        foldhash::fast::RandomState::default(),
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// An L1 entry and when it stops being trusted.
#[derive(Clone)]
pub(super) struct L1Entry {
    pub(super) entry: CacheEntry,
    pub(super) expires: Instant,
}

/// The key of an L1 entry: the domain's id in this process (0: the default domain) and
/// the code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct L1Key {
    domain: u32,
    code: Box<str>,
}

/// An [`L1Key`] borrowed for a lookup, hashed the same: the redirect path looks up
/// without allocating a key.
#[derive(Debug, Clone, Copy, Hash)]
pub(super) struct L1Ref<'a> {
    pub(super) domain: u32,
    pub(super) code: &'a str,
}

impl Equivalent<L1Key> for L1Ref<'_> {
    fn equivalent(&self, key: &L1Key) -> bool {
        self.domain == key.domain && self.code == &*key.code
    }
}

impl L1Ref<'_> {
    fn owned(self) -> L1Key {
        L1Key {
            domain: self.domain,
            code: self.code.into(),
        }
    }
}

impl Inner {
    pub(super) fn forget_locally(&self, key: L1Ref<'_>) {
        self.l1_epochs.bump(key);
        self.l1.remove(&key);
    }

    /// Forgets every entry: invalidations may have been missed, or what every entry
    /// depends on (the blocklist) changed.
    pub(super) fn forget_everything(&self) {
        self.l1_epochs.bump_all();
        self.l1.clear();
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
    fn stripe(&self, key: L1Ref<'_>) -> &AtomicU64 {
        use std::hash::BuildHasher;
        &self.stripes[self.hasher.hash_one(key) as usize % self.stripes.len()]
    }

    /// The epoch of `key`: changes whenever `key` (or everything) is invalidated.
    pub(super) fn of(&self, key: L1Ref<'_>) -> (u64, u64) {
        (
            self.all.load(Ordering::Acquire),
            self.stripe(key).load(Ordering::Acquire),
        )
    }

    pub(super) fn bump(&self, key: L1Ref<'_>) {
        self.stripe(key).fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn bump_all(&self) {
        self.all.fetch_add(1, Ordering::AcqRel);
    }
}

impl Shortener {
    /// Fills the caches from the shared cache or the store. What enters L1 is checked
    /// against the blocklist here, so an L1 hit needs no check.
    pub(super) async fn load(&self, domain: &DomainRef, short_code: &str) -> Result<CacheEntry> {
        let inner = &*self.inner;
        let key = L1Ref {
            domain: domain.id,
            code: short_code,
        };
        let epoch = inner.l1_epochs.of(key);
        let shared_key = cache_key(domain.host(), short_code);
        let mut entry = None;
        if let Some(cache) = &inner.cache {
            match cache.get(&shared_key).await {
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
                let entry = match inner.links.get_by_code(domain.host(), short_code).await? {
                    Some(link) => CacheEntry::Found(Arc::new(RedirectTarget::of(&link))),
                    None => CacheEntry::Missing,
                };
                // An invalidation since the load began means the store may have answered
                // with the old link: don't share it (the L1 check below skips it too).
                if let Some(cache) = &inner.cache
                    && inner.l1_epochs.of(key) == epoch
                {
                    let ttl = match entry {
                        CacheEntry::Found(_) => inner.config.shared_ttl,
                        CacheEntry::Missing => inner.config.negative_ttl,
                    };
                    if let Err(e) = cache.set(&shared_key, &entry, ttl).await {
                        Stats::bump(&inner.stats.shared_cache_errors, 1);
                        tracing::warn!(error = %e, "shared cache write failed");
                    }
                }
                entry
            }
        };
        let entry = match entry {
            CacheEntry::Found(target)
                if !target.blocked && self.leads_to_blocked(&target).await? =>
            {
                CacheEntry::Found(Arc::new(RedirectTarget {
                    blocked: true,
                    ..(*target).clone()
                }))
            }
            other => other,
        };
        if inner.l1_epochs.of(key) == epoch {
            let ttl = match entry {
                CacheEntry::Found(_) => inner.config.l1_ttl,
                CacheEntry::Missing => inner.config.negative_ttl,
            };
            let cached = L1Entry {
                entry: entry.clone(),
                expires: Instant::now() + ttl,
            };
            inner.l1.insert(key.owned(), cached);
        }
        Ok(entry)
    }

    /// Whether a destination of `target` (its own or a rule's) is on the blocklist.
    async fn leads_to_blocked(&self, target: &RedirectTarget) -> Result<bool> {
        for url in target.destinations() {
            if self.host_is_blocked(url).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Makes every instance forget a link: this one at once, the others through the
    /// shared cache's invalidation listeners.
    pub(super) async fn invalidate(&self, domain: Option<&str>, short_code: &str) {
        if let Some(id) = self.domain_id(domain) {
            self.inner.forget_locally(L1Ref {
                domain: id,
                code: short_code,
            });
        }
        self.broadcast(&cache_key(domain, short_code)).await;
    }

    /// Tells the other instances through the shared cache (a link's key, or one of the
    /// `!` keys that name the domain table and the blocklist).
    pub(super) async fn broadcast(&self, key: &str) {
        if let Some(cache) = &self.inner.cache
            && let Err(e) = cache.invalidate(key).await
        {
            Stats::bump(&self.inner.stats.invalidation_failures, 1);
            tracing::error!(error = %e, key, "cache invalidation failed; other instances may serve the old link until their L1 TTL passes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{L1Epochs, L1Ref};

    fn key(code: &str) -> L1Ref<'_> {
        L1Ref { domain: 0, code }
    }

    #[test]
    fn an_invalidation_only_disturbs_fills_of_its_own_code() {
        let epochs = L1Epochs::default();
        let others: Vec<String> = (0..200).map(|i| format!("code{i}")).collect();
        let before: Vec<_> = others.iter().map(|c| epochs.of(key(c))).collect();
        let edited = epochs.of(key("edited"));
        epochs.bump(key("edited"));
        assert_ne!(
            epochs.of(key("edited")),
            edited,
            "its own fill is discarded"
        );
        let unaffected = others
            .iter()
            .zip(&before)
            .filter(|(c, b)| epochs.of(key(c)) == **b)
            .count();
        // Only codes sharing its stripe (1 in 1,024) see the bump.
        assert!(unaffected >= 195, "{unaffected} of 200 unaffected");
        let one = epochs.of(key("code1"));
        epochs.bump_all();
        assert_ne!(
            epochs.of(key("code1")),
            one,
            "clearing everything discards every fill"
        );
    }
}
