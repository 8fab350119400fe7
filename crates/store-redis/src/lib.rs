//! Redis backend for hoplink (shared `Cache`, `RateLimiter`, `IdAllocator`, Streams `EventBus`).
//!
//! Not implemented yet: this crate reserves its place in the workspace. Until it lands,
//! use the in-memory backends of [`hoplink::memory`].
