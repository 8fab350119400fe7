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
        {
            let mut queue = lock(&self.inner.queue);
            if queue.len() + events.len() > self.inner.capacity {
                return Err(Error::unavailable(
                    "memory",
                    format!(
                        "event bus full ({} of {} events waiting)",
                        queue.len(),
                        self.inner.capacity
                    ),
                ));
            }
            queue.extend(events.iter().cloned());
        }
        self.inner.published.notify_waiters();
        Ok(())
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
