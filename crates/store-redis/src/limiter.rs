use crate::Redis;
use async_trait::async_trait;
use hoplink::memory::MemoryRateLimiter;
use hoplink::{LimitScope, Quota, RateLimitDecision, RateLimiter, Result};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// GCRA on the Redis clock (so instances with skewed clocks agree), in microseconds;
/// ARGV: limit, period, cost (0: whether one more would fit, counting nothing). Returns
/// {allowed, remaining, reset_after_us, retry_after_us}.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * math.max(cost, 1)
if new_tat - now > period then
  return {0, 0, math.floor(tat - now), math.max(1, math.ceil(new_tat - period - now))}
end
if cost == 0 then
  return {1, math.floor((period - (tat - now)) / interval + 0.000001), math.floor(tat - now), 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((period - (new_tat - now)) / interval + 0.000001), math.floor(new_tat - now), 0}
";

/// Adds this instance's flood-guard counts to the shared window counters and reads the
/// totals of every instance. KEYS: current and previous window; ARGV: what to add to
/// each, and the counters' TTL in ms. Returns {current total, previous total}.
const WINDOW_SYNC: &str = r"
local function sync(key, add, ttl)
  if add > 0 then
    local total = redis.call('INCRBY', key, add)
    redis.call('PEXPIRE', key, ttl)
    return total
  end
  return tonumber(redis.call('GET', key) or '0')
end
local cur = sync(KEYS[1], tonumber(ARGV[1]), ARGV[3])
local prev = sync(KEYS[2], tonumber(ARGV[2]), ARGV[3])
return {cur, prev}
";

/// What the limiter does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Decide with an in-process limiter: each instance enforces the quotas alone, so the
    /// service stays up and abuse is still bounded (by the number of instances).
    #[default]
    Open,
    /// Refuse every request that needs Redis (429 with `Retry-After: 1`).
    Closed,
}

/// A rate limiter on Redis.
///
/// - [`RateLimiter::check`]: GCRA in one Lua script (`EVALSHA`), one round trip, atomic
///   per key across any number of instances, on Redis's clock.
/// - The redirect flood guard (keys of [`LimitScope::Redirect`]) is decided locally by
///   [`RateLimiter::check_local`], without a round trip: each instance counts in
///   wall-clock windows of one period (a sliding-window estimate: the previous window
///   weighs what is left of it), and every 100 ms it adds its counts to the shared
///   window counters in Redis and reads the totals of all instances, in one pipelined
///   round trip for all active keys. **Accuracy**: on one instance it admits exactly the
///   quota; across N instances the excess is what the other instances admit between
///   two syncs, at most `(N - 1) × rate × 100 ms` (and never more than `(N - 1) ×
///   quota`). While Redis is unreachable each instance keeps enforcing the quota on its
///   own traffic.
#[derive(Debug, Clone)]
pub struct RedisRateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: Redis,
    on_failure: FailurePolicy,
    fallback: MemoryRateLimiter,
    fallback_decisions: AtomicU64,
    gcra: redis::Script,
    window_sync: redis::Script,
    local_prefix: String,
    local: LocalWindows,
    /// Overlapping syncs would send the same counts twice.
    syncing: tokio::sync::Mutex<()>,
    _stop_sync: oneshot::Sender<()>,
}

/// Interval of the flood guard's reconciliation with Redis.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

impl RedisRateLimiter {
    pub(crate) fn new(redis: Redis, on_failure: FailurePolicy) -> Self {
        let (stop, stopped) = oneshot::channel();
        let inner = Arc::new(Inner {
            redis,
            on_failure,
            fallback: MemoryRateLimiter::new(),
            fallback_decisions: AtomicU64::new(0),
            gcra: redis::Script::new(GCRA),
            window_sync: redis::Script::new(WINDOW_SYNC),
            local_prefix: format!("{}:", LimitScope::Redirect.as_str()),
            local: LocalWindows::default(),
            syncing: tokio::sync::Mutex::new(()),
            _stop_sync: stop,
        });
        tokio::spawn(sync_loop(Arc::downgrade(&inner), stopped));
        RedisRateLimiter { inner }
    }

    /// Decisions made without Redis because it was unreachable.
    pub fn fallback_decisions(&self) -> u64 {
        self.inner.fallback_decisions.load(Ordering::Relaxed)
    }

    /// Reconciles the local flood-guard windows with Redis now (the background task does
    /// this every 100 ms).
    pub async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check_cost(&self, key: &str, quota: Quota, cost: u32) -> Result<RateLimitDecision> {
        let inner = &self.inner;
        let mut invocation = inner.gcra.prepare_invoke();
        invocation
            .key(inner.redis.key(&format!("rl:{key}")))
            .arg(quota.limit)
            .arg(quota.period.as_micros().max(1) as u64)
            .arg(cost);
        match inner
            .redis
            .run_script::<(u8, u64, u64, u64)>(invocation)
            .await
        {
            Ok((allowed, remaining, reset_us, retry_us)) => Ok(RateLimitDecision {
                allowed: allowed == 1,
                limit: quota.limit,
                remaining: u32::try_from(remaining).unwrap_or(quota.limit),
                reset_after: Duration::from_micros(reset_us),
                retry_after: (allowed != 1).then(|| Duration::from_micros(retry_us.max(1))),
            }),
            Err(e) if e.is_retryable() => {
                inner.fallback_decisions.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "rate limiter on Redis unavailable");
                Ok(match inner.on_failure {
                    FailurePolicy::Open => inner.fallback.check_cost(key, quota, cost).await?,
                    FailurePolicy::Closed => RateLimitDecision {
                        allowed: false,
                        limit: quota.limit,
                        remaining: 0,
                        reset_after: Duration::from_secs(1),
                        retry_after: Some(Duration::from_secs(1)),
                    },
                })
            }
            Err(e) => Err(e),
        }
    }

    fn check_local(&self, key: &str, quota: Quota) -> Option<RateLimitDecision> {
        let inner = &self.inner;
        key.starts_with(&inner.local_prefix)
            .then(|| inner.local.check(key, quota, now_ms()))
    }

    async fn health(&self) -> Result<()> {
        self.inner.redis.ping().await
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const SHARDS: usize = 16;

/// The flood guard's local windows, per key.
#[derive(Debug)]
struct LocalWindows {
    shards: Vec<Mutex<HashMap<Box<str>, Window>>>,
    hasher: RandomState,
}

impl Default for LocalWindows {
    fn default() -> Self {
        LocalWindows {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

/// One key's counts in the current and the previous window.
#[derive(Debug, Clone, Copy)]
struct Window {
    period_ms: u64,
    limit: u32,
    index: u64,
    /// Totals of every instance, as Redis last said (including what this one sent).
    current_shared: u64,
    previous_shared: u64,
    /// Counted here and not yet sent.
    current_pending: u64,
    previous_pending: u64,
}

impl Window {
    /// Nothing counted yet in window `index`.
    fn empty(period_ms: u64, limit: u32, index: u64) -> Self {
        Window {
            period_ms,
            limit,
            index,
            current_shared: 0,
            previous_shared: 0,
            current_pending: 0,
            previous_pending: 0,
        }
    }

    fn roll(&mut self, index: u64) {
        if index == self.index + 1 {
            self.previous_shared = self.current_shared;
            self.previous_pending = self.current_pending;
            self.current_shared = 0;
            self.current_pending = 0;
            self.index = index;
        } else if index > self.index {
            *self = Window::empty(self.period_ms, self.limit, index);
        }
    }

    fn is_idle(&self) -> bool {
        self.current_shared + self.current_pending + self.previous_shared + self.previous_pending
            == 0
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalWindows {
    fn check(&self, key: &str, quota: Quota, now_ms: u64) -> RateLimitDecision {
        let period_ms = (quota.period.as_millis() as u64).max(1);
        let index = now_ms / period_ms;
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut shard = lock(shard);
        let window = match shard.get_mut(key) {
            Some(w) => w,
            None => shard
                .entry(key.into())
                .or_insert_with(|| Window::empty(period_ms, quota.limit, index)),
        };
        if window.period_ms != period_ms || window.limit != quota.limit {
            *window = Window::empty(period_ms, quota.limit, index);
        }
        window.roll(index);
        let elapsed = now_ms - index * period_ms;
        let left = 1.0 - elapsed as f64 / period_ms as f64;
        let previous = (window.previous_shared + window.previous_pending) as f64;
        let current = (window.current_shared + window.current_pending) as f64;
        let estimate = previous * left + current;
        let limit = f64::from(quota.limit);
        let until_window_end = Duration::from_millis(period_ms - elapsed);
        if estimate + 1.0 > limit {
            // When the previous window's weight has decayed enough, or, if the current
            // window alone is full, part-way into the next one.
            let wait_ms = if current + 1.0 > limit {
                let fraction = 1.0 - (limit - 1.0) / current.max(1.0);
                (period_ms - elapsed) as f64 + fraction * period_ms as f64
            } else {
                let fraction = 1.0 - (limit - 1.0 - current) / previous.max(1.0);
                (fraction - (1.0 - left)) * period_ms as f64
            };
            let retry_after = Duration::from_millis(wait_ms.ceil().max(1.0) as u64);
            return RateLimitDecision {
                allowed: false,
                limit: quota.limit,
                remaining: 0,
                reset_after: until_window_end + quota.period,
                retry_after: Some(retry_after),
            };
        }
        window.current_pending += 1;
        RateLimitDecision {
            allowed: true,
            limit: quota.limit,
            remaining: (limit - (estimate + 1.0)).floor().max(0.0) as u32,
            reset_after: until_window_end + quota.period,
            retry_after: None,
        }
    }

    /// What to send: every key active in the current or previous window. Drops idle keys.
    fn snapshot(&self, now_ms: u64) -> Vec<Pending> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            shard.retain(|key, window| {
                window.roll(now_ms / window.period_ms);
                if window.is_idle() {
                    return false;
                }
                out.push(Pending {
                    key: key.to_string(),
                    index: window.index,
                    period_ms: window.period_ms,
                    current: window.current_pending,
                    previous: window.previous_pending,
                });
                true
            });
        }
        out
    }

    /// Applies Redis's totals to the keys that were sent.
    fn apply(&self, sent: &Pending, current_total: u64, previous_total: u64) {
        let shard = &self.shards[self.hasher.hash_one(sent.key.as_str()) as usize % SHARDS];
        let mut shard = lock(shard);
        let Some(window) = shard.get_mut(sent.key.as_str()) else {
            return;
        };
        if window.period_ms != sent.period_ms {
            return;
        }
        if window.index == sent.index {
            window.current_shared = current_total;
            window.current_pending -= sent.current.min(window.current_pending);
            window.previous_shared = previous_total;
            window.previous_pending -= sent.previous.min(window.previous_pending);
        } else if window.index == sent.index + 1 {
            window.previous_shared = current_total;
            window.previous_pending -= sent.current.min(window.previous_pending);
        }
    }
}

#[derive(Debug)]
struct Pending {
    key: String,
    index: u64,
    period_ms: u64,
    current: u64,
    previous: u64,
}

impl Inner {
    async fn sync(&self) -> Result<()> {
        let _one_at_a_time = self.syncing.lock().await;
        let pending = self.local.snapshot(now_ms());
        for chunk in pending.chunks(1000) {
            let mut pipe = redis::pipe();
            for p in chunk {
                let window_key = |index: u64| self.redis.key(&format!("rl:{}:{index}", p.key));
                pipe.cmd("EVALSHA")
                    .arg(self.window_sync.get_hash())
                    .arg(2)
                    .arg(window_key(p.index))
                    .arg(window_key(p.index.saturating_sub(1)))
                    .arg(p.current)
                    .arg(p.previous)
                    .arg(p.period_ms * 2 + 1000);
            }
            let totals: Vec<(u64, u64)> = match self.redis.run_pipeline(&pipe).await {
                Ok(totals) => totals,
                Err(e) if e.to_string().to_ascii_lowercase().contains("noscript") => {
                    let _: String = self
                        .redis
                        .run(redis::cmd("SCRIPT").arg("LOAD").arg(WINDOW_SYNC))
                        .await?;
                    self.redis.run_pipeline(&pipe).await?
                }
                Err(e) => return Err(e),
            };
            for (p, (current, previous)) in chunk.iter().zip(totals) {
                self.local.apply(p, current, previous);
            }
        }
        Ok(())
    }
}

async fn sync_loop(limiter: Weak<Inner>, mut stopped: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let Some(inner) = limiter.upgrade() else {
            return;
        };
        if let Err(e) = inner.sync().await {
            tracing::debug!(error = %e, "flood guard sync with Redis failed; deciding locally");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_windows_admit_exactly_the_quota_then_slide() {
        let windows = LocalWindows::default();
        let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
        let start = 600_000; // the start of a window
        let allowed = (0..25)
            .filter(|_| windows.check("k", quota, start).allowed)
            .count();
        assert_eq!(allowed, 10);
        let refused = windows.check("k", quota, start);
        assert!(!refused.allowed);
        let retry = refused.retry_after.unwrap();
        // The current window alone is full: part-way into the next one.
        assert!(retry > Duration::from_secs(60) && retry <= Duration::from_secs(66));
        // Half-way through the next window the previous one weighs half: 5 more.
        let half = start + 60_000 + 30_000;
        let allowed = (0..25)
            .filter(|_| windows.check("k", quota, half).allowed)
            .count();
        assert_eq!(allowed, 5);
        // Other keys are independent.
        assert!(windows.check("other", quota, half).allowed);
    }

    #[test]
    fn totals_from_redis_count_other_instances() {
        let windows = LocalWindows::default();
        let quota = Quota::new(10, Duration::from_secs(60)).unwrap();
        let now = 600_000;
        assert!(windows.check("k", quota, now).allowed);
        let sent = windows.snapshot(now);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].current, 1);
        // Another instance admitted 8 meanwhile: 9 in all, one left.
        windows.apply(&sent[0], 9, 0);
        assert!(windows.check("k", quota, now).allowed);
        assert!(!windows.check("k", quota, now).allowed);
        // Keys idle for two windows are dropped.
        assert!(windows.snapshot(now + 180_000).is_empty());
    }
}
