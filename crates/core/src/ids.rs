//! Id allocation in blocks.

use crate::error::Result;
use async_trait::async_trait;
use std::fmt::Debug;
use std::ops::Range;

/// Hands out blocks of ids that are unique across every instance sharing the allocator.
///
/// # Contract
/// - Blocks never overlap, across instances and under concurrency; each has `count` ids.
/// - Ids are never reused; gaps (blocks abandoned by a crashed instance) are fine.
#[async_trait]
pub trait IdAllocator: Send + Sync + Debug {
    /// A fresh block of `count` ids.
    async fn allocate(&self, count: u64) -> Result<Range<u64>>;
    /// Whether the allocator answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
