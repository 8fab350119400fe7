//! Memory footprint of the in-memory store: creates 1,000,000 links and prints the
//! resident memory they cost, per link; then the same for 100,000 entries of the L1 cache.
//!
//! `cargo run --release -p hoplink-benches --example footprint`

use hoplink::{NewLink, RateLimits, Shortener, Visit};
use std::time::Instant;

fn resident_bytes() -> u64 {
    // Linux: the second field of /proc/self/statm is resident pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> hoplink::Result<()> {
    const LINKS: u64 = 1_000_000;
    const CACHED: usize = 100_000;
    let shortener = Shortener::builder()
        .rate_limits(RateLimits::off())
        .l1_capacity(CACHED as u64)
        .build()?;
    let before = resident_bytes();
    let started = Instant::now();
    let mut codes = Vec::with_capacity(CACHED);
    for i in 0..LINKS {
        let url = format!("https://example.com/articles/{i:07}/a-typical-slug-of-a-page");
        let link = shortener.shorten(NewLink::new(url), None).await?;
        if codes.len() < CACHED {
            codes.push(link.short_code);
        }
        if (i + 1) % 250_000 == 0 {
            eprintln!("{} links created", i + 1);
        }
    }
    let after_store = resident_bytes();
    println!(
        "store: {LINKS} links (URLs of 64 bytes) in {:.1?}: {:.0} bytes per link resident",
        started.elapsed(),
        (after_store - before) as f64 / LINKS as f64
    );
    let head = Visit::default();
    for code in &codes {
        shortener.resolve(code, &head).await?;
    }
    let after_l1 = resident_bytes();
    println!(
        "l1 cache: {CACHED} entries: {:.0} bytes per cached link resident",
        (after_l1 - after_store) as f64 / CACHED as f64
    );
    shortener.shutdown().await;
    Ok(())
}
