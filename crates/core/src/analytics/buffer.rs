//! The hand-over buffer between redirects and the click forwarder.
//!
//! A redirect appends its click to its thread's shard, under a lock that only the
//! forwarder's swap ever contends: the fixed part as a small record, the texts (code,
//! user agent, referrer host, country) at the end of the shard's text, only as long as
//! they are (a 120-byte user agent costs 120 bytes, not the 512 it may take). The
//! forwarder swaps each shard for an empty one of the same capacity and reads the
//! clicks back as [`PendingClick`]s borrowing the shard's text, so in a steady state a
//! click costs no allocation. (A channel of fixed-size records copied the whole
//! 900-byte record eight times on its way: about 1,000 instructions a click.)

use super::{MAX_COUNTRY, MAX_USER_AGENT, PendingClick};
use crate::memory::lock;
use crate::text::cut;
use chrono::{DateTime, Utc};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// Clicks handed over and not yet taken by the forwarder, in per-thread shards.
#[derive(Debug)]
pub(crate) struct ClickBuffer {
    shards: Box<[Padded]>,
    /// Clicks one shard holds before it refuses more.
    shard_capacity: usize,
}

/// A shard on cache lines of its own (two, for the prefetcher that fetches pairs): two
/// cores writing neighbouring shards would otherwise pass one line back and forth on
/// every click, a cost that instruction counts don't show and a saturated load run does.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(Mutex<Shard>);

#[derive(Debug, Default)]
struct Shard {
    clicks: Clicks,
    closed: bool,
}

/// Clicks taken out of one shard, to read with [`Clicks::iter`].
#[derive(Debug, Default)]
pub(crate) struct Clicks {
    records: Vec<Record>,
    text: String,
}

/// A click's fixed part; its texts are the ranges of [`Clicks::text`] that end at the
/// given offsets, one after the other from `start`.
#[derive(Debug)]
struct Record {
    link_id: Uuid,
    at: DateTime<Utc>,
    ip: Option<IpAddr>,
    counted_at_redirect: bool,
    start: u32,
    code_end: u32,
    user_agent_end: Option<u32>,
    referrer_end: Option<u32>,
    country_end: Option<u32>,
}

impl ClickBuffer {
    /// A buffer of at most about `capacity` clicks (split evenly among the shards, one
    /// per core).
    pub fn new(capacity: usize) -> Self {
        let shards = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 64);
        ClickBuffer {
            shards: (0..shards).map(|_| Padded::default()).collect(),
            shard_capacity: capacity.div_ceil(shards).max(1),
        }
    }

    /// Appends `click` to this thread's shard; `false` (and nothing kept) when the shard
    /// is full or the buffer closed.
    pub fn push(&self, click: &PendingClick<'_>) -> bool {
        let mut shard = lock(&self.shards[thread_shard() % self.shards.len()].0);
        if shard.closed || shard.clicks.records.len() >= self.shard_capacity {
            return false;
        }
        shard.clicks.push(click)
    }

    /// Moves shard `index`'s clicks into `into` (emptied first), leaving the shard
    /// `into`'s old allocations; `false` when the shard held none.
    pub fn take(&self, index: usize, into: &mut Clicks) -> bool {
        into.records.clear();
        into.text.clear();
        let mut shard = lock(&self.shards[index].0);
        if shard.clicks.records.is_empty() {
            return false;
        }
        std::mem::swap(&mut shard.clicks, into);
        true
    }

    /// How many shards [`take`](Self::take) goes through.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Refuses every later click; what was accepted stays to be taken.
    pub fn close(&self) {
        for shard in &self.shards {
            lock(&shard.0).closed = true;
        }
    }

    /// Whether no click waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.shards
            .iter()
            .all(|s| lock(&s.0).clicks.records.is_empty())
    }
}

impl Clicks {
    /// Appends `click`; `false` (and nothing kept) when the text would pass 4 GiB.
    fn push(&mut self, click: &PendingClick<'_>) -> bool {
        let texts = [
            Some(click.short_code),
            click.user_agent.map(|ua| cut(ua, MAX_USER_AGENT)),
            click.referrer,
            click.country.map(|c| cut(c, MAX_COUNTRY)),
        ];
        let len: usize = texts.iter().flatten().map(|t| t.len()).sum();
        if self.text.len() + len > u32::MAX as usize {
            return false;
        }
        let start = self.text.len() as u32;
        let [code_end, user_agent_end, referrer_end, country_end] = texts.map(|text| {
            text.map(|t| {
                self.text.push_str(t);
                self.text.len() as u32
            })
        });
        self.records.push(Record {
            link_id: click.link_id,
            at: click.at,
            ip: click.ip,
            counted_at_redirect: click.counted_at_redirect,
            start,
            code_end: code_end.unwrap_or(start),
            user_agent_end,
            referrer_end,
            country_end,
        });
        true
    }

    /// The clicks, in the order they were handed over.
    pub fn iter(&self) -> impl Iterator<Item = PendingClick<'_>> {
        self.records.iter().map(|r| {
            let mut from = r.start as usize;
            let mut next = |end: u32| {
                let text = self.text.get(from..end as usize).unwrap_or_default();
                from = end as usize;
                text
            };
            PendingClick {
                link_id: r.link_id,
                short_code: next(r.code_end),
                at: r.at,
                ip: r.ip,
                user_agent: r.user_agent_end.map(&mut next),
                referrer: r.referrer_end.map(&mut next),
                country: r.country_end.map(&mut next),
                counted_at_redirect: r.counted_at_redirect,
            }
        })
    }
}

/// This thread's shard number. Only threads that hand over clicks are numbered (in the
/// order they first do), so a runtime's worker threads, as many as the shards, each get a
/// shard of their own.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click<'a>(code: &'a str, ua: Option<&'a str>, ip: Option<IpAddr>) -> PendingClick<'a> {
        PendingClick {
            link_id: Uuid::now_v7(),
            short_code: code,
            at: DateTime::from_timestamp(1_764_633_599, 999_999_999).unwrap(),
            ip,
            user_agent: ua,
            referrer: Some("news.example.com"),
            country: None,
            counted_at_redirect: true,
        }
    }

    fn taken(buffer: &ClickBuffer) -> Vec<Clicks> {
        (0..buffer.shards())
            .filter_map(|i| {
                let mut taken = Clicks::default();
                buffer.take(i, &mut taken).then_some(taken)
            })
            .collect()
    }

    #[test]
    fn clicks_come_back_as_they_were_handed_over() {
        let buffer = ClickBuffer::new(100);
        let long_ua = "é".repeat(400);
        let clicks = [
            click(
                "abc",
                Some("Mozilla/5.0"),
                Some("203.0.113.7".parse().unwrap()),
            ),
            PendingClick {
                country: Some("DE"),
                referrer: None,
                counted_at_redirect: false,
                ..click("x", None, Some("2001:db8::1".parse().unwrap()))
            },
            click(&long_ua, Some(&long_ua), None),
        ];
        for c in &clicks {
            assert!(buffer.push(c));
        }
        let taken = taken(&buffer);
        assert_eq!(taken.len(), 1, "one thread, one shard");
        let back: Vec<PendingClick<'_>> = taken[0].iter().collect();
        assert_eq!(back[0], clicks[0]);
        assert_eq!(back[1], clicks[1]);
        // A long code stays whole; a user agent is cut to 512 bytes at a character boundary.
        assert_eq!(back[2].short_code, long_ua);
        let ua = back[2].user_agent.unwrap();
        assert_eq!(ua.len(), 512);
        assert!(long_ua.starts_with(ua));
        assert!(buffer.is_empty(), "taking empties the shard");
    }

    #[test]
    fn a_full_or_closed_buffer_refuses_and_keeps_what_it_accepted() {
        let buffer =
            ClickBuffer::new(2 * std::thread::available_parallelism().map_or(1, usize::from));
        let c = click("abc", None, None);
        assert!(buffer.push(&c) && buffer.push(&c));
        assert!(!buffer.push(&c), "this thread's shard holds two");
        let mut taken = Clicks::default();
        let shard = (0..buffer.shards())
            .find(|&i| buffer.take(i, &mut taken))
            .unwrap();
        assert_eq!(taken.iter().count(), 2);
        assert!(buffer.push(&c), "room again once taken");
        buffer.close();
        assert!(!buffer.push(&c));
        assert!(!buffer.is_empty(), "what was accepted before closing stays");
        assert!(buffer.take(shard, &mut taken));
        assert_eq!(taken.iter().collect::<Vec<_>>(), vec![c]);
    }

    #[test]
    fn clicks_from_many_threads_all_arrive() {
        let buffer = std::sync::Arc::new(ClickBuffer::new(100_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let buffer = buffer.clone();
                std::thread::spawn(move || {
                    let code = t.to_string();
                    for _ in 0..1000 {
                        assert!(buffer.push(&click(&code, Some("ua"), None)));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut per_code = std::collections::HashMap::<String, usize>::new();
        for taken in taken(&buffer) {
            for c in taken.iter() {
                *per_code.entry(c.short_code.to_string()).or_default() += 1;
            }
        }
        assert_eq!(per_code.len(), 4);
        assert!(per_code.values().all(|&n| n == 1000), "{per_code:?}");
    }
}
