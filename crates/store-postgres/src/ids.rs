//! [`IdAllocator`]: blocks of ids from a sequence.

use crate::{ID_BLOCK, PgStore, db_error};
use async_trait::async_trait;
use hoplink::{Error, IdAllocator, Result};
use std::ops::Range;

#[async_trait]
impl IdAllocator for PgStore {
    async fn allocate(&self, count: u64) -> Result<Range<u64>> {
        if count > ID_BLOCK {
            return Err(Error::invalid(
                "count",
                "invalid_count",
                format!("blocks hold at most {ID_BLOCK} ids"),
            ));
        }
        let block: i64 = sqlx::query_scalar("SELECT nextval('id_blocks')")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let start = (block.max(0) as u64) * ID_BLOCK;
        Ok(start..start + count)
    }

    async fn health(&self) -> Result<()> {
        self.ping().await
    }
}
