//! The Kafka event bus against a real Kafka-protocol broker (`TEST_KAFKA_BROKERS`, e.g.
//! `127.0.0.1:9092`; `.ci/run` starts Tansu). Each test uses topics of its own. Without
//! `TEST_KAFKA_BROKERS` the tests print a notice and pass, unless `CI` is set.

use hoplink::records::ClickEvent;
use hoplink::testing::sample_event;
use hoplink::{EventBus, NewLink, Principal, Shortener, Visit};
use hoplink_kafka::{KafkaEventBus, KafkaOptions};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

fn brokers() -> Option<String> {
    match std::env::var("TEST_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TEST_KAFKA_BROKERS is not: the Kafka tests need a broker")
        }
        _ => {
            eprintln!(
                "skipped: set TEST_KAFKA_BROKERS (e.g. 127.0.0.1:9092) to run the Kafka tests"
            );
            None
        }
    }
}

fn options(brokers: &str) -> KafkaOptions {
    KafkaOptions {
        partitions: 4,
        session_timeout: Duration::from_secs(6),
        ..KafkaOptions::new(brokers).topic(format!("hoplink-test-{}", Uuid::new_v4().simple()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let Some(brokers) = brokers() else { return };
    let bus = KafkaEventBus::connect(options(&brokers))
        .await
        .expect("connect");
    hoplink::testing::event_bus(Arc::new(bus)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consumers_of_one_group_share_the_partitions() {
    let Some(brokers) = brokers() else { return };
    let bus = Arc::new(KafkaEventBus::connect(options(&brokers)).await.unwrap());
    let seen: Arc<std::sync::Mutex<HashMap<Uuid, Vec<usize>>>> = Default::default();
    let store = Arc::new(hoplink::memory::MemoryStore::new());
    let recorded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for worker in 0..2 {
        let mut consumer = bus.subscribe("share", &format!("c{worker}")).await.unwrap();
        let (seen, stopped) = (seen.clone(), stopped.clone());
        let (store, recorded) = (store.clone(), recorded.clone());
        workers.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                let batch = consumer
                    .next_batch(100, Duration::from_millis(200))
                    .await
                    .unwrap();
                for event in batch {
                    seen.lock()
                        .unwrap()
                        .entry(event.id)
                        .or_default()
                        .push(worker);
                }
                let clicks: Vec<_> = batch.iter().map(classified).collect();
                let outcome = hoplink::AnalyticsStore::record(&*store, &clicks)
                    .await
                    .unwrap();
                recorded.fetch_add(outcome.recorded, std::sync::atomic::Ordering::Relaxed);
                consumer.ack().await.unwrap();
            }
        }));
    }
    let sent: Vec<ClickEvent> = (0..2000)
        .map(|n| sample_event(&format!("code{}", n % 97), n))
        .collect();
    // Spread over a few seconds: the second consumer's join rebalances the group.
    for chunk in sent.chunks(100) {
        bus.publish(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < sent.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let ids: HashSet<Uuid> = seen.keys().copied().collect();
    assert_eq!(
        ids,
        sent.iter().map(|e| e.id).collect(),
        "every event delivered"
    );
    let by_worker: Vec<usize> = (0..2)
        .map(|w| seen.values().filter(|got| got.contains(&w)).count())
        .collect();
    let repeats = seen.values().filter(|got| got.len() > 1).count();
    eprintln!(
        "events per consumer {by_worker:?}, delivered twice {repeats} (the store de-duplicates those)"
    );
    assert!(
        by_worker.iter().all(|&n| n > 0),
        "both consumers got partitions: {by_worker:?}"
    );
    assert_eq!(
        recorded.load(std::sync::atomic::Ordering::Relaxed),
        2000,
        "the store counts every event once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicks_through_kafka_are_counted_exactly_once() {
    let Some(brokers) = brokers() else { return };
    let opts = options(&brokers);
    let store = Arc::new(hoplink::memory::MemoryStore::new());
    let mut instances = Vec::new();
    for _ in 0..2 {
        let bus = KafkaEventBus::connect(opts.clone()).await.unwrap();
        instances.push(
            Shortener::builder()
                .store(store.clone())
                .event_bus(Arc::new(bus))
                .build()
                .unwrap(),
        );
    }
    let (a, b) = (&instances[0], &instances[1]);
    let user = a
        .register("kafka@example.com", "password123", None)
        .await
        .unwrap();
    let me = Principal { user_id: user.id };
    let mut links = Vec::new();
    for n in 0..10 {
        links.push(
            a.shorten(NewLink::new(format!("https://example.com/{n}")), Some(&me))
                .await
                .unwrap(),
        );
    }
    let visit = Visit {
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
        count: true,
        ..Visit::default()
    };
    for n in 0..1000 {
        let s = if n % 2 == 0 { a } else { b };
        s.resolve(&links[n % 10].short_code, &visit).await.unwrap();
    }
    // Both instances' workers are one consumer group; wait until every click is stored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let total = || async {
        let mut total = 0;
        for link in &links {
            total += a
                .analytics_summary(&me, None, &link.short_code, 1)
                .await
                .unwrap()
                .total_clicks;
        }
        total
    };
    while total().await < 1000 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(total().await, 1000, "every click exactly once");
    let duplicates = a.stats().clicks_duplicate + b.stats().clicks_duplicate;
    eprintln!("1000 clicks recorded once; {duplicates} redeliveries recognised as duplicates");
}

fn classified(event: &ClickEvent) -> hoplink::records::ClassifiedClick {
    hoplink::records::ClassifiedClick {
        event_id: event.id,
        link_id: event.link_id,
        day: event.occurred_at.date_naive(),
        visitor: event.visitor,
        is_bot: false,
        referrer: "direct".into(),
        browser: "Other".into(),
        os: "Other".into(),
        device: "desktop".into(),
        country: "unknown".into(),
        counted_at_redirect: false,
        at: event.occurred_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_after_storing_but_before_committing_counts_nothing_twice() {
    use hoplink::AnalyticsStore;
    let Some(brokers) = brokers() else { return };
    let bus = KafkaEventBus::connect(options(&brokers)).await.unwrap();
    let store = hoplink::memory::MemoryStore::new();
    let sent: Vec<ClickEvent> = (0..50)
        .map(|n| sample_event(&format!("k{}", n % 7), n))
        .collect();
    bus.publish(&sent).await.unwrap();

    let mut dying = bus.subscribe("workers", "dying").await.unwrap();
    // One batch: it fills up to 50 or waits 20 s.
    let taken = dying.next_batch(50, Duration::from_secs(20)).await.unwrap();
    assert_eq!(taken.len(), 50);
    let clicks: Vec<_> = taken.iter().map(classified).collect();
    assert_eq!(store.record(&clicks).await.unwrap().recorded, 50);
    drop(dying); // killed before `ack`: its offsets were never committed

    let mut next = bus.subscribe("workers", "next").await.unwrap();
    let (mut recorded, mut duplicates) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while recorded + duplicates < 50 && tokio::time::Instant::now() < deadline {
        let batch = next
            .next_batch(50, Duration::from_millis(500))
            .await
            .unwrap();
        let clicks: Vec<_> = batch.iter().map(classified).collect();
        let outcome = store.record(&clicks).await.unwrap();
        recorded += outcome.recorded;
        duplicates += outcome.duplicates;
        next.ack().await.unwrap();
    }
    assert_eq!(
        (recorded, duplicates),
        (0, 50),
        "redelivered, and counted once in all"
    );
}

/// A Tansu broker of the test's own on a spare loopback port, so it can be stopped.
struct OwnBroker {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnBroker {
    fn binary() -> Option<String> {
        if let Ok(path) = std::env::var("TANSU") {
            return Some(path);
        }
        let home = std::env::var("HOME").ok()?;
        let path = format!("{home}/.cargo/bin/tansu");
        std::path::Path::new(&path).exists().then_some(path)
    }

    async fn start() -> Option<OwnBroker> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut own = OwnBroker { port, child: None };
        own.restart().await.then_some(own)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) -> bool {
        let Some(binary) = Self::binary() else {
            return false;
        };
        let url = format!("tcp://{}", self.address());
        let spawned = tokio::process::Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(child) = spawned else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.address()).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Sends a signal to the broker: `STOP` freezes it (connections stay open and nothing
    /// answers, as with a hung or cut-off broker), `CONT` thaws it with its data.
    async fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(|c| c.id()).expect("running");
        let status = tokio::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_wait_while_the_broker_is_down_and_arrive_when_it_returns() {
    if brokers().is_none() {
        return;
    }
    let Some(mut broker) = OwnBroker::start().await else {
        panic!(
            "could not start tansu on a spare port (install it: cargo install tansu --locked --features dynostore, or set TANSU)"
        );
    };
    let bus = KafkaEventBus::connect(options(&broker.address()))
        .await
        .unwrap();
    let before: Vec<ClickEvent> = (0..100).map(|n| sample_event("before", n)).collect();
    bus.publish(&before).await.unwrap();
    bus.flush().await.unwrap();
    assert_eq!(bus.stats().delivered, 100);
    let small = KafkaEventBus::connect(KafkaOptions {
        queue_messages: 20,
        ..options(&broker.address())
    })
    .await
    .unwrap();

    broker.signal("STOP").await;
    assert!(
        bus.health().await.is_err(),
        "health reports the broker down"
    );
    let during: Vec<ClickEvent> = (0..300).map(|n| sample_event("during", n)).collect();
    for chunk in during.chunks(50) {
        // Accepted at once: they wait in the producer's queue.
        tokio::time::timeout(Duration::from_secs(1), bus.publish(chunk))
            .await
            .expect("publish does not wait for the broker")
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bus.stats().delivered,
        100,
        "nothing delivered while it is down"
    );
    // A full queue refuses at once, retryably (the core's click buffer keeps the batch).
    let overflow: Vec<ClickEvent> = (0..50).map(|n| sample_event("overflow", n)).collect();
    let refused = tokio::time::timeout(Duration::from_secs(1), small.publish(&overflow))
        .await
        .expect("a full queue does not block")
        .unwrap_err();
    assert!(refused.is_retryable(), "{refused}");
    assert_eq!(small.stats().queue_full, 1, "counted");

    broker.signal("CONT").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bus.stats().delivered < 400 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        bus.stats().delivered,
        400,
        "the queued events are delivered"
    );
    assert_eq!(bus.stats().failed, 0);
    let mut consumer = bus.subscribe("after", "c").await.unwrap();
    let mut got = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 400 && tokio::time::Instant::now() < deadline {
        for e in consumer
            .next_batch(400, Duration::from_millis(300))
            .await
            .unwrap()
        {
            got.insert(e.id);
        }
        consumer.ack().await.unwrap();
    }
    let sent: HashSet<Uuid> = before.iter().chain(&during).map(|e| e.id).collect();
    assert_eq!(got, sent, "none lost");
    broker.stop().await;
}

#[tokio::test]
async fn unreachable_brokers_are_a_clear_retryable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = KafkaEventBus::connect(KafkaOptions::new(format!("127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("no broker answers"), "{err}");
}
