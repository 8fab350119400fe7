//! Redis figures: shared cache get/set, invalidation with two instances listening, rate
//! limiter check (one Lua script), the local flood guard, and Streams publish / consume
//! throughput. Uses its own key prefix on `TEST_REDIS_URL` and deletes its keys at the end.
//!
//! `TEST_REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p hoplink-benches --example redis`

use hoplink::records::{CacheEntry, ClickEvent, RedirectTarget};
use hoplink::{Cache, EventBus, Quota, RateLimiter, RedirectType};
use hoplink_benches::bus_event;
use hoplink_benches::percentile;
use hoplink_redis::{FailurePolicy, Redis, RedisOptions, StreamOptions};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 20_000;
const CONCURRENT_TASKS: usize = 64;
const CONCURRENT_OPS: usize = 200_000;

/// p50 / p99 of `n` calls one after another.
async fn latency<F, Fut>(name: &str, n: usize, mut call: F)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        call(i).await;
        took.push(t.elapsed());
    }
    took.sort();
    println!(
        "{name}: p50 {:?}, p99 {:?} (one at a time)",
        percentile(&took, 0.5),
        percentile(&took, 0.99)
    );
}

/// Operations per second with `CONCURRENT_TASKS` tasks sharing one connection.
async fn throughput<F, Fut>(name: &str, call: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let per_task = CONCURRENT_OPS / CONCURRENT_TASKS;
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|t| {
            let call = call.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    call(t * per_task + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: {:.0} ops/s ({CONCURRENT_TASKS} tasks, one connection)",
        (per_task * CONCURRENT_TASKS) as f64 / secs
    );
}

fn target(n: usize) -> CacheEntry {
    CacheEntry::Found(Arc::new(RedirectTarget {
        link_id: uuid::Uuid::now_v7(),
        short_code: format!("c{n}").into(),
        location: format!("https://example.com/some/longer/path/{n}?utm_source=bench").into(),
        redirect_type: RedirectType::Found,
        expires_at: None,
        max_clicks: None,
        is_active: true,
        blocked: false,
        smart: None,
    }))
}

#[tokio::main]
async fn main() -> hoplink::Result<()> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!(
        "hoplink-bench-{}:",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let redis = Redis::connect_with(RedisOptions::new(&url).prefix(&prefix)).await?;

    let cache = Arc::new(redis.cache());
    let other = Redis::connect_with(RedisOptions::new(&url).prefix(&prefix))
        .await?
        .cache();
    cache.wait_subscribed(Duration::from_secs(5)).await;
    other.wait_subscribed(Duration::from_secs(5)).await;
    for n in 0..1000 {
        cache
            .set(&format!("c{n}"), &target(n), Duration::from_secs(600))
            .await?;
    }
    let c = cache.clone();
    latency("cache get (hit)", SEQUENTIAL, move |i| {
        let c = c.clone();
        async move {
            assert!(c.get(&format!("c{}", i % 1000)).await.unwrap().is_some());
        }
    })
    .await;
    let c = cache.clone();
    throughput("cache get (hit)", move |i| {
        let c = c.clone();
        async move {
            c.get(&format!("c{}", i % 1000)).await.unwrap();
        }
    })
    .await;
    let c = cache.clone();
    latency("cache set", SEQUENTIAL, move |i| {
        let c = c.clone();
        async move {
            c.set(&format!("s{i}"), &target(i), Duration::from_secs(60))
                .await
                .unwrap();
        }
    })
    .await;
    let c = cache.clone();
    latency("invalidate (two instances acknowledge)", 2_000, move |i| {
        let c = c.clone();
        async move { c.invalidate(&format!("c{}", i % 1000)).await.unwrap() }
    })
    .await;

    let limiter = Arc::new(redis.rate_limiter(FailurePolicy::Open));
    let quota = Quota::new(1_000_000, Duration::from_secs(60)).unwrap();
    let l = limiter.clone();
    latency("rate limiter check (GCRA script)", SEQUENTIAL, move |i| {
        let l = l.clone();
        async move {
            l.check(&format!("anon:10.0.{}.{}", i % 200, i % 250), quota)
                .await
                .unwrap();
        }
    })
    .await;
    let l = limiter.clone();
    throughput("rate limiter check (GCRA script)", move |i| {
        let l = l.clone();
        async move {
            l.check(&format!("anon:10.1.{}.{}", i % 200, i % 250), quota)
                .await
                .unwrap();
        }
    })
    .await;
    let started = Instant::now();
    let n = 2_000_000;
    for i in 0..n {
        let key = format!("redirect:10.2.{}.{}", (i / 250) % 250, i % 250);
        std::hint::black_box(limiter.check_local(&key, quota));
    }
    println!(
        "flood guard check_local (in process, 62,500 keys): {:.0} ns per check",
        started.elapsed().as_nanos() as f64 / n as f64
    );

    let bus = redis.event_bus(StreamOptions::default());
    let mut consumer = bus.subscribe("bench", "c1").await?;
    const EVENTS: usize = 200_000;
    const BATCH: usize = 500;
    let batches: Vec<Vec<ClickEvent>> = (0..EVENTS / BATCH)
        .map(|b| (0..BATCH).map(|i| bus_event(b * BATCH + i)).collect())
        .collect();
    let started = Instant::now();
    for batch in &batches {
        bus.publish(batch).await?;
    }
    let took = started.elapsed();
    println!(
        "stream publish: {:.0} events/s (batches of {BATCH}, {:.2} ms per batch)",
        EVENTS as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / (EVENTS / BATCH) as f64
    );
    let started = Instant::now();
    let mut consumed = 0;
    while consumed < EVENTS {
        consumed += consumer
            .next_batch(BATCH, Duration::from_millis(100))
            .await?
            .len();
        consumer.ack().await?;
    }
    println!(
        "stream consume + ack: {:.0} events/s (batches of {BATCH})",
        EVENTS as f64 / started.elapsed().as_secs_f64()
    );

    // Leave nothing behind.
    let client =
        redis::Client::open(url.as_str()).map_err(|e| hoplink::Error::backend("redis", e))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| hoplink::Error::backend("redis", e))?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .map_err(|e| hoplink::Error::backend("redis", e))?;
    for chunk in keys.chunks(1000) {
        let _: () = redis::cmd("UNLINK")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .map_err(|e| hoplink::Error::backend("redis", e))?;
    }
    Ok(())
}
