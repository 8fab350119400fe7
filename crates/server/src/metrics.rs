//! Prometheus metrics: lock-free counters, rendered in the text format on demand. Route
//! labels are the route table's templates (bounded, so label cardinality is too). What
//! every request bumps is striped per thread ([`StripedCounters`]) and summed here.

use crate::routes::{self, ROUTES};
use hoplink::{StatsSnapshot, StripedCounters};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every route, plus requests that match none.
fn labels() -> usize {
    ROUTES.len() + 1
}

const STATUSES: &[u16] = &[
    200, 201, 204, 301, 302, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429, 500,
    503,
];

/// Upper bounds of the redirect latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

const LATENCY_COUNT: usize = LATENCY_BUCKETS.len();
const LATENCY_SUM_NANOS: usize = LATENCY_BUCKETS.len() + 1;

/// A counter a backend keeps, read when `/metrics` is rendered.
pub struct BackendCounter {
    /// Metric name.
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Reads the current value.
    pub read: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for BackendCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendCounter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Counters of the HTTP layer, plus the backends' own.
#[derive(Debug)]
pub struct Metrics {
    backend: Vec<BackendCounter>,
    /// Per route and status, then per route with any other status.
    requests: StripedCounters,
    /// The latency buckets, then the count, then the sum in nanoseconds.
    latency: StripedCounters,
    rate_limited: AtomicU64,
    connections_open: AtomicU64,
    connections_refused_full: AtomicU64,
    connections_refused_share: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            backend: Vec::new(),
            requests: StripedCounters::new(labels() * (STATUSES.len() + 1)),
            latency: StripedCounters::new(LATENCY_BUCKETS.len() + 2),
            rate_limited: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_refused_full: AtomicU64::new(0),
            connections_refused_share: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Metrics that also render the backends' counters.
    pub fn with_backend_counters(backend: Vec<BackendCounter>) -> Self {
        Metrics {
            backend,
            ..Metrics::default()
        }
    }

    /// Counts a response of route `index` (`None`: no route).
    pub fn record(&self, index: Option<usize>, status: u16) {
        let route = index.unwrap_or(ROUTES.len());
        let status = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        self.requests.add(route * (STATUSES.len() + 1) + status, 1);
    }

    /// Records the time a redirect took.
    pub fn observe_redirect(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.latency.add(i, 1);
        }
        self.latency.add(LATENCY_COUNT, 1);
        self.latency.add(LATENCY_SUM_NANOS, took.as_nanos() as u64);
    }

    /// Counts a request refused by a rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an admitted connection.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a closed connection.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a refused connection.
    pub fn connection_refused(&self, why: crate::conn::Refusal) {
        match why {
            crate::conn::Refusal::Full => &self.connections_refused_full,
            crate::conn::Refusal::ClientShare => &self.connections_refused_share,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, stats: &StatsSnapshot) -> String {
        let mut out = String::with_capacity(4096);
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP hoplink_http_requests_total HTTP responses by route and status.\n# TYPE hoplink_http_requests_total counter\n");
        for ri in 0..labels() {
            let route = routes::label((ri < ROUTES.len()).then_some(ri));
            for (si, status) in STATUSES.iter().enumerate() {
                let n = self.requests.get(ri * (STATUSES.len() + 1) + si);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "hoplink_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
            let n = self
                .requests
                .get(ri * (STATUSES.len() + 1) + STATUSES.len());
            if n > 0 {
                let _ = writeln!(
                    out,
                    "hoplink_http_requests_total{{route=\"{route}\",status=\"other\"}} {n}"
                );
            }
        }
        out.push_str("# HELP hoplink_redirect_duration_seconds Time to answer a redirect.\n# TYPE hoplink_redirect_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.latency.get(i);
            let _ = writeln!(
                out,
                "hoplink_redirect_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency.get(LATENCY_COUNT);
        let _ = writeln!(
            out,
            "hoplink_redirect_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "hoplink_redirect_duration_seconds_sum {}",
            self.latency.get(LATENCY_SUM_NANOS) as f64 / 1e9
        );
        let _ = writeln!(out, "hoplink_redirect_duration_seconds_count {count}");
        let counters: [(&str, &str, u64); 15] = [
            (
                "hoplink_rate_limited_total",
                "Requests refused by a rate limit.",
                r(&self.rate_limited),
            ),
            (
                "hoplink_cache_hits_total",
                "Redirects answered from the in-process cache.",
                stats.cache_hits,
            ),
            (
                "hoplink_cache_misses_total",
                "Redirects that looked past the in-process cache.",
                stats.cache_misses,
            ),
            (
                "hoplink_shared_cache_errors_total",
                "Failed shared-cache calls (served from the store).",
                stats.shared_cache_errors,
            ),
            (
                "hoplink_invalidation_failures_total",
                "Cache invalidations the shared cache did not take.",
                stats.invalidation_failures,
            ),
            (
                "hoplink_click_events_buffered_total",
                "Clicks accepted into the buffer.",
                stats.clicks_buffered,
            ),
            (
                "hoplink_click_events_dropped_total",
                "Clicks dropped: buffer full or closed.",
                stats.clicks_dropped,
            ),
            (
                "hoplink_click_events_published_total",
                "Clicks published to the event bus.",
                stats.clicks_published,
            ),
            (
                "hoplink_click_events_publish_failures_total",
                "Failed publish attempts (retried).",
                stats.publish_failures,
            ),
            (
                "hoplink_click_events_flushed_total",
                "Clicks written to the analytics store.",
                stats.clicks_recorded,
            ),
            (
                "hoplink_click_events_duplicate_total",
                "Redelivered clicks recognised as already written.",
                stats.clicks_duplicate,
            ),
            (
                "hoplink_click_events_flush_failures_total",
                "Failed analytics batch writes (retried).",
                stats.record_failures,
            ),
            (
                "hoplink_webhook_deliveries_total",
                "Webhook deliveries a receiver took.",
                stats.webhook_deliveries,
            ),
            (
                "hoplink_webhook_failures_total",
                "Webhook delivery attempts that failed (retried with backoff).",
                stats.webhook_failures,
            ),
            (
                "hoplink_webhook_dropped_total",
                "Webhook deliveries dropped: the queue was full.",
                stats.webhook_drops,
            ),
        ];
        let backend = self.backend.iter().map(|c| (c.name, c.help, (c.read)()));
        for (name, help, value) in counters.into_iter().chain(backend) {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP hoplink_connections_open Open client connections.\n# TYPE hoplink_connections_open gauge\nhoplink_connections_open {}",
            r(&self.connections_open)
        );
        let _ = writeln!(
            out,
            "# HELP hoplink_connections_refused_total Connections refused: every connection taken (server_full) or the address's share taken (client_share).\n# TYPE hoplink_connections_refused_total counter"
        );
        for (reason, counter) in [
            (crate::conn::Refusal::Full, &self.connections_refused_full),
            (
                crate::conn::Refusal::ClientShare,
                &self.connections_refused_share,
            ),
        ] {
            let _ = writeln!(
                out,
                "hoplink_connections_refused_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                r(counter)
            );
        }
        let buffered = stats.clicks_buffered.saturating_sub(stats.clicks_published);
        let _ = writeln!(
            out,
            "# HELP hoplink_click_events_pending Clicks buffered and not yet published.\n# TYPE hoplink_click_events_pending gauge\nhoplink_click_events_pending {buffered}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.record(Some(routes::REDIRECT), 302);
        m.record(Some(routes::REDIRECT), 302);
        m.record(None, 418);
        m.observe_redirect(Duration::from_micros(80));
        let text = m.render(&StatsSnapshot::default());
        assert!(
            text.contains("hoplink_http_requests_total{route=\"/{short_code}\",status=\"302\"} 2")
        );
        assert!(text.contains("route=\"other\",status=\"other\"} 1"));
        assert!(text.contains("hoplink_redirect_duration_seconds_bucket{le=\"0.0001\"} 1"));
        assert!(text.contains("hoplink_redirect_duration_seconds_count 1"));
    }
}
