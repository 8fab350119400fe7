use super::lock;
use crate::bus::{EventBus, EventConsumer};
use crate::error::{Error, Result};
use crate::records::ClickEvent;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A bounded in-process queue. All consumers share it as one group; a batch that a
/// consumer did not acknowledge is delivered again (to it on its next call, or to
/// another consumer when it is dropped).
#[derive(Debug, Clone)]
pub struct MemoryEventBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queue: Mutex<VecDeque<ClickEvent>>,
    capacity: usize,
    published: Notify,
}

impl Inner {
    /// Adds `count` events with `add` if they fit (all or none), then wakes consumers.
    fn append(&self, count: usize, add: impl FnOnce(&mut VecDeque<ClickEvent>)) -> Result<()> {
        {
            let mut queue = lock(&self.queue);
            if queue.len() + count > self.capacity {
                return Err(Error::unavailable(
                    "memory",
                    format!(
                        "event bus full ({} of {} events waiting)",
                        queue.len(),
                        self.capacity
                    ),
                ));
            }
            add(&mut queue);
        }
        self.published.notify_waiters();
        Ok(())
    }
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryEventBus {
    /// A bus holding at most `capacity` unconsumed events.
    pub fn new(capacity: usize) -> Self {
        MemoryEventBus {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                published: Notify::new(),
            }),
        }
    }

    /// Events waiting to be consumed.
    pub fn len(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, events: &[ClickEvent]) -> Result<()> {
        self.inner
            .append(events.len(), |queue| queue.extend(events.iter().cloned()))
    }

    async fn publish_owned(&self, events: &mut Vec<ClickEvent>) -> Result<()> {
        self.inner
            .append(events.len(), |queue| queue.extend(events.drain(..)))
    }

    async fn subscribe(&self, _group: &str, _consumer: &str) -> Result<Box<dyn EventConsumer>> {
        Ok(Box::new(MemoryConsumer {
            inner: self.inner.clone(),
            in_flight: Vec::new(),
        }))
    }
}

#[derive(Debug)]
struct MemoryConsumer {
    inner: Arc<Inner>,
    in_flight: Vec<ClickEvent>,
}

#[async_trait]
impl EventConsumer for MemoryConsumer {
    async fn next_batch(&mut self, max: usize, max_wait: Duration) -> Result<&[ClickEvent]> {
        if !self.in_flight.is_empty() {
            return Ok(&self.in_flight);
        }
        let max = max.max(1);
        let deadline = Instant::now() + max_wait;
        loop {
            let notified = self.inner.published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut queue = lock(&self.inner.queue);
                if queue.len() >= max || Instant::now() >= deadline {
                    let n = queue.len().min(max);
                    self.in_flight.extend(queue.drain(..n));
                    return Ok(&self.in_flight);
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    async fn ack(&mut self) -> Result<()> {
        self.in_flight.clear();
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let mut queue = lock(&self.inner.queue);
        for event in self.in_flight.drain(..).rev() {
            queue.push_front(event);
        }
        drop(queue);
        self.inner.published.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_event(n: usize) -> ClickEvent {
        ClickEvent {
            id: uuid::Uuid::now_v7(),
            link_id: uuid::Uuid::nil(),
            short_code: format!("c{n}"),
            occurred_at: chrono::Utc::now(),
            visitor: format!("{n:032x}").into(),
            user_agent: None,
            referrer: None,
            country: None,
            counted_at_redirect: false,
        }
    }

    #[tokio::test]
    async fn a_full_bus_leaves_owned_events_with_the_caller() {
        let bus = MemoryEventBus::new(3);
        let mut first: Vec<ClickEvent> = (0..2).map(sample_event).collect();
        bus.publish_owned(&mut first).await.unwrap();
        assert!(first.is_empty());
        let mut second: Vec<ClickEvent> = (2..4).map(sample_event).collect();
        let ids: Vec<_> = second.iter().map(|e| e.id).collect();
        assert!(bus.publish_owned(&mut second).await.is_err());
        assert_eq!(second.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
        assert_eq!(bus.len(), 2, "all or nothing");
    }
}
