use crate::{BACKEND, Redis, map_err};
use async_trait::async_trait;
use futures_util::StreamExt;
use hoplink::records::{CacheEntry, RedirectTarget};
use hoplink::{Cache, Error, Invalidation, InvalidationListener, Listeners, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

/// Reads an entry and counts the hit; an entry read `ARGV[1]` times is hot and keeps
/// `ARGV[2]` ms from then on. Tombstones (field `t`) read as misses.
const GET: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
local hits = redis.call('HINCRBY', KEYS[1], 'h', 1)
if hits == tonumber(ARGV[1]) and v ~= '-' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
";

/// Stores an entry unless a tombstone says the link changed a moment ago: a fill that
/// read the store before an edit must not put the old link back.
const SET: &str = r"
if redis.call('HEXISTS', KEYS[1], 't') == 1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'h', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Replaces the entry with a short-lived tombstone.
const TOMBSTONE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 't', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// The shared (L2) cache on Redis, with cross-instance invalidation over pub/sub.
///
/// - Entries are hashes at `link:{code}`; a link read 10 times keeps 24 hours instead of
///   the TTL it was stored with (hot links), negative entries never do.
/// - `invalidate` replaces the entry with a 2-second tombstone (so that a concurrent fill
///   holding the old link cannot store it back), publishes the code with a nonce, and
///   waits until every subscribed instance has called its listeners and acknowledged
///   (`PUBLISH` says how many instances heard it), for at most 250 ms by default. So when
///   an edit returns, no instance's L1 holds the old link, unless an instance failed to
///   answer in time: then its L1 TTL (60 s by default) bounds the staleness, and a
///   warning is logged.
/// - The subscriber reconnects by itself; after a lost connection it tells its listeners
///   to forget everything ([`Invalidation::All`]), since messages may have been missed.
#[derive(Debug, Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    redis: Redis,
    listeners: Listeners,
    subscribed: AtomicBool,
    hot_after_hits: u32,
    hot_ttl: Duration,
    tombstone_ttl: Duration,
    invalidation_wait: Duration,
    get: redis::Script,
    set: redis::Script,
    tombstone: redis::Script,
    _stop_subscriber: oneshot::Sender<()>,
}

impl RedisCache {
    pub(crate) fn new(redis: Redis) -> Self {
        let (stop, stopped) = oneshot::channel();
        let inner = Arc::new(Inner {
            redis,
            listeners: Listeners::default(),
            subscribed: AtomicBool::new(false),
            hot_after_hits: 10,
            hot_ttl: Duration::from_secs(24 * 3600),
            tombstone_ttl: Duration::from_secs(2),
            invalidation_wait: Duration::from_millis(250),
            get: redis::Script::new(GET),
            set: redis::Script::new(SET),
            tombstone: redis::Script::new(TOMBSTONE),
            _stop_subscriber: stop,
        });
        tokio::spawn(subscribe(Arc::downgrade(&inner), stopped));
        RedisCache { inner }
    }

    /// Whether the invalidation subscriber is connected right now.
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Acquire)
    }

    /// Waits (up to `patience`) until the invalidation subscriber is connected; true when it is.
    pub async fn wait_subscribed(&self, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while !self.is_subscribed() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    fn key(&self, short_code: &str) -> String {
        self.inner.redis.key(&format!("link:{short_code}"))
    }
}

fn channel(redis: &Redis) -> String {
    redis.key("invalidations")
}

fn encode(entry: &CacheEntry) -> Result<String> {
    match entry {
        CacheEntry::Missing => Ok("-".into()),
        CacheEntry::Found(target) => {
            serde_json::to_string(&**target).map_err(|e| Error::backend(BACKEND, e))
        }
    }
}

fn decode(text: &str) -> Option<CacheEntry> {
    if text == "-" {
        return Some(CacheEntry::Missing);
    }
    serde_json::from_str::<RedirectTarget>(text)
        .ok()
        .map(|target| CacheEntry::Found(Arc::new(target)))
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, short_code: &str) -> Result<Option<CacheEntry>> {
        let inner = &self.inner;
        let mut invocation = inner.get.prepare_invoke();
        invocation
            .key(self.key(short_code))
            .arg(inner.hot_after_hits)
            .arg(millis(inner.hot_ttl));
        let text: Option<String> = inner.redis.run_script(invocation).await?;
        Ok(text.and_then(|t| {
            let entry = decode(&t);
            if entry.is_none() {
                // An entry from an incompatible version: a miss, refilled from the store.
                tracing::warn!(short_code, "unreadable shared cache entry ignored");
            }
            entry
        }))
    }

    async fn set(&self, short_code: &str, entry: &CacheEntry, ttl: Duration) -> Result<()> {
        let inner = &self.inner;
        let mut invocation = inner.set.prepare_invoke();
        invocation
            .key(self.key(short_code))
            .arg(encode(entry)?)
            .arg(millis(ttl));
        let _stored: i64 = inner.redis.run_script(invocation).await?;
        Ok(())
    }

    async fn invalidate(&self, short_code: &str) -> Result<()> {
        let inner = &self.inner;
        let mut invocation = inner.tombstone.prepare_invoke();
        invocation
            .key(self.key(short_code))
            .arg(millis(inner.tombstone_ttl));
        let _: i64 = inner.redis.run_script(invocation).await?;
        let nonce: u64 = rand::random();
        let heard_by: u64 = inner
            .redis
            .run(
                redis::cmd("PUBLISH")
                    .arg(channel(&inner.redis))
                    .arg(format!("{nonce:016x} {short_code}")),
            )
            .await?;
        if heard_by == 0 {
            return Ok(());
        }
        let ack_key = inner.redis.key(&format!("invalidation-ack:{nonce:016x}"));
        let deadline = tokio::time::Instant::now() + inner.invalidation_wait;
        loop {
            tokio::time::sleep(Duration::from_micros(500)).await;
            let acks: Option<u64> = inner.redis.run(redis::cmd("GET").arg(&ack_key)).await?;
            if acks.unwrap_or(0) >= heard_by {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    short_code,
                    heard_by,
                    acknowledged = acks.unwrap_or(0),
                    "not every instance confirmed the invalidation in time; the others drop the link when its L1 TTL passes"
                );
                return Ok(());
            }
        }
    }

    fn listen(&self, listener: InvalidationListener) {
        self.inner.listeners.add(listener);
    }

    async fn health(&self) -> Result<()> {
        self.inner.redis.ping().await?;
        if !self.is_subscribed() {
            return Err(Error::unavailable(
                BACKEND,
                "invalidation subscriber not connected",
            ));
        }
        Ok(())
    }
}

/// Keeps a pub/sub connection subscribed to the invalidation channel while the cache
/// lives, reconnecting with backoff.
async fn subscribe(cache: Weak<Inner>, mut stopped: oneshot::Receiver<()>) {
    let mut backoff = Duration::from_millis(50);
    let mut lost_connection = false;
    loop {
        let Some(inner) = cache.upgrade() else { return };
        let redis = inner.redis.clone();
        drop(inner);
        let connected = async {
            let timeout = redis.options().connect_timeout;
            let mut pubsub = tokio::time::timeout(timeout, redis.client().get_async_pubsub())
                .await
                .map_err(|_| Error::unavailable(BACKEND, "no answer while connecting"))?
                .map_err(map_err)?;
            tokio::time::timeout(timeout, pubsub.subscribe(channel(&redis)))
                .await
                .map_err(|_| Error::unavailable(BACKEND, "no answer while subscribing"))?
                .map_err(map_err)?;
            Ok::<_, Error>(pubsub)
        };
        let pubsub = tokio::select! {
            _ = &mut stopped => return,
            connected = connected => connected,
        };
        let pubsub = match pubsub {
            Ok(pubsub) => pubsub,
            Err(e) => {
                tracing::debug!(error = %e, "invalidation subscriber cannot connect");
                lost_connection = true;
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        {
            let Some(inner) = cache.upgrade() else { return };
            inner.subscribed.store(true, Ordering::Release);
            if lost_connection {
                tracing::info!("invalidation subscriber reconnected; clearing L1 caches");
                inner.listeners.notify(Invalidation::All);
            }
        }
        let mut messages = pubsub.into_on_message();
        loop {
            let message = tokio::select! {
                _ = &mut stopped => return,
                message = messages.next() => message,
            };
            let Some(message) = message else { break };
            let Some(inner) = cache.upgrade() else { return };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Some((nonce, code)) = payload.split_once(' ') else {
                continue;
            };
            inner.listeners.notify(Invalidation::Code(code));
            let ack_key = inner.redis.key(&format!("invalidation-ack:{nonce}"));
            let mut pipe = redis::pipe();
            pipe.cmd("INCR")
                .arg(&ack_key)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&ack_key)
                .arg(10_000)
                .ignore();
            if let Err(e) = inner.redis.run_pipeline::<()>(&pipe).await {
                tracing::debug!(error = %e, "invalidation acknowledgement failed");
            }
        }
        if let Some(inner) = cache.upgrade() {
            inner.subscribed.store(false, Ordering::Release);
        }
        tracing::warn!("invalidation subscriber lost its connection; reconnecting");
        lost_connection = true;
    }
}
