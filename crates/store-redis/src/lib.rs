//! Redis backend for hoplink: the shared (L2) [`Cache`](hoplink::Cache) with
//! cross-instance invalidation, an atomic [`RateLimiter`](hoplink::RateLimiter) with a
//! local-first flood guard, [`IdAllocator`](hoplink::IdAllocator) blocks from `INCRBY`,
//! and an [`EventBus`](hoplink::EventBus) over Redis Streams.
//!
//! ```no_run
//! # async fn run() -> hoplink::Result<()> {
//! use std::sync::Arc;
//! let redis = hoplink_redis::Redis::connect("redis://127.0.0.1:6379").await?;
//! let shortener = hoplink::Shortener::builder()
//!     .cache(Arc::new(redis.cache()))
//!     .rate_limiter(Arc::new(redis.rate_limiter(hoplink_redis::FailurePolicy::Open)))
//!     .id_allocator(Arc::new(redis.id_allocator()))
//!     .event_bus(Arc::new(redis.event_bus(hoplink_redis::StreamOptions::default())))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Keys
//! Every key starts with the prefix (default `hoplink:`), so several deployments or test
//! runs can share one Redis: `link:{code}` (cache entries), `invalidations` (pub/sub
//! channel), `invalidation-ack:{nonce}`, `rl:{key}` (GCRA state), `rl:{key}:{window}`
//! (flood-guard windows), `ids` (id counter), `clicks` (the event stream).
//!
//! # Resilience
//! Every call has a timeout (1 s by default) and the connection reconnects by itself.
//! After a failed call, calls fail fast for a second instead of waiting on a dead server,
//! so redirects fall back to the in-process cache and the store at full speed while
//! Redis is away.

mod bus;
mod cache;
mod ids;
mod limiter;

pub use bus::{RedisEventBus, StreamOptions};
pub use cache::RedisCache;
pub use ids::RedisIdAllocator;
pub use limiter::{FailurePolicy, RedisRateLimiter};

use hoplink::{Error, Result};
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BACKEND: &str = "redis";

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prepended to every key and channel (default `hoplink:`).
    pub prefix: String,
    /// Longest wait for one answer (default 1 s).
    pub response_timeout: Duration,
    /// Longest wait for a connection (default 1 s).
    pub connect_timeout: Duration,
}

impl RedisOptions {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            prefix: "hoplink:".into(),
            response_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// Another key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A connection to Redis, shared by the backends made from it. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    options: RedisOptions,
    breaker: Breaker,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.shared.options.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects with the default options.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(RedisOptions::new(url)).await
    }

    /// Connects; fails with a retryable error when Redis does not answer.
    pub async fn connect_with(options: RedisOptions) -> Result<Self> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| Error::invalid("redis_url", "invalid_url", e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connect_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connecting = client.get_connection_manager_with_config(config);
        let conn = tokio::time::timeout(options.connect_timeout * 3, connecting)
            .await
            .map_err(|_| Error::unavailable(BACKEND, "no answer while connecting"))?
            .map_err(map_err)?;
        Ok(Redis {
            shared: Arc::new(Shared {
                client,
                conn,
                options,
                breaker: Breaker::default(),
            }),
        })
    }

    /// The shared cache (spawns its invalidation subscriber: call inside a Tokio runtime).
    pub fn cache(&self) -> RedisCache {
        RedisCache::new(self.clone())
    }

    /// The rate limiter; `on_failure` says what to do while Redis is unreachable.
    pub fn rate_limiter(&self, on_failure: FailurePolicy) -> RedisRateLimiter {
        RedisRateLimiter::new(self.clone(), on_failure)
    }

    /// Id blocks from `INCRBY`.
    pub fn id_allocator(&self) -> RedisIdAllocator {
        RedisIdAllocator::new(self.clone())
    }

    /// The Streams event bus.
    pub fn event_bus(&self, options: StreamOptions) -> RedisEventBus {
        RedisEventBus::new(self.clone(), options)
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<()> {
        let _: String = self.run(&redis::cmd("PING")).await?;
        Ok(())
    }

    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.shared.options.prefix)
    }

    pub(crate) fn options(&self) -> &RedisOptions {
        &self.shared.options
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.shared.client
    }

    /// Runs a command, failing fast while the breaker is open.
    pub(crate) async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        self.guard(cmd.query_async(&mut self.shared.conn.clone()))
            .await
    }

    /// Runs a pipeline, failing fast while the breaker is open.
    pub(crate) async fn run_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
        self.guard(pipe.query_async(&mut self.shared.conn.clone()))
            .await
    }

    /// Runs a script (EVALSHA, loading it on first use).
    pub(crate) async fn run_script<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut conn = self.shared.conn.clone();
        self.guard(invocation.invoke_async(&mut conn)).await
    }

    async fn guard<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let breaker = &self.shared.breaker;
        if breaker.is_open() {
            return Err(Error::unavailable(
                BACKEND,
                "unreachable a moment ago; retrying within a second",
            ));
        }
        // The connection has its own response timeout; this one also covers reconnects.
        let limit = self.shared.options.response_timeout * 2;
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if is_unreachable(&e) {
                    breaker.trip();
                }
                Err(map_err(e))
            }
            Err(_) => {
                breaker.trip();
                Err(Error::unavailable(BACKEND, "no answer in time"))
            }
        }
    }
}

/// Fails calls fast for a second after Redis was found unreachable.
#[derive(Debug)]
struct Breaker {
    origin: Instant,
    open_until_ms: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            origin: Instant::now(),
            open_until_ms: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    const OPEN_FOR: Duration = Duration::from_secs(1);

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn is_open(&self) -> bool {
        self.now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        let now = self.now_ms();
        let until = now + Self::OPEN_FOR.as_millis() as u64;
        if self.open_until_ms.swap(until, Ordering::Relaxed) <= now {
            tracing::warn!("Redis unreachable; failing fast for a second before trying again");
        }
    }
}

fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Maps driver errors: lost connections and timeouts are retryable.
pub(crate) fn map_err(e: redis::RedisError) -> Error {
    if is_unreachable(&e) {
        Error::unavailable(BACKEND, e)
    } else {
        Error::backend(BACKEND, e)
    }
}
