//! The redirect's hot path under a counting allocator: handing a click to the analytics
//! pipeline allocates nothing on the heap (the click's bytes go into its thread's buffer).
//! A test binary of its own, because the allocator counts the whole process.

use hoplink::{NewLink, RateLimits, Shortener, Visit};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const ROUNDS: usize = 3_200;

#[test]
fn a_click_costs_the_redirect_no_heap_allocation() {
    // One thread: the forwarder only runs when the test yields, so nothing but the
    // redirect itself allocates while the allocator counts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let shortener = Shortener::builder()
            .rate_limits(RateLimits::off())
            .build()
            .unwrap();
        let link = shortener
            .shorten(NewLink::new("https://example.com/landing"), None)
            .await
            .unwrap();
        let click = Visit {
            client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
            user_agent: Some(UA),
            referrer: Some("https://news.example.com/some/article?id=7"),
            country: Some("DE"),
            count: true,
            ..Visit::default()
        };
        let head = Visit {
            count: false,
            ..click
        };
        let allocations = |visit: Visit<'static>| {
            let shortener = shortener.clone();
            let code = link.short_code.clone();
            async move {
                // Warm: the link into the cache, the buffer's first blocks allocated.
                for _ in 0..64 {
                    shortener.resolve(&code, &visit).await.unwrap();
                }
                tokio::task::yield_now().await;
                let region = Region::new(GLOBAL);
                for _ in 0..ROUNDS {
                    shortener.resolve(&code, &visit).await.unwrap();
                }
                let n = region.change().allocations;
                tokio::task::yield_now().await; // the forwarder drains the buffer
                n
            }
        };
        let without_clicks = allocations(head).await;
        let with_clicks = allocations(click).await;
        // The buffer is a byte vector per thread that doubles as it fills and is reused
        // once drained: a few allocations for all the rounds, nothing per click.
        assert!(
            with_clicks <= without_clicks + ROUNDS / 32,
            "{ROUNDS} redirects: {without_clicks} allocations without clicks, {with_clicks} with"
        );
        assert!(shortener.stats().clicks_buffered >= ROUNDS as u64);
    });
}
