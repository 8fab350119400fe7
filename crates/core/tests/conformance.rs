//! The conformance suite against every in-memory backend: the reference every other
//! backend is held to.

use hoplink::memory::{
    MemoryCache, MemoryEventBus, MemoryIdAllocator, MemoryRateLimiter, MemoryStore,
};
use hoplink::testing;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_link_store() {
    testing::link_store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_user_store() {
    testing::user_store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_analytics_store() {
    testing::analytics_store(Arc::new(MemoryStore::new())).await;
    testing::click_log(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_domain_store() {
    testing::domain_store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_moderation_store() {
    testing::moderation_store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_webhook_store() {
    testing::webhook_store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_cache() {
    testing::cache(Arc::new(MemoryCache::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_rate_limiter() {
    testing::rate_limiter(Arc::new(MemoryRateLimiter::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_id_allocator() {
    testing::id_allocator(Arc::new(MemoryIdAllocator::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_event_bus() {
    testing::event_bus(Arc::new(MemoryEventBus::new(1000))).await;
}
