use super::lock;
use crate::cache::Cache;
use crate::error::Result;
use crate::model::CacheEntry;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A process-local shared cache. Several [`Shortener`](crate::Shortener)s given the same
/// `MemoryCache` behave like instances sharing Redis: an edit on one invalidates the L1
/// of all of them.
#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (CacheEntry, Instant)>>,
    invalidations: broadcast::Sender<String>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        MemoryCache {
            entries: Mutex::new(HashMap::new()),
            invalidations: broadcast::channel(4096).0,
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, short_code: &str) -> Result<Option<CacheEntry>> {
        let mut entries = lock(&self.entries);
        match entries.get(short_code) {
            Some((entry, expires)) if *expires > Instant::now() => Ok(Some(entry.clone())),
            Some(_) => {
                entries.remove(short_code);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, short_code: &str, entry: &CacheEntry, ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        if entries.len() >= 100_000 {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(short_code.to_string(), (entry.clone(), now + ttl));
        Ok(())
    }

    async fn invalidate(&self, short_code: &str) -> Result<()> {
        lock(&self.entries).remove(short_code);
        // No subscriber is not an error: nobody has an L1 to clear.
        let _ = self.invalidations.send(short_code.to_string());
        Ok(())
    }

    fn invalidations(&self) -> broadcast::Receiver<String> {
        self.invalidations.subscribe()
    }
}
