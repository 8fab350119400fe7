//! Click analytics: the pipeline from the redirect to the store, user-agent
//! classification, visitor hashing and summaries.
//!
//! ```text
//! resolve() ── push ──> per-thread buffer ──> forwarder ──> EventBus ──> worker ──> AnalyticsStore
//!               (never waits;   (hashes visitors,   (batches by size / time,
//!                full: drop     stamps event ids)    de-dup by id in the store,
//!                and count)                          ack after the write)
//! ```

use crate::agent::Classifier;
use crate::bus::{EventBus, EventConsumer};
use crate::geoip::GeoIp;
use crate::model::{AnalyticsSummary, DayClicks, ValueCount};
use crate::records::{ClassifiedClick, ClickEvent, DailyRollup, Dimension, RollupWindow, Visitor};
use crate::stats::{Hot, Stats};
use crate::store::AnalyticsStore;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use siphasher::sip128::{Hasher128, SipHasher24};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

mod buffer;
mod event_ids;
pub(crate) use buffer::{ClickBuffer, Clicks};
pub(crate) use event_ids::EventIds;

/// How clicks are batched on their way to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// Largest batch written at once (`ANALYTICS_BATCH_SIZE`, default 500).
    pub batch_size: usize,
    /// Longest a click waits before its batch is written (`ANALYTICS_FLUSH_MS`, default 1 s).
    pub flush_interval: Duration,
    /// Clicks the in-process buffer holds before it drops (default 100,000).
    pub buffer_capacity: usize,
    /// Whether this instance runs an analytics worker (instances that only redirect may not).
    pub run_worker: bool,
}

impl AnalyticsConfig {
    /// Largest accepted batch size.
    pub const MAX_BATCH_SIZE: usize = 100_000;
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            batch_size: 500,
            flush_interval: Duration::from_millis(1000),
            buffer_capacity: 100_000,
            run_worker: true,
        }
    }
}

/// A click as the redirect hands it over, borrowed from the request (on its way in) or
/// from the hand-over buffer (on its way out): still with the raw address, which never
/// leaves the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingClick<'a> {
    pub link_id: Uuid,
    pub short_code: &'a str,
    pub at: DateTime<Utc>,
    pub ip: Option<IpAddr>,
    /// Cut to [`MAX_USER_AGENT`] bytes in the buffer.
    pub user_agent: Option<&'a str>,
    /// What [`referrer_of`] keeps of the `Referer`.
    pub referrer: Option<&'a str>,
    /// Cut to [`MAX_COUNTRY`] bytes in the buffer.
    pub country: Option<&'a str>,
    pub counted_at_redirect: bool,
}

/// Daily-rotating visitor pseudonyms: SipHash-2-4 (128 bits) of (address, user agent)
/// under the day's key, an HMAC-SHA256 of the day under a secret shared by all instances.
/// Without the secret the hash cannot be reversed to an address, and the same visitor
/// gets unrelated hashes on different days.
#[derive(Debug, Clone)]
pub(crate) struct VisitorHasher {
    secret: Arc<[u8]>,
    today: Option<(NaiveDate, [u8; 16])>,
}

impl VisitorHasher {
    pub fn new(secret: Arc<[u8]>) -> Self {
        VisitorHasher {
            secret,
            today: None,
        }
    }

    /// The day's key: derived from the secret once a day (HMAC-SHA256), so a day's
    /// pseudonyms can't be linked to another day's or to an address without the secret.
    fn key(&mut self, day: NaiveDate) -> [u8; 16] {
        match self.today {
            Some((d, key)) if d == day => key,
            _ => {
                let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
                    .unwrap_or_else(|_| Hmac::<Sha256>::new_from_slice(b"hoplink").expect("key"));
                mac.update(b"hoplink visitor salt ");
                mac.update(day.to_string().as_bytes());
                let mut key = [0u8; 16];
                key.copy_from_slice(&mac.finalize().into_bytes()[..16]);
                self.today = Some((day, key));
                key
            }
        }
    }

    pub fn hash(
        &mut self,
        day: NaiveDate,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Visitor {
        let Some(ip) = ip else {
            return Visitor::default();
        };
        // SipHash-2-4 under the day's key is a PRF, which is all a pseudonym needs, at
        // about a tenth of what SHA-256 cost per click (callgrind: 3,500 of a redirect's
        // 28,500 instructions went to SHA-256).
        let mut h = SipHasher24::new_with_key(&self.key(day));
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.write_u8(0);
        h.write(user_agent.unwrap_or_default().as_bytes());
        Visitor::of_hash(&h.finish128().as_bytes())
    }
}

impl PendingClick<'_> {
    /// The event to publish: the address hashed into a visitor and, when the click names
    /// no country, looked up in `geoip`; the address itself goes no further.
    pub fn to_event(
        &self,
        hasher: &mut VisitorHasher,
        ids: &mut EventIds,
        geoip: Option<&GeoIp>,
    ) -> ClickEvent {
        let user_agent = self.user_agent;
        let visitor = hasher.hash(self.at.date_naive(), self.ip, user_agent);
        let country = self.country.map(str::to_string).or_else(|| {
            let code = geoip?.country(self.ip?)?;
            Some(crate::geoip::code_str(&code).to_string())
        });
        ClickEvent {
            id: ids.next(self.at),
            link_id: self.link_id,
            short_code: self.short_code.to_string(),
            occurred_at: self.at,
            visitor,
            user_agent: user_agent.map(String::from),
            referrer: self.referrer.map(str::to_string),
            country,
            counted_at_redirect: self.counted_at_redirect,
        }
    }
}

/// Longest host name (DNS allows 253 characters).
pub(crate) const MAX_HOST: usize = 253;
/// Longest country value a click keeps from a proxy's header (codes are two letters).
pub(crate) const MAX_COUNTRY: usize = 16;
/// Longest user agent a click keeps (longer ones are cut; families don't need more).
pub(crate) const MAX_USER_AGENT: usize = 512;

/// What a click keeps of a `Referer`, taken on the redirect path without allocating:
/// its host (between `://` and the path, without credentials or
/// port), or `""` when it has none or one longer than a host can be. A visitor's
/// referrer is never stored whole: a unique 100 KB `Referer` per click must cost nothing.
pub(crate) fn referrer_of(referrer: &str) -> &str {
    referrer
        .trim()
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#', '\\']).next())
        .and_then(|authority| authority.rsplit('@').next())
        .and_then(|host_port| match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next(),
            None => host_port.split(':').next(),
        })
        .filter(|h| !h.is_empty() && h.len() <= MAX_HOST)
        .unwrap_or_default()
}

/// The referrer value analytics report: the host without `www.`, in lower case;
/// `direct` when the click had no `Referer`, `unknown` when it had one without a usable
/// host. Takes what [`referrer_of`] kept, or a whole URL (events of earlier versions).
pub fn referrer_host(referrer: Option<&str>) -> Cow<'static, str> {
    let Some(referrer) = referrer.map(str::trim) else {
        return Cow::Borrowed("direct");
    };
    let host = if referrer.contains("://") {
        referrer_of(referrer)
    } else {
        referrer
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let plausible = host.len() <= MAX_HOST
        && host.contains(['.', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
    if plausible {
        Cow::Owned(host.to_string())
    } else {
        Cow::Borrowed("unknown")
    }
}

/// A two-letter country code in upper case, `unknown` otherwise.
pub fn country_code(country: Option<&str>) -> Cow<'static, str> {
    match country.map(str::trim) {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Cow::Owned(c.to_ascii_uppercase())
        }
        _ => Cow::Borrowed("unknown"),
    }
}

/// Turns a bus event into what the store records, classifying its user agent with
/// `classifier`.
pub fn classify(event: &ClickEvent, classifier: &mut Classifier) -> ClassifiedClick {
    let ua = classifier.classify(event.user_agent.as_deref());
    ClassifiedClick {
        event_id: event.id,
        link_id: event.link_id,
        day: event.occurred_at.date_naive(),
        visitor: event.visitor,
        is_bot: ua.is_bot,
        referrer: referrer_host(event.referrer.as_deref()),
        browser: ua.browser.as_str().into(),
        os: ua.os.as_str().into(),
        device: ua.device.as_str().into(),
        country: country_code(event.country.as_deref()),
        counted_at_redirect: event.counted_at_redirect,
        at: event.occurred_at,
    }
}

/// Entries in each breakdown of a summary, besides `other`.
pub const TOP_VALUES: usize = 10;
/// The value that sums up the rest of a breakdown.
const OTHER: &str = "other";

/// Builds the summary of `[from, to]` from a store's rollups: every day present (zeros
/// included), breakdowns ranked by count, then value.
pub fn summarize(
    short_code: &str,
    from: NaiveDate,
    to: NaiveDate,
    window: RollupWindow,
) -> AnalyticsSummary {
    let by_day: HashMap<NaiveDate, _> = window.days.iter().map(|d| (d.date, *d)).collect();
    let clicks_by_day: Vec<DayClicks> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|date| DayClicks {
            date,
            clicks: by_day.get(&date).map_or(0, |d| d.clicks),
        })
        .collect();
    let in_window = |d: &&DailyRollup| d.date >= from && d.date <= to;
    let mut breakdowns: HashMap<Dimension, Vec<ValueCount>> =
        window.breakdowns.into_iter().collect();
    // The top values, and the rest summed up as `other`: a summary stays small however
    // many distinct values visitors brought.
    let mut top = |dim: Dimension| {
        let mut values = breakdowns.remove(&dim).unwrap_or_default();
        values.retain(|v| v.count > 0);
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        if values.len() > TOP_VALUES {
            let rest: u64 = values.drain(TOP_VALUES..).map(|v| v.count).sum();
            match values.iter_mut().find(|v| v.value == OTHER) {
                Some(other) => other.count += rest,
                None => values.push(ValueCount {
                    value: OTHER.into(),
                    count: rest,
                }),
            }
        }
        values
    };
    AnalyticsSummary {
        short_code: short_code.to_string(),
        total_clicks: window.days.iter().filter(in_window).map(|d| d.clicks).sum(),
        unique_visitors: window
            .days
            .iter()
            .filter(in_window)
            .map(|d| d.unique_visitors)
            .sum(),
        bot_clicks: window
            .days
            .iter()
            .filter(in_window)
            .map(|d| d.bot_clicks)
            .sum(),
        clicks_by_day,
        top_referrers: top(Dimension::Referrer),
        browsers: top(Dimension::Browser),
        operating_systems: top(Dimension::Os),
        devices: top(Dimension::Device),
        countries: top(Dimension::Country),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(5))
}

/// Moves clicks from the in-process buffer to the bus until told to stop, then drains
/// what the buffer still holds.
pub(crate) async fn run_forwarder(
    buffer: Arc<ClickBuffer>,
    bus: Arc<dyn EventBus>,
    mut hasher: VisitorHasher,
    geoip: Option<Arc<GeoIp>>,
    config: AnalyticsConfig,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    // Draining on a short tick instead of waking on every click keeps the redirect path
    // from paying a cross-thread wake-up per request; a click waits at most one tick here.
    let tick = config.flush_interval.min(FORWARD_TICK);
    let mut events: Vec<ClickEvent> = Vec::with_capacity(config.batch_size.min(4096));
    let mut taken = Clicks::default();
    let mut ids = EventIds::new();
    let mut stopping = false;
    loop {
        if !stopping {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                // A dropped service (the sender gone) stops the forwarder too.
                _ = stop.changed() => {
                    stopping = true;
                    buffer.close();
                }
            }
        }
        for shard in 0..buffer.shards() {
            if !buffer.take(shard, &mut taken) {
                continue;
            }
            for click in taken.iter() {
                events.push(click.to_event(&mut hasher, &mut ids, geoip.as_deref()));
                if events.len() >= config.batch_size {
                    publish_with_retry(&*bus, &mut events, &stats, stopping).await;
                }
            }
        }
        if !events.is_empty() {
            publish_with_retry(&*bus, &mut events, &stats, stopping).await;
        }
        // Closed before this pass, so nothing can have come in since.
        if stopping {
            break;
        }
    }
}

/// Longest a click waits in the buffer before the forwarder looks.
const FORWARD_TICK: Duration = Duration::from_millis(20);

/// Publishes `events` (left empty afterwards), retrying with backoff.
async fn publish_with_retry(
    bus: &dyn EventBus,
    events: &mut Vec<ClickEvent>,
    stats: &Stats,
    stopping: bool,
) {
    let mut attempt = 0;
    let count = events.len() as u64;
    loop {
        match bus.publish_owned(events).await {
            Ok(()) => {
                Stats::bump(&stats.clicks_published, count);
                return;
            }
            Err(e) => {
                Stats::bump(&stats.publish_failures, 1);
                if stopping && attempt >= 10 {
                    tracing::error!(error = %e, lost = count, "event bus unavailable during shutdown; clicks lost");
                    stats.hot_by(Hot::ClicksDropped, count);
                    events.clear();
                    return;
                }
                tracing::warn!(error = %e, attempt, "publishing clicks failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// What runs after a batch is recorded and before it is acknowledged (webhooks queue
/// `link.clicked` there): a failure leaves the batch unacknowledged, to come again.
#[async_trait::async_trait]
pub(crate) trait AfterRecord: Send + Sync {
    async fn recorded(&self, clicks: &[ClassifiedClick]) -> crate::error::Result<()>;
}

/// Consumes the bus in batches, classifies and records them, and acknowledges each batch
/// once stored. When told to stop it drains the bus, then returns.
pub(crate) async fn run_worker(
    mut consumer: Box<dyn EventConsumer>,
    store: Arc<dyn AnalyticsStore>,
    after: Arc<dyn AfterRecord>,
    config: AnalyticsConfig,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    let mut classifier = Classifier::default();
    loop {
        let draining = *stop.borrow();
        let next = if draining {
            consumer
                .next_batch(config.batch_size, Duration::from_millis(50))
                .await
        } else {
            // A long flush interval must not delay shutdown: stop waiting when told to
            // (next_batch is cancel-safe by contract) and come back in draining mode.
            tokio::select! {
                next = consumer.next_batch(config.batch_size, config.flush_interval) => next,
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The service was dropped without shutdown(): nobody waits for a drain.
                        return;
                    }
                    continue;
                }
            }
        };
        let events = match next {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "reading click events failed; retrying");
                if draining && attempt >= 10 {
                    break;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        if events.is_empty() {
            if draining {
                break;
            }
            continue;
        }
        let clicks: Vec<ClassifiedClick> = events
            .iter()
            .map(|e| classify(e, &mut classifier))
            .collect();
        let recorded = match store.record(&clicks).await {
            Ok(outcome) => after.recorded(&clicks).await.map(|()| outcome),
            Err(e) => Err(e),
        };
        match recorded {
            Ok(outcome) => {
                attempt = 0;
                Stats::bump(&stats.clicks_recorded, outcome.recorded);
                Stats::bump(&stats.clicks_duplicate, outcome.duplicates);
                if let Err(e) = consumer.ack().await {
                    // Not fatal: the batch comes again and the store skips it as duplicates.
                    tracing::warn!(error = %e, "acknowledging click events failed");
                }
            }
            Err(e) => {
                Stats::bump(&stats.record_failures, 1);
                tracing::warn!(error = %e, events = clicks.len(), "recording clicks failed; retrying");
                if draining && attempt >= 10 {
                    tracing::error!(
                        "analytics store unavailable during shutdown; leaving events unacknowledged"
                    );
                    break;
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_the_clicks_time_in_its_id_and_no_address() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T23:59:59.999700Z")
            .unwrap()
            .with_timezone(&Utc);
        let click = PendingClick {
            link_id: Uuid::now_v7(),
            short_code: "abc",
            at,
            ip: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some("Mozilla/5.0"),
            referrer: Some("t.co"),
            country: None,
            counted_at_redirect: false,
        };
        let mut hasher = VisitorHasher::new(Arc::from(&b"secret"[..]));
        let event = click.to_event(&mut hasher, &mut EventIds::new(), None);
        // The id's millisecond is the click's, not the forwarding's, so its day (the
        // PostgreSQL click log's partition) is the click's day.
        let (secs, nanos) = event.id.get_timestamp().unwrap().to_unix();
        assert_eq!((secs as i64, nanos / 1_000_000), (at.timestamp(), 999));
        assert_eq!(event.occurred_at, at);
        assert_eq!(event.visitor.len(), 32);
        assert!(!event.visitor.contains("203.0.113.7"));
        assert_eq!(event.short_code, "abc");
    }

    #[test]
    fn referrers_and_countries() {
        assert_eq!(
            referrer_of("https://user:pw@News.Example.com:8443/a?b#c"),
            "News.Example.com"
        );
        assert_eq!(referrer_of("http://[2001:db8::1]:80/x"), "2001:db8::1");
        assert_eq!(
            referrer_of("android-app://com.google.android.gm/"),
            "com.google.android.gm"
        );
        assert_eq!(referrer_of("garbage"), "");
        let huge = format!("https://news.example.com/{}", "a".repeat(97 * 1024));
        assert_eq!(
            referrer_of(&huge),
            "news.example.com",
            "a long referrer keeps its host"
        );
        let huge_host = format!("https://{}.example.com/", "a".repeat(300));
        assert_eq!(referrer_of(&huge_host), "", "no host is that long");
        assert_eq!(referrer_host(Some(referrer_of(&huge))), "news.example.com");
        assert_eq!(referrer_host(Some("WWW.Example.COM")), "example.com");
        assert_eq!(referrer_host(Some("")), "unknown");
        assert_eq!(referrer_host(Some("evil host<script>")), "unknown");
        assert_eq!(referrer_host(None), "direct");
        assert_eq!(
            referrer_host(Some("https://www.Example.com/a")),
            "example.com"
        );
        assert_eq!(referrer_host(Some("garbage")), "unknown");
        assert_eq!(country_code(Some("de")), "DE");
        assert_eq!(country_code(Some("Germany")), "unknown");
        assert_eq!(country_code(None), "unknown");
    }

    #[test]
    fn visitor_hash_rotates_daily_and_hides_the_address() {
        let mut h = VisitorHasher::new(Arc::from(&b"secret"[..]));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let d2 = d1.succ_opt().unwrap();
        let a = h.hash(d1, Some(ip), Some("ua"));
        assert_eq!(a, h.hash(d1, Some(ip), Some("ua")));
        assert_ne!(a, h.hash(d2, Some(ip), Some("ua")));
        assert_ne!(a, h.hash(d1, Some(ip), Some("other ua")));
        assert!(!a.contains("203"));
        assert_eq!(a.len(), 32);
        let mut other = VisitorHasher::new(Arc::from(&b"other"[..]));
        assert_ne!(a, other.hash(d1, Some(ip), Some("ua")));
    }
}
