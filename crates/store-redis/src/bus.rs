use crate::{BACKEND, Redis, map_err};
use async_trait::async_trait;
use hoplink::records::ClickEvent;
use hoplink::{Error, EventBus, EventConsumer, Result};
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingReply, StreamReadReply,
};
use std::time::{Duration, Instant};

/// Settings of the Streams event bus.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Stream name, under the key prefix (default `clicks`).
    pub stream: String,
    /// A pending event whose consumer has been silent this long is taken over by another
    /// consumer of the group (default 30 s): the redelivery delay after a worker dies.
    pub claim_idle: Duration,
    /// How often a consumer trims the stream of events every group has acknowledged
    /// (default 5 s).
    pub trim_interval: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            stream: "clicks".into(),
            claim_idle: Duration::from_secs(30),
            trim_interval: Duration::from_secs(5),
        }
    }
}

/// Click events over a Redis Stream.
///
/// - `publish`: one `XADD` per event, pipelined: one round trip per batch. One stream
///   keeps the order of every code's events.
/// - Consumers are members of a consumer group (`XREADGROUP`), each on its own
///   connection (reads block). An event stays pending until `ack` (`XACK`), which the
///   analytics worker calls after the batch is stored; events a consumer took and never
///   acknowledged (it died, or its future was dropped) are read again by it, or claimed
///   (`XAUTOCLAIM`) by another consumer once idle for `claim_idle`.
/// - Trimming: consumers periodically `XTRIM MINID` the stream to the oldest event some
///   group has not acknowledged, so the stream holds only what is still needed and never
///   loses an unconsumed event. (With no consumer group at all, nothing is trimmed.)
#[derive(Debug, Clone)]
pub struct RedisEventBus {
    redis: Redis,
    key: String,
    options: StreamOptions,
}

impl RedisEventBus {
    pub(crate) fn new(redis: Redis, options: StreamOptions) -> Self {
        let key = redis.key(&options.stream);
        RedisEventBus {
            redis,
            key,
            options,
        }
    }

    /// Events in the stream (acknowledged ones not yet trimmed included).
    pub async fn len(&self) -> Result<u64> {
        self.redis.run(redis::cmd("XLEN").arg(&self.key)).await
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, events: &[ClickEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            let payload = serde_json::to_string(event).map_err(|e| Error::backend(BACKEND, e))?;
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("e")
                .arg(payload)
                .ignore();
        }
        self.redis.run_pipeline::<()>(&pipe).await
    }

    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Box<dyn EventConsumer>> {
        let created: Result<()> = self
            .redis
            .run(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&self.key)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.to_string().to_ascii_lowercase().contains("busygroup") => {}
            Err(e) => return Err(e),
        }
        let mut consumer = RedisConsumer {
            redis: self.redis.clone(),
            key: self.key.clone(),
            group: group.into(),
            name: consumer.into(),
            options: self.options.clone(),
            conn: None,
            delivered: Vec::new(),
            batch: Vec::new(),
            reading: false,
            last_trim: Instant::now(),
        };
        consumer.connection().await?;
        Ok(Box::new(consumer))
    }

    async fn health(&self) -> Result<()> {
        self.redis.ping().await
    }
}

struct RedisConsumer {
    redis: Redis,
    key: String,
    group: String,
    name: String,
    options: StreamOptions,
    /// Its own connection: `XREADGROUP … BLOCK` holds a connection while it waits.
    conn: Option<MultiplexedConnection>,
    /// Ids delivered and not yet acknowledged.
    delivered: Vec<String>,
    /// The events of the last batch, lent to the caller.
    batch: Vec<ClickEvent>,
    /// Set while a blocking read is under way: if its future is dropped, the connection
    /// still waits for that read's answer, so the next call must use a new one.
    reading: bool,
    last_trim: Instant,
}

impl std::fmt::Debug for RedisConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConsumer")
            .field("stream", &self.key)
            .field("group", &self.group)
            .field("consumer", &self.name)
            .field("unacknowledged", &self.delivered.len())
            .finish()
    }
}

impl RedisConsumer {
    async fn connection(&mut self) -> Result<MultiplexedConnection> {
        if std::mem::take(&mut self.reading) {
            self.conn = None;
        }
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let timeout = self.redis.options().connect_timeout;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(None);
        let conn = tokio::time::timeout(
            timeout * 2,
            self.redis
                .client()
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| Error::unavailable(BACKEND, "no answer while connecting"))?
        .map_err(map_err)?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Runs a command on the consumer's connection, giving up after `wait` plus the usual
    /// response timeout; drops the connection on failure so the next call reconnects.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        wait: Duration,
    ) -> Result<T> {
        self.connection().await?;
        self.query_connected(cmd, wait).await
    }

    async fn query_connected<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        wait: Duration,
    ) -> Result<T> {
        let Some(mut conn) = self.conn.clone() else {
            return Err(Error::unavailable(BACKEND, "not connected"));
        };
        let limit = wait + self.redis.options().response_timeout * 2;
        let outcome = tokio::time::timeout(limit, cmd.query_async::<T>(&mut conn)).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.conn = None;
                }
                Err(map_err(e))
            }
            Err(_) => {
                self.conn = None;
                Err(Error::unavailable(BACKEND, "no answer in time"))
            }
        }
    }

    fn read_group(&self, count: usize, block: Option<Duration>, from: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(from);
        cmd
    }

    /// Decodes entries, remembering every id for `ack` (unreadable or trimmed entries
    /// are acknowledged and skipped rather than blocking the group forever).
    fn take(&mut self, entries: Vec<StreamId>, into: &mut Vec<ClickEvent>) {
        for entry in entries {
            let event = match entry.map.get("e") {
                Some(redis::Value::BulkString(bytes)) => {
                    serde_json::from_slice::<ClickEvent>(bytes).ok()
                }
                _ => None,
            };
            match event {
                Some(event) => into.push(event),
                None => tracing::warn!(id = %entry.id, "unreadable click event skipped"),
            }
            self.delivered.push(entry.id);
        }
    }

    async fn trim(&mut self) -> Result<()> {
        let groups: StreamInfoGroupsReply = self
            .query(
                redis::cmd("XINFO").arg("GROUPS").arg(&self.key),
                Duration::ZERO,
            )
            .await?;
        let mut oldest_needed: Option<(u64, u64)> = None;
        for group in groups.groups {
            let needed = if group.pending > 0 {
                let pending: StreamPendingReply = self
                    .query(
                        redis::cmd("XPENDING").arg(&self.key).arg(&group.name),
                        Duration::ZERO,
                    )
                    .await?;
                match pending {
                    StreamPendingReply::Data(data) => parse_id(&data.start_id),
                    _ => parse_id(&group.last_delivered_id),
                }
            } else {
                parse_id(&group.last_delivered_id)
            };
            let Some(needed) = needed else { return Ok(()) };
            oldest_needed = Some(oldest_needed.map_or(needed, |o| o.min(needed)));
        }
        if let Some((ms, seq)) = oldest_needed {
            let _: u64 = self
                .query(
                    redis::cmd("XTRIM")
                        .arg(&self.key)
                        .arg("MINID")
                        .arg("~")
                        .arg(format!("{ms}-{seq}")),
                    Duration::ZERO,
                )
                .await?;
        }
        Ok(())
    }
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[async_trait]
impl EventConsumer for RedisConsumer {
    async fn next_batch(&mut self, max: usize, max_wait: Duration) -> Result<&[ClickEvent]> {
        let max = max.max(1);
        let mut events = std::mem::take(&mut self.batch);
        events.clear();
        // Delivered to this consumer and not acknowledged: the last batch again, or events
        // read by a call whose future was dropped.
        self.delivered.clear();
        let own: Option<StreamReadReply> = self
            .query(&self.read_group(max, None, "0"), Duration::ZERO)
            .await?;
        let own = own.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        self.take(own.collect(), &mut events);
        if !self.delivered.is_empty() {
            self.batch = events;
            return Ok(&self.batch);
        }
        // Events of consumers that went silent.
        let claimed: StreamAutoClaimReply = self
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(&self.key)
                    .arg(&self.group)
                    .arg(&self.name)
                    .arg(self.options.claim_idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(max),
                Duration::ZERO,
            )
            .await?;
        self.take(claimed.claimed, &mut events);
        if !self.delivered.is_empty() {
            self.batch = events;
            return Ok(&self.batch);
        }
        // New events, until `max` or `max_wait`.
        let deadline = Instant::now() + max_wait;
        while self.delivered.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let cmd = self.read_group(max - self.delivered.len(), Some(left), ">");
            self.connection().await?;
            self.reading = true;
            let read: Option<StreamReadReply> = self.query_connected(&cmd, left).await?;
            self.reading = false;
            let read = read.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
            self.take(read.collect(), &mut events);
        }
        self.batch = events;
        Ok(&self.batch)
    }

    async fn ack(&mut self) -> Result<()> {
        if !self.delivered.is_empty() {
            let ids = std::mem::take(&mut self.delivered);
            let acked: Result<u64> = self
                .query(
                    redis::cmd("XACK").arg(&self.key).arg(&self.group).arg(&ids),
                    Duration::ZERO,
                )
                .await;
            if let Err(e) = acked {
                self.delivered = ids;
                return Err(e);
            }
        }
        if self.last_trim.elapsed() >= self.options.trim_interval {
            self.last_trim = Instant::now();
            if let Err(e) = self.trim().await {
                tracing::debug!(error = %e, "trimming the click stream failed");
            }
        }
        Ok(())
    }
}
