//! The shared (L2) cache of redirect targets, with cross-instance invalidation.

use crate::error::Result;
use crate::records::CacheEntry;
use async_trait::async_trait;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// What an instance must forget from its in-process (L1) cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation<'a> {
    /// One short code was edited, deleted or created.
    Code(&'a str),
    /// Anything may have changed: invalidations may have been missed (for example while
    /// the connection to the shared cache was down).
    All,
}

/// Hears every invalidation, from every instance sharing the cache. Called synchronously,
/// so it must be quick and must not block; it returns `false` once it no longer wants to
/// hear (its instance is gone), and is then dropped.
pub type InvalidationListener = Arc<dyn Fn(Invalidation<'_>) -> bool + Send + Sync>;

/// A cache shared by every instance (Redis in production), sitting between each
/// instance's in-process L1 and the [`LinkStore`](crate::LinkStore).
///
/// # Contract
/// - `get` returns what `set` stored until its TTL passes or it is invalidated;
///   `CacheEntry::Missing` is stored like any entry (negative caching).
/// - `invalidate` removes the entry and calls every listener registered with
///   [`Cache::listen`] on every instance sharing the cache with the code *before it
///   returns*, so that the next redirect any instance serves sees the change. A networked
///   cache may give up waiting for an instance that does not answer within a bound it
///   documents (that instance's L1 TTL is then the safety net).
/// - When a cache may have missed invalidations (a lost connection), it calls its
///   listeners with [`Invalidation::All`] before it serves again.
#[async_trait]
pub trait Cache: Send + Sync + Debug {
    /// The entry for `short_code`, if cached.
    async fn get(&self, short_code: &str) -> Result<Option<CacheEntry>>;
    /// Caches an entry for `ttl`.
    async fn set(&self, short_code: &str, entry: &CacheEntry, ttl: Duration) -> Result<()>;
    /// Forgets `short_code` here and makes every instance's listeners forget it too.
    async fn invalidate(&self, short_code: &str) -> Result<()>;
    /// Registers a listener for the invalidations of every instance.
    fn listen(&self, listener: InvalidationListener);
    /// Whether the cache answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// The listeners of one cache instance (for backend authors): register, then notify.
#[derive(Default)]
pub struct Listeners {
    // Invalidations are rare (writes only), so one lock held while notifying is fine.
    listeners: std::sync::Mutex<Vec<InvalidationListener>>,
}

impl Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("count", &self.lock().len())
            .finish()
    }
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<InvalidationListener>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a listener.
    pub fn add(&self, listener: InvalidationListener) {
        self.lock().push(listener);
    }

    /// Calls every listener, dropping those that are gone.
    pub fn notify(&self, invalidation: Invalidation<'_>) {
        self.lock().retain(|listener| listener(invalidation));
    }
}
