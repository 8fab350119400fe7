//! Kafka figures: click events published (until the broker acknowledged them) and
//! consumed with commits, end to end on loopback, on a fresh topic of `TEST_KAFKA_BROKERS`.
//!
//! `TEST_KAFKA_BROKERS=127.0.0.1:9092 cargo run --release -p hoplink-benches --example kafka`

use hoplink::EventBus;
use hoplink::records::ClickEvent;
use hoplink_benches::bus_event;
use hoplink_kafka::{KafkaEventBus, KafkaOptions};
use std::time::{Duration, Instant};

const EVENTS: usize = 200_000;
const BATCH: usize = 500;

#[tokio::main]
async fn main() -> hoplink::Result<()> {
    let brokers = std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let topic = format!("hoplink-bench-{}", uuid::Uuid::new_v4().simple());
    let bus = KafkaEventBus::connect(KafkaOptions::new(brokers).topic(topic)).await?;
    let mut consumer = bus.subscribe("bench", "c1").await?;
    let batches: Vec<Vec<ClickEvent>> = (0..EVENTS / BATCH)
        .map(|b| (0..BATCH).map(|i| bus_event(b * BATCH + i)).collect())
        .collect();

    let started = Instant::now();
    for batch in &batches {
        // A full producer queue is a retryable refusal: wait a moment, as the core does.
        while bus.publish(batch).await.is_err() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let enqueued = started.elapsed();
    bus.flush().await?;
    let took = started.elapsed();
    println!(
        "publish: {EVENTS} events in batches of {BATCH}: enqueued at {:.0} events/s, acknowledged by the broker at {:.0} events/s ({} failed)",
        EVENTS as f64 / enqueued.as_secs_f64(),
        EVENTS as f64 / took.as_secs_f64(),
        bus.stats().failed
    );

    let started = Instant::now();
    let mut consumed = 0;
    while consumed < EVENTS && started.elapsed() < Duration::from_secs(300) {
        consumed += consumer
            .next_batch(BATCH, Duration::from_millis(100))
            .await?
            .len();
        consumer.ack().await?;
    }
    println!(
        "consume + commit: {consumed} events in batches of {BATCH}: {:.0} events/s",
        consumed as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
