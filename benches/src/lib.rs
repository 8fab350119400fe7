//! Helpers shared by the benchmarks in `benches/` and `examples/`.

use hoplink::records::ClickEvent;
use std::time::Duration;

/// The value at fraction `p` (0.0–1.0) of latencies sorted in ascending order.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The `n`th click event of an event-bus run: 1,000 codes, 5,000 visitors, one browser.
pub fn bus_event(n: usize) -> ClickEvent {
    ClickEvent {
        id: uuid::Uuid::now_v7(),
        link_id: uuid::Uuid::now_v7(),
        short_code: format!("c{}", n % 1000),
        occurred_at: chrono::Utc::now(),
        visitor: format!("{:032x}", n % 5000),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0".into(),
        ),
        referrer: Some("https://news.example.com/".into()),
        country: None,
        counted_at_redirect: false,
    }
}
