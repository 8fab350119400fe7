//! The event bus that carries clicks from redirects to analytics workers.

use crate::error::Result;
use crate::records::ClickEvent;
use async_trait::async_trait;
use std::fmt::Debug;
use std::time::Duration;

/// Carries click events from the instances that redirect to the analytics workers.
///
/// # Contract
/// - `publish` either accepts the whole batch or fails with a retryable error (then the
///   caller keeps the batch and tries again later); it never blocks for long.
/// - Delivery is at least once: events of a batch that was not acknowledged are delivered
///   again, to this consumer or another of the same group. Consumers of one group share
///   the events; each event goes to one of them at a time.
/// - Events with the same `short_code` keep their order.
#[async_trait]
pub trait EventBus: Send + Sync + Debug {
    /// Appends a batch of events.
    async fn publish(&self, events: &[ClickEvent]) -> Result<()>;
    /// [`publish`](Self::publish) for a caller that is done with the events once they
    /// are accepted: on success `events` is left empty, on failure it is left as it was
    /// (to try again). A bus that keeps the events themselves (the in-memory one) takes
    /// them instead of copying each.
    async fn publish_owned(&self, events: &mut Vec<ClickEvent>) -> Result<()> {
        self.publish(events).await?;
        events.clear();
        Ok(())
    }
    /// Waits until every accepted event is durably in the bus (a bus that buffers inside
    /// the process, like a Kafka producer, sends what it holds). Called at shutdown.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// Joins consumer group `group` as `consumer`.
    async fn subscribe(&self, group: &str, consumer: &str) -> Result<Box<dyn EventConsumer>>;
    /// Whether the bus answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// One member of a consumer group.
#[async_trait]
pub trait EventConsumer: Send + Debug {
    /// Up to `max` events: returns as soon as `max` are available, otherwise after
    /// `max_wait` with what there is (possibly nothing). When the previous batch was not
    /// acknowledged, it may be delivered again.
    ///
    /// The batch is lent, not given: a consumer keeps its batch until it is acknowledged
    /// (to deliver it again), so lending it spares a copy of every event.
    ///
    /// Must be cancel-safe: when the future is dropped before it completes, no event may
    /// be lost (it may be delivered again later).
    async fn next_batch(&mut self, max: usize, max_wait: Duration) -> Result<&[ClickEvent]>;
    /// Acknowledges every event delivered so far: call after it is durably stored.
    async fn ack(&mut self) -> Result<()>;
}
