//! Backend health and graceful shutdown.

use super::Shortener;
use crate::error::{Error, Result};
use std::time::Duration;

/// The state of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentHealth {
    /// `store`, `cache`, `bus`, `rate_limiter`, `id_allocator`: always all five (the
    /// in-memory backends too).
    pub name: &'static str,
    /// Whether it answered.
    pub healthy: bool,
    /// Whether the service is down without it (the shared cache is optional: redirects go
    /// to the store when it fails).
    pub required: bool,
    /// The error, when unhealthy.
    pub error: Option<String>,
}

/// The state of every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// One entry per backend.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// False when a required backend is down.
    pub fn is_healthy(&self) -> bool {
        self.components.iter().all(|c| c.healthy || !c.required)
    }

    /// True when an optional backend is down.
    pub fn is_degraded(&self) -> bool {
        self.components.iter().any(|c| !c.healthy)
    }
}

impl Shortener {
    /// Asks every backend whether it answers (each within 2 s).
    pub async fn health(&self) -> HealthReport {
        async fn probe(
            name: &'static str,
            required: bool,
            check: impl std::future::Future<Output = Result<()>>,
        ) -> ComponentHealth {
            let result = tokio::time::timeout(Duration::from_secs(2), check)
                .await
                .unwrap_or_else(|_| Err(Error::unavailable(name, "no answer within 2 s")));
            ComponentHealth {
                name,
                healthy: result.is_ok(),
                required,
                error: result.err().map(|e| e.to_string()),
            }
        }
        let inner = &*self.inner;
        // Without a shared cache, the cache is the in-process one, which cannot fail.
        let cache = async {
            match &inner.cache {
                Some(cache) => cache.health().await,
                None => Ok(()),
            }
        };
        HealthReport {
            components: vec![
                probe("store", true, inner.links.health()).await,
                probe("cache", false, cache).await,
                probe("bus", false, inner.bus.health()).await,
                probe("rate_limiter", false, inner.limiter.health()).await,
                probe("id_allocator", true, inner.ids.health()).await,
            ],
        }
    }

    /// Stops the background work: no click is accepted after this; the buffered ones are
    /// published, the worker drains the bus and flushes to the store, then this returns.
    /// Calling it again does nothing.
    pub async fn shutdown(&self) {
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(tasks) = tasks else { return };
        let _ = tasks.stop_forwarder.send(true);
        if let Err(e) = tasks.forwarder.await {
            tracing::error!(error = %e, "click forwarder failed");
        }
        if let Err(e) = self.inner.bus.flush().await {
            tracing::error!(error = %e, "flushing the event bus failed; unsent clicks may be lost");
        }
        let _ = tasks.stop_worker.send(true);
        if let Some(worker) = tasks.worker
            && let Err(e) = worker.await
        {
            tracing::error!(error = %e, "analytics worker failed");
        }
        // After the worker: its last batches may have queued `link.clicked`.
        let _ = tasks.stop_deliveries.send(true);
        if let Err(e) = tasks.deliveries.await {
            tracing::error!(error = %e, "webhook deliveries failed");
        }
    }
}
