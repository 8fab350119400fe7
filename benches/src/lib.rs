//! Helpers shared by the benchmarks in `benches/` and `examples/`.

use hoplink::records::{ClassifiedClick, ClickEvent};
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
        visitor: format!("{:032x}", n % 5000).into(),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0".into(),
        ),
        referrer: Some("https://news.example.com/".into()),
        country: None,
        counted_at_redirect: false,
    }
}

/// The `n`th classified click of an ingest run on `link_id`: one visitor in 5,000, one
/// bot in 20, the dimensions' values in turn with the position in a cycle of 500.
pub fn sample_click(
    link_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    n: usize,
) -> ClassifiedClick {
    let i = n % 500;
    ClassifiedClick {
        event_id: uuid::Uuid::now_v7(),
        link_id,
        day: at.date_naive(),
        visitor: format!("{:032x}", n % 5000).into(),
        is_bot: i.is_multiple_of(20),
        referrer: ["direct", "news.example.com", "t.co"][i % 3].into(),
        browser: ["Chrome", "Firefox", "Safari"][i % 3].into(),
        os: ["Windows 10", "Mac OSX", "Linux"][i % 3].into(),
        device: ["desktop", "mobile"][i % 2].into(),
        country: ["DE", "US", "unknown"][i % 3].into(),
        counted_at_redirect: false,
        at,
    }
}

/// A fixed uniform draw in [0, 1] for the `n`th event (splitmix64 of `n`): the same run
/// every time, without a random number generator.
pub fn uniform(n: u64) -> f64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}
