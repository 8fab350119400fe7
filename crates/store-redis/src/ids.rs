use crate::Redis;
use async_trait::async_trait;
use hoplink::{Error, IdAllocator, Result};
use std::ops::Range;

/// Id blocks from one `INCRBY` on the `ids` key: atomic, so blocks never overlap across
/// instances. The counter lives as long as Redis keeps its data: with persistence off, a
/// Redis restart would hand out ids again, so prefer the PostgreSQL allocator when links
/// live in PostgreSQL (the server does).
#[derive(Debug, Clone)]
pub struct RedisIdAllocator {
    redis: Redis,
}

impl RedisIdAllocator {
    pub(crate) fn new(redis: Redis) -> Self {
        RedisIdAllocator { redis }
    }
}

#[async_trait]
impl IdAllocator for RedisIdAllocator {
    async fn allocate(&self, count: u64) -> Result<Range<u64>> {
        let count_arg = i64::try_from(count)
            .map_err(|_| Error::backend(crate::BACKEND, "block size out of range"))?;
        let end: i64 = self
            .redis
            .run(
                redis::cmd("INCRBY")
                    .arg(self.redis.key("ids"))
                    .arg(count_arg),
            )
            .await?;
        let end = u64::try_from(end)
            .map_err(|_| Error::backend(crate::BACKEND, "negative id counter"))?;
        Ok(end - count..end)
    }

    async fn health(&self) -> Result<()> {
        self.redis.ping().await
    }
}
