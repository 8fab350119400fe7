use super::lock;
use crate::cache::{Cache, Invalidation, InvalidationListener, Listeners};
use crate::error::Result;
use crate::records::CacheEntry;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A process-local shared cache. Several [`Shortener`](crate::Shortener)s given the same
/// `MemoryCache` behave like instances sharing Redis: an edit on one invalidates the L1
/// of all of them.
#[derive(Debug)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (CacheEntry, Instant)>>,
    listeners: Listeners,
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
            listeners: Listeners::default(),
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
        self.listeners.notify(Invalidation::Code(short_code));
        Ok(())
    }

    fn listen(&self, listener: InvalidationListener) {
        self.listeners.add(listener);
    }
}
