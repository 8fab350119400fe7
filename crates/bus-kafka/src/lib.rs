//! Kafka event bus for hoplink: click events through any Kafka-protocol broker (Apache
//! Kafka, Redpanda, Tansu…) over rdkafka.
//!
//! ```no_run
//! # async fn run() -> hoplink::Result<()> {
//! use std::sync::Arc;
//! let bus = hoplink_kafka::KafkaEventBus::connect(hoplink_kafka::KafkaOptions::new("127.0.0.1:9092")).await?;
//! let shortener = hoplink::Shortener::builder().event_bus(Arc::new(bus)).build()?;
//! # Ok(()) }
//! ```
//!
//! # Delivery
//! - **Producer**: idempotent (no duplicates or reordering from its own retries), events
//!   keyed by short code so each link's clicks keep their order in one partition, batched
//!   (`linger.ms` 5, up to 10,000 messages per batch). `publish` only enqueues, so a
//!   redirect never waits for the broker; messages wait in the producer's bounded queue
//!   (`queue_messages`, default 100,000) while the broker is away and are retried without
//!   a deadline. A full queue makes `publish` fail with a retryable error: the core's click
//!   buffer keeps the batch, and counts what it has to drop. Deliveries and failures are
//!   counted ([`KafkaEventBus::stats`]). `flush` (at shutdown) waits for the queue to drain.
//! - **Consumers**: a consumer group; offsets are committed only by `ack`, which the
//!   analytics worker calls after the batch is stored. An unacknowledged batch is handed
//!   out again; after a crash or a rebalance the partition's next owner starts at the last
//!   committed offset. Together with the store's de-duplication by event id, every click
//!   is counted exactly once.

use async_trait::async_trait;
use hoplink::records::ClickEvent;
use hoplink::{Error, EventBus, EventConsumer, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BACKEND: &str = "kafka";

/// How to reach the brokers and shape the topic.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Topic of click events (default `hoplink-clicks`).
    pub topic: String,
    /// Partitions when the topic is created (default 6): the most consumers that share
    /// the work.
    pub partitions: i32,
    /// Replication factor when the topic is created (default 1).
    pub replication: i32,
    /// Events the producer holds while the broker is unreachable (default 100,000).
    pub queue_messages: u32,
    /// How long a silent consumer keeps its partitions (default 10 s).
    pub session_timeout: Duration,
}

impl KafkaOptions {
    /// The defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaOptions {
            brokers: brokers.into(),
            topic: "hoplink-clicks".into(),
            partitions: 6,
            replication: 1,
            queue_messages: 100_000,
            session_timeout: Duration::from_secs(10),
        }
    }

    /// Another topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }
}

/// Delivery counters of a [`KafkaEventBus`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KafkaStats {
    /// Events the broker acknowledged.
    pub delivered: u64,
    /// Events the producer gave up on (counted; the store never sees them).
    pub failed: u64,
    /// `publish` calls refused because the producer's queue was full.
    pub queue_full: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    queue_full: AtomicU64,
}

/// Click events on a Kafka topic.
#[derive(Clone)]
pub struct KafkaEventBus {
    producer: FutureProducer,
    options: Arc<KafkaOptions>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for KafkaEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventBus")
            .field("brokers", &self.options.brokers)
            .field("topic", &self.options.topic)
            .finish_non_exhaustive()
    }
}

fn map_err(e: KafkaError) -> Error {
    let retryable = match &e {
        KafkaError::MessageProduction(code)
        | KafkaError::MetadataFetch(code)
        | KafkaError::ConsumerCommit(code)
        | KafkaError::AdminOp(code) => !matches!(
            code,
            RDKafkaErrorCode::InvalidConfig
                | RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
        ),
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => false,
        _ => true,
    };
    if retryable {
        Error::unavailable(BACKEND, e)
    } else {
        Error::backend(BACKEND, e)
    }
}

impl KafkaEventBus {
    /// Connects, checks that a broker answers, and creates the topic when it is missing.
    pub async fn connect(options: KafkaOptions) -> Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set(
                "queue.buffering.max.messages",
                options.queue_messages.to_string(),
            )
            // No deadline: while the broker is away, events wait in the bounded queue.
            .set("message.timeout.ms", "0")
            .set("socket.connection.setup.timeout.ms", "3000")
            .create()
            .map_err(|e| Error::invalid("kafka_brokers", "invalid_config", e.to_string()))?;
        let bus = KafkaEventBus {
            producer,
            options: Arc::new(options),
            counters: Arc::new(Counters::default()),
        };
        bus.health().await.map_err(|e| {
            Error::unavailable(
                BACKEND,
                format!("no broker answers at {}: {e}", bus.options.brokers),
            )
        })?;
        bus.create_topic().await?;
        Ok(bus)
    }

    async fn create_topic(&self) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            .create()
            .map_err(map_err)?;
        let topic = NewTopic::new(
            &self.options.topic,
            self.options.partitions,
            TopicReplication::Fixed(self.options.replication),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .map_err(map_err)?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(topic = %self.options.topic, "created the click topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::backend(
                        BACKEND,
                        format!("cannot create topic {topic}: {code}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Delivery counters.
    pub fn stats(&self) -> KafkaStats {
        KafkaStats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            queue_full: self.counters.queue_full.load(Ordering::Relaxed),
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.options.topic
    }
}

#[async_trait]
impl EventBus for KafkaEventBus {
    async fn publish(&self, events: &[ClickEvent]) -> Result<()> {
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event).map_err(|e| Error::backend(BACKEND, e))?;
            let record = FutureRecord::to(&self.options.topic)
                .key(event.short_code.as_str())
                .payload(&payload);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                    // What was enqueued goes out; the caller retries the batch and the
                    // store skips the repeats by event id.
                    return Err(Error::unavailable(
                        BACKEND,
                        "producer queue full (the broker is unreachable or slow)",
                    ));
                }
                Err((e, _)) => return Err(map_err(e)),
            }
        }
        let counters = self.counters.clone();
        tokio::spawn(async move {
            for delivery in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => counters.delivered.fetch_add(1, Ordering::Relaxed),
                    Ok(Err((e, _))) => {
                        tracing::error!(error = %e, "a click event was not delivered");
                        counters.failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => counters.failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30)))
            .await
            .map_err(|e| Error::backend(BACKEND, e))?
            .map_err(map_err)
    }

    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Box<dyn EventConsumer>> {
        let kafka: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.options.brokers)
            // Namespaced by topic: deployments (or test runs) sharing a cluster with
            // topics of their own never share a group, nor its rebalances.
            .set("group.id", format!("{group}.{}", self.options.topic))
            .set("client.id", consumer)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                self.options.session_timeout.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .create()
            .map_err(map_err)?;
        kafka.subscribe(&[&self.options.topic]).map_err(map_err)?;
        Ok(Box::new(KafkaConsumer {
            kafka: Arc::new(kafka),
            topic: self.options.topic.clone(),
            in_flight: Vec::new(),
            offsets: HashMap::new(),
        }))
    }

    async fn health(&self) -> Result<()> {
        let producer = self.producer.clone();
        let topic = self.options.topic.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|_| ())
        })
        .await
        .map_err(|e| Error::backend(BACKEND, e))?
        .map_err(map_err)
    }
}

struct KafkaConsumer {
    kafka: Arc<StreamConsumer>,
    topic: String,
    /// The batch handed out and not acknowledged: handed out again until it is.
    in_flight: Vec<ClickEvent>,
    /// Next offset to commit, per partition, for what was handed out.
    offsets: HashMap<i32, i64>,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("topic", &self.topic)
            .field("unacknowledged", &self.in_flight.len())
            .finish()
    }
}

#[async_trait]
impl EventConsumer for KafkaConsumer {
    async fn next_batch(&mut self, max: usize, max_wait: Duration) -> Result<&[ClickEvent]> {
        if !self.in_flight.is_empty() {
            return Ok(&self.in_flight);
        }
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + max_wait;
        while self.in_flight.len() < max {
            // `recv` takes a message only when it returns it, so dropping this future
            // (cancellation) loses nothing.
            let message = match tokio::time::timeout_at(deadline, self.kafka.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    if self.in_flight.is_empty() {
                        return Err(map_err(e));
                    }
                    tracing::warn!(error = %e, "reading click events");
                    break;
                }
                Ok(Ok(message)) => message,
            };
            let next = message.offset() + 1;
            let slot = self.offsets.entry(message.partition()).or_insert(next);
            *slot = (*slot).max(next);
            match message
                .payload()
                .and_then(|p| serde_json::from_slice::<ClickEvent>(p).ok())
            {
                Some(event) => self.in_flight.push(event),
                None => tracing::warn!(
                    partition = message.partition(),
                    offset = message.offset(),
                    "unreadable click event skipped"
                ),
            }
        }
        Ok(&self.in_flight)
    }

    async fn ack(&mut self) -> Result<()> {
        self.in_flight.clear();
        if self.offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in self.offsets.drain() {
            list.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(map_err)?;
        }
        let kafka = self.kafka.clone();
        // A commit refused after a rebalance is harmless: the batch is stored, and the
        // partition's new owner skips the repeats by event id.
        tokio::task::spawn_blocking(move || kafka.commit(&list, CommitMode::Sync))
            .await
            .map_err(|e| Error::backend(BACKEND, e))?
            .map_err(map_err)
    }
}
