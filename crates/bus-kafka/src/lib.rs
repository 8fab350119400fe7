//! Kafka `EventBus` for hoplink over rdkafka.
//!
//! Not implemented yet: this crate reserves its place in the workspace. Until it lands,
//! use [`hoplink::memory::MemoryEventBus`].
