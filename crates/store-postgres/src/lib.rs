//! PostgreSQL backend for hoplink (`LinkStore`, users, analytics, `IdAllocator` over sqlx).
//!
//! Not implemented yet: this crate reserves its place in the workspace. Until it lands,
//! use the in-memory backends of [`hoplink::memory`].
