use super::lock;
use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::limiter::{Quota, RateLimitDecision, RateLimiter};
use async_trait::async_trait;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

// foldhash: the flood guard hashes a key per redirect, and SipHash showed in profiles;
// still seeded per process, so clients can't choose colliding keys.
type HashMap<K, V> = std::collections::HashMap<K, V, RandomState>;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SHARDS: usize = 32;
/// A shard is swept of fully replenished keys when it grows past this.
const SWEEP_AT: usize = 4096;

/// A GCRA limiter (the generic cell rate algorithm: a leaky bucket that stores one
/// timestamp per key). It allows bursts of up to `limit` and then one request every
/// `period / limit`; memory per key is one `i64`. Keys are sharded to keep lock
/// contention low on the redirect path.
#[derive(Debug)]
pub struct MemoryRateLimiter {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct Shard {
    /// Theoretical arrival time of the next request, in ns since the epoch.
    tat: HashMap<Box<str>, i64>,
    sweep_at: usize,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter {
    /// A limiter on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A limiter on the given clock (tests move time instead of sleeping).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryRateLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::default(),
            clock,
        }
    }

    fn decide(&self, key: &str, quota: Quota, cost: u32) -> RateLimitDecision {
        self.check_at(key, quota, cost, self.clock.now_nanos())
    }

    /// The decision for `cost` requests of `key` at `now_ns` (the whole algorithm, for
    /// tests and callers that already know the time).
    pub fn check_at(&self, key: &str, quota: Quota, cost: u32, now_ns: i64) -> RateLimitDecision {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut shard = lock(shard);
        let period = i64::try_from(quota.period.as_nanos()).unwrap_or(i64::MAX);
        let interval = (period / i64::from(quota.limit)).max(1);
        let stored = shard.tat.get(key).copied().unwrap_or(now_ns);
        let tat = stored.max(now_ns);
        let new_tat = tat.saturating_add(interval.saturating_mul(i64::from(cost.max(1))));
        let ns = |v: i64| Duration::from_nanos(v.max(0) as u64);
        if new_tat - now_ns > period {
            return RateLimitDecision {
                allowed: false,
                limit: quota.limit,
                remaining: 0,
                reset_after: ns(tat - now_ns),
                retry_after: Some(ns(new_tat - period - now_ns).max(Duration::from_nanos(1))),
            };
        }
        if cost == 0 {
            // A look: one more would fit; nothing is counted.
            return RateLimitDecision {
                allowed: true,
                limit: quota.limit,
                remaining: u32::try_from((period - (tat - now_ns)) / interval).unwrap_or(0),
                reset_after: ns(tat - now_ns),
                retry_after: None,
            };
        }
        match shard.tat.get_mut(key) {
            Some(slot) => *slot = new_tat,
            None => {
                shard.tat.insert(key.into(), new_tat);
                if shard.tat.len() > shard.sweep_at.max(SWEEP_AT) {
                    shard.tat.retain(|_, tat| *tat > now_ns);
                    shard.sweep_at = shard.tat.len() * 2;
                }
            }
        }
        RateLimitDecision {
            allowed: true,
            limit: quota.limit,
            remaining: u32::try_from((period - (new_tat - now_ns)) / interval).unwrap_or(0),
            reset_after: ns(new_tat - now_ns),
            retry_after: None,
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check_cost(&self, key: &str, quota: Quota, cost: u32) -> Result<RateLimitDecision> {
        Ok(self.decide(key, quota, cost))
    }

    fn check_local(&self, key: &str, quota: Quota) -> Option<RateLimitDecision> {
        Some(self.decide(key, quota, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn burst_then_steady_rate_with_manual_clock() {
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let limiter = MemoryRateLimiter::with_clock(clock.clone());
        let quota = Quota::new(3, Duration::from_secs(60)).unwrap();
        for expected_remaining in [2, 1, 0] {
            let d = limiter.check("k", quota).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
        }
        let refused = limiter.check("k", quota).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(20)));
        assert_eq!(refused.reset_after, Duration::from_secs(60));
        // Another key is unaffected.
        assert!(limiter.check("other", quota).await.unwrap().allowed);
        clock.advance(Duration::from_secs(20));
        let again = limiter.check("k", quota).await.unwrap();
        assert!(again.allowed);
        assert_eq!(again.remaining, 0);
        clock.advance(Duration::from_secs(60));
        assert_eq!(limiter.check("k", quota).await.unwrap().remaining, 2);
    }

    #[test]
    fn sweeps_idle_keys() {
        let limiter = MemoryRateLimiter::new();
        let quota = Quota::new(1, Duration::from_secs(1)).unwrap();
        for i in 0..(SHARDS * SWEEP_AT * 2) {
            limiter.check_at(&format!("k{i}"), quota, 1, (i as i64) * 2_000_000_000);
        }
        let total: usize = limiter.shards.iter().map(|s| lock(s).tat.len()).sum();
        assert!(total < SHARDS * SWEEP_AT * 2, "{total} keys kept");
    }
}
