//! The Redis backend against a real Redis (`TEST_REDIS_URL`, e.g. `redis://127.0.0.1:6379`).
//! Every test uses its own key prefix, so runs never collide. Without `TEST_REDIS_URL`
//! the tests print a notice and pass, unless `CI` is set: then a missing Redis fails.

use hoplink::records::ClickEvent;
use hoplink::testing::sample_event;
use hoplink::{EventBus, LinkPatch, NewLink, Principal, Quota, RateLimiter, Shortener, Visit};
use hoplink_redis::{FailurePolicy, Redis, RedisOptions, StreamOptions};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TEST_REDIS_URL is not: the Redis tests need a Redis")
        }
        _ => {
            eprintln!(
                "skipped: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the Redis tests"
            );
            None
        }
    }
}

fn run_prefix() -> String {
    format!(
        "hoplink-test-{}:",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn connect(url: &str, prefix: &str) -> Redis {
    Redis::connect_with(RedisOptions::new(url).prefix(prefix))
        .await
        .expect("connect to Redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_cache_limiter_ids_and_bus() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let redis = connect(&url, &prefix).await;
    let cache = redis.cache();
    assert!(cache.wait_subscribed(Duration::from_secs(5)).await);
    hoplink::testing::cache(Arc::new(cache)).await;
    hoplink::testing::rate_limiter(Arc::new(redis.rate_limiter(FailurePolicy::Open))).await;
    hoplink::testing::id_allocator(Arc::new(redis.id_allocator())).await;
    let options = StreamOptions {
        claim_idle: Duration::from_millis(500),
        ..StreamOptions::default()
    };
    hoplink::testing::event_bus(Arc::new(redis.event_bus(options))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_redis_never_serve_a_stale_link() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    // Two connections, as two processes would have.
    let (a, b) = (
        connect(&url, &prefix).await.cache(),
        connect(&url, &prefix).await.cache(),
    );
    assert!(a.wait_subscribed(Duration::from_secs(5)).await);
    assert!(b.wait_subscribed(Duration::from_secs(5)).await);
    hoplink::testing::two_instances(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_links_outlive_their_ttl_and_an_edit_fences_off_stale_fills() {
    use hoplink::Cache;
    use hoplink::records::{CacheEntry, RedirectTarget};
    let Some(url) = redis_url() else { return };
    let cache = connect(&url, &run_prefix()).await.cache();
    let entry = |location: &str| {
        CacheEntry::Found(Arc::new(RedirectTarget {
            link_id: Uuid::now_v7(),
            short_code: "hot".into(),
            location: location.into(),
            redirect_type: hoplink::RedirectType::Found,
            expires_at: None,
            max_clicks: None,
            is_active: true,
            blocked: false,
            smart: None,
        }))
    };
    // Read 10 times within its 700 ms TTL: hot, so it stays past that TTL.
    let old = entry("https://example.com/old");
    cache
        .set("hot", &old, Duration::from_millis(700))
        .await
        .unwrap();
    cache
        .set("cold", &old, Duration::from_millis(700))
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(cache.get("hot").await.unwrap().is_some());
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        cache.get("hot").await.unwrap(),
        Some(old.clone()),
        "hot link kept"
    );
    assert_eq!(cache.get("cold").await.unwrap(), None, "cold link expired");

    // A fill that read the store before an edit arrives after the edit's invalidation:
    // the tombstone refuses it, so the old link is not shared again.
    cache.invalidate("hot").await.unwrap();
    cache
        .set("hot", &old, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get("hot").await.unwrap(), None, "stale fill refused");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let new = entry("https://example.com/new");
    cache
        .set("hot", &new, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get("hot").await.unwrap(),
        Some(new),
        "fills resume after the tombstone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn id_blocks_from_several_allocators_never_overlap() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let ids = Arc::new(connect(&url, &prefix).await.id_allocator());
        for _ in 0..20 {
            let ids = ids.clone();
            tasks.push(tokio::spawn(async move {
                hoplink::IdAllocator::allocate(&*ids, 1000).await.unwrap()
            }));
        }
    }
    let mut blocks = Vec::new();
    for t in tasks {
        blocks.push(t.await.unwrap());
    }
    blocks.sort_by_key(|b| b.start);
    assert_eq!(blocks.len(), 60);
    for pair in blocks.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{pair:?} overlap");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limit_holds_across_instances_under_concurrency() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let quota = Quota::new(37, Duration::from_secs(60)).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let limiter = Arc::new(
            connect(&url, &prefix)
                .await
                .rate_limiter(FailurePolicy::Open),
        );
        for _ in 0..50 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                limiter
                    .check("anon:192.0.2.1", quota)
                    .await
                    .unwrap()
                    .allowed
            }));
        }
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(
        allowed, 37,
        "exactly the quota of 200 requests over 4 instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_flood_guard_decides_locally_and_shares_counts_through_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let quota = Quota::new(100, Duration::from_secs(3600)).unwrap();
    let key = "redirect:198.51.100.7";
    let mut limiters = Vec::new();
    for _ in 0..3 {
        limiters.push(
            connect(&url, &prefix)
                .await
                .rate_limiter(FailurePolicy::Open),
        );
    }
    // Interleaved traffic from one client over three instances, reconciled every 10
    // requests per instance (the background task does it every 100 ms).
    let mut allowed = 0;
    for round in 0..20 {
        for limiter in &limiters {
            for _ in 0..10 {
                let decision = limiter.check_local(key, quota).expect("decided locally");
                allowed += usize::from(decision.allowed);
            }
        }
        for limiter in &limiters {
            limiter.sync().await.unwrap();
        }
        if round == 2 {
            // 90 so far, all allowed.
            assert_eq!(allowed, 90);
        }
    }
    // Exact up to what the other two instances admit between two syncs (here 2 × 10).
    assert!(
        (100..=120).contains(&allowed),
        "allowed {allowed} of 600 with a quota of 100"
    );
    // Other scopes are not decided locally.
    assert!(
        limiters[0]
            .check_local("anon:198.51.100.7", quota)
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_events_survive_dropped_consumers_and_cancelled_reads() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let redis = connect(&url, &prefix).await;
    let bus = Arc::new(redis.event_bus(StreamOptions {
        claim_idle: Duration::from_millis(300),
        trim_interval: Duration::ZERO,
        ..StreamOptions::default()
    }));

    // A consumer takes a batch and dies before acknowledging it.
    let mut dying = bus.subscribe("workers", "dying").await.unwrap();
    let sent: Vec<ClickEvent> = (0..40).map(|n| sample_event("a", n)).collect();
    bus.publish(&sent).await.unwrap();
    let taken = dying.next_batch(40, Duration::from_secs(2)).await.unwrap();
    assert_eq!(taken.len(), 40);
    drop(dying);
    let mut survivor = bus.subscribe("workers", "survivor").await.unwrap();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 40 && tokio::time::Instant::now() < deadline {
        let batch = survivor
            .next_batch(40, Duration::from_millis(200))
            .await
            .unwrap();
        seen.extend(batch.iter().map(|e| e.id));
        survivor.ack().await.unwrap();
    }
    assert_eq!(
        seen,
        sent.iter().map(|e| e.id).collect(),
        "redelivered to the survivor"
    );

    // A read cancelled after Redis handed it events loses none of them.
    let more: Vec<ClickEvent> = (0..5).map(|n| sample_event("b", n)).collect();
    let publisher = {
        let (bus, more) = (bus.clone(), more.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bus.publish(&more).await.unwrap();
        })
    };
    let cancelled = tokio::time::timeout(
        Duration::from_millis(400),
        survivor.next_batch(1000, Duration::from_secs(5)),
    )
    .await;
    assert!(cancelled.is_err(), "the read was cancelled");
    publisher.await.unwrap();
    let again = survivor
        .next_batch(1000, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|e| e.id).collect::<HashSet<_>>(),
        more.iter().map(|e| e.id).collect(),
        "the cancelled read's events come back"
    );
    survivor.ack().await.unwrap();
    // Acknowledged means gone for the group (trimming has a test of its own).
    let quiet = survivor
        .next_batch(10, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(quiet.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stream_is_trimmed_once_every_group_has_acknowledged() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let redis = connect(&url, &prefix).await;
    let bus = redis.event_bus(StreamOptions {
        trim_interval: Duration::ZERO,
        ..StreamOptions::default()
    });
    let mut consumer = bus.subscribe("workers", "only").await.unwrap();
    for chunk in 0..10 {
        let events: Vec<ClickEvent> = (0..500)
            .map(|n| sample_event("t", chunk * 500 + n))
            .collect();
        bus.publish(&events).await.unwrap();
    }
    assert_eq!(bus.len().await.unwrap(), 5000);
    let mut got = 0;
    while got < 5000 {
        got += consumer
            .next_batch(1000, Duration::from_millis(200))
            .await
            .unwrap()
            .len();
        consumer.ack().await.unwrap();
    }
    consumer.ack().await.unwrap();
    let left = bus.len().await.unwrap();
    assert!(left < 500, "{left} acknowledged events left in the stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicks_through_redis_streams_are_counted_exactly_once() {
    let Some(url) = redis_url() else { return };
    let prefix = run_prefix();
    let redis = connect(&url, &prefix).await;
    let store = Arc::new(hoplink::memory::MemoryStore::new());
    let build = || {
        Shortener::builder()
            .store(store.clone())
            .cache(Arc::new(redis.cache()))
            .rate_limiter(Arc::new(redis.rate_limiter(FailurePolicy::Open)))
            .id_allocator(Arc::new(redis.id_allocator()))
            .event_bus(Arc::new(redis.event_bus(StreamOptions::default())))
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    let user = a
        .register("streams@example.com", "password123", None)
        .await
        .unwrap();
    let me = Principal { user_id: user.id };
    let link = a
        .shorten(NewLink::new("https://example.com/streams"), Some(&me))
        .await
        .unwrap();
    let visit = Visit {
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
        count: true,
        ..Visit::default()
    };
    for n in 0..300 {
        let s = if n % 2 == 0 { &a } else { &b };
        s.resolve(&link.short_code, &visit).await.unwrap();
    }
    a.shutdown().await;
    b.shutdown().await;
    let recorded = a.stats().clicks_recorded + b.stats().clicks_recorded;
    assert_eq!(recorded, 300);
    let summary = a
        .analytics_summary(&me, None, &link.short_code, 1)
        .await
        .unwrap();
    assert_eq!(
        summary.total_clicks, 300,
        "every click once, from both instances"
    );
}

/// A `redis-server` of the test's own on a spare loopback port, so it can be killed.
struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut own = OwnRedis { port, child: None };
        own.restart().await.then_some(own)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) -> bool {
        let spawned = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(child) = spawned else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirects_survive_a_redis_restart_and_invalidation_recovers() {
    if redis_url().is_none() {
        return;
    }
    let Some(mut own) = OwnRedis::start().await else {
        panic!("redis-server could not be started on a spare port");
    };
    let closed_limiter = connect(&own.url(), "restart:")
        .await
        .rate_limiter(FailurePolicy::Closed);
    let store = Arc::new(hoplink::memory::MemoryStore::new());
    let mut caches = Vec::new();
    let mut limiters = Vec::new();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let redis = connect(&own.url(), "restart:").await;
        let cache = redis.cache();
        assert!(cache.wait_subscribed(Duration::from_secs(5)).await);
        let limiter = redis.rate_limiter(FailurePolicy::Open);
        instances.push(
            Shortener::builder()
                .store(store.clone())
                .cache(Arc::new(cache.clone()))
                .rate_limiter(Arc::new(limiter.clone()))
                .build()
                .unwrap(),
        );
        caches.push(cache);
        limiters.push(limiter);
    }
    let (a, b) = (&instances[0], &instances[1]);
    let user = a
        .register("restart@example.com", "password123", None)
        .await
        .unwrap();
    let me = Principal { user_id: user.id };
    let cached = a
        .shorten(NewLink::new("https://example.com/cached"), Some(&me))
        .await
        .unwrap();
    let uncached = a
        .shorten(NewLink::new("https://example.com/cold"), Some(&me))
        .await
        .unwrap();
    let head = Visit {
        count: false,
        ..Visit::default()
    };
    for s in [a, b] {
        s.resolve(&cached.short_code, &head).await.unwrap();
    }

    own.kill().await;
    let mut failed = 0;
    for _ in 0..200 {
        for s in [a, b] {
            failed += usize::from(s.resolve(&cached.short_code, &head).await.is_err());
        }
    }
    assert_eq!(failed, 0, "cached links redirect while Redis is down");
    assert_eq!(
        b.resolve(&uncached.short_code, &head)
            .await
            .unwrap()
            .location(),
        "https://example.com/cold",
        "uncached links come from the store"
    );
    let health = a.health().await;
    let cache_health = health
        .components
        .iter()
        .find(|c| c.name == "cache")
        .unwrap();
    assert!(!cache_health.healthy, "health reports the cache down");
    let quota = Quota::new(5, Duration::from_secs(60)).unwrap();
    let decision = limiters[0].check("anon:203.0.113.9", quota).await.unwrap();
    assert!(decision.allowed, "fails open to the local limiter");
    assert!(limiters[0].fallback_decisions() > 0);
    let refused = closed_limiter
        .check("anon:203.0.113.9", quota)
        .await
        .unwrap();
    assert!(!refused.allowed, "fails closed when told to");
    assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
    assert!(b.stats().shared_cache_errors > 0, "counted");

    assert!(own.restart().await, "redis-server restarts");
    for cache in &caches {
        assert!(
            cache.wait_subscribed(Duration::from_secs(10)).await,
            "the subscriber reconnects by itself"
        );
    }
    // The breaker lets calls through again within a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.health().await.components.iter().any(|c| !c.healthy) {
        assert!(tokio::time::Instant::now() < deadline, "health recovers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.update_link(
        &me,
        cached.id,
        LinkPatch {
            original_url: Some("https://example.com/after-restart".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        b.resolve(&cached.short_code, &head)
            .await
            .unwrap()
            .location(),
        "https://example.com/after-restart",
        "invalidation works again after the restart"
    );
    own.kill().await;
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_retryable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Redis::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let bad = Redis::connect("not a url").await.unwrap_err();
    assert!(!bad.is_retryable(), "{bad}");
}
