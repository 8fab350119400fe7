use crate::error::{Error, Result};
use crate::ids::IdAllocator;
use async_trait::async_trait;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Blocks from an atomic counter.
#[derive(Debug, Default)]
pub struct MemoryIdAllocator {
    next: AtomicU64,
}

impl MemoryIdAllocator {
    /// A counter starting at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter starting at `first` (e.g. to test long codes).
    pub fn starting_at(first: u64) -> Self {
        MemoryIdAllocator {
            next: AtomicU64::new(first),
        }
    }
}

#[async_trait]
impl IdAllocator for MemoryIdAllocator {
    async fn allocate(&self, count: u64) -> Result<Range<u64>> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            let end = start
                .checked_add(count)
                .ok_or_else(|| Error::backend("memory", "id space exhausted"))?;
            match self
                .next
                .compare_exchange_weak(start, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(start..end),
                Err(current) => start = current,
            }
        }
    }
}
