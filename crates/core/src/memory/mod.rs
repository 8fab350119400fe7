//! In-memory backends: the reference implementation of every trait, and the defaults
//! of [`Shortener::builder`](crate::Shortener::builder).
//!
//! They are correct under concurrency (each operation is atomic under a lock) but keep
//! everything in this process: use them for tests, development, single-instance
//! deployments and embedding, and the PostgreSQL / Redis / Kafka crates to scale out.

mod bus;
mod cache;
mod ids;
mod limiter;
mod store;
mod webhooks;

pub use bus::MemoryEventBus;
pub use cache::MemoryCache;
pub use ids::MemoryIdAllocator;
pub use limiter::MemoryRateLimiter;
pub use store::{DEFAULT_DEDUP_HORIZON, MemoryStore};
pub use webhooks::MAX_PENDING_DELIVERIES;

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks ignoring poisoning: every critical section leaves its state consistent before
/// anything can panic, so a panic elsewhere must not take the store down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}
