//! The shared (L2) cache of redirect targets, with cross-instance invalidation.

use crate::error::Result;
use crate::model::CacheEntry;
use async_trait::async_trait;
use std::fmt::Debug;
use std::time::Duration;
use tokio::sync::broadcast;

/// A cache shared by every instance (Redis in production), sitting between each
/// instance's in-process L1 and the [`LinkStore`](crate::LinkStore).
///
/// # Contract
/// - `get` returns what `set` stored until its TTL passes or it is invalidated;
///   `CacheEntry::Missing` is stored like any entry (negative caching).
/// - `invalidate` removes the entry and, before it returns, publishes the code to every
///   subscriber of [`Cache::invalidations`], so that every instance drops the code from
///   its L1. A subscriber that lagged receives `RecvError::Lagged` and must drop its whole L1.
#[async_trait]
pub trait Cache: Send + Sync + Debug {
    /// The entry for `short_code`, if cached.
    async fn get(&self, short_code: &str) -> Result<Option<CacheEntry>>;
    /// Caches an entry for `ttl`.
    async fn set(&self, short_code: &str, entry: &CacheEntry, ttl: Duration) -> Result<()>;
    /// Forgets `short_code` here and tells every instance to forget it too.
    async fn invalidate(&self, short_code: &str) -> Result<()>;
    /// A stream of invalidated codes, from every instance.
    fn invalidations(&self) -> broadcast::Receiver<String>;
    /// Whether the cache answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
