//! PostgreSQL figures: click ingest in batches of 500 (`BATCH=n`) over 10,000 links
//! (`LINKS=n`), with the CPU PostgreSQL's processes spent per click, and resolve from the
//! store (the cold path) latency. Works in a fresh schema of `TEST_DATABASE_URL`, dropped
//! at the end.
//!
//! `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release -p hoplink-benches --example postgres`
//! `BATCH=5000 LINKS=100000 ZIPF=1 cargo run --release -p hoplink-benches --example postgres`
//!
//! `END_TO_END=1`: the ingest goes the whole way instead, from click events published on
//! the (in-process) event bus, through the service's analytics worker (classification,
//! batches of `BATCH`), to the click rows and rollups committed; timed until the
//! service has counted every click recorded.

use hoplink::records::ClassifiedClick;
use hoplink::{AnalyticsStore, EventBus, LinkStore, NewLink, Shortener};
use hoplink_benches::{percentile, sample_click};
use hoplink_postgres::{PgSettings, PgStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many links the clicks go to (`LINKS=n`, default 10,000).
fn links() -> usize {
    static LINKS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LINKS.get_or_init(|| {
        std::env::var("LINKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    })
}

/// CPU time (user + system, in clock ticks) of every process named `name`, from /proc.
fn cpu_ticks_of(name: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| {
            let (comm, rest) = stat.split_once(") ")?;
            if !comm.ends_with(&format!("({name}")) {
                return None;
            }
            let fields: Vec<&str> = rest.split(' ').collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}
/// CPU time (user + system, in clock ticks) of this process: the store's side of ingest
/// (building statements, folding, decoding answers).
fn own_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.split_once(") ")?;
            let fields: Vec<&str> = rest.split(' ').collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

const LOOKUPS: usize = 20_000;

/// Which link the `n`th click goes to. By default the links take the clicks in turn;
/// `HOT_LINKS=k` (env) limits that to the first k; `ZIPF=1` draws the link from a Zipf
/// distribution (exponent 1: the k-th most popular link gets 1/k of the first's clicks),
/// the shape real click traffic has.
fn spread(n: usize) -> usize {
    static HOW: std::sync::OnceLock<Spread> = std::sync::OnceLock::new();
    match HOW.get_or_init(|| {
        if std::env::var_os("ZIPF").is_some() {
            let weights: Vec<f64> = (1..=links()).map(|k| 1.0 / k as f64).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            Spread::Zipf(
                weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect(),
            )
        } else {
            let hot = std::env::var("HOT_LINKS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(links());
            Spread::Turns(hot.clamp(1, links()))
        }
    }) {
        Spread::Turns(hot) => n % hot,
        Spread::Zipf(cdf) => {
            let u = hoplink_benches::uniform(n as u64);
            cdf.partition_point(|&c| c < u).min(links() - 1)
        }
    }
}

enum Spread {
    Turns(usize),
    Zipf(Vec<f64>),
}

fn batch() -> usize {
    std::env::var("BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// The `n`th click as the redirect publishes it, before classification: the same
/// shape as [`sample_click`] (one visitor in 5,000, one bot in 20).
fn sample_event(link: &hoplink::Link, n: usize) -> hoplink::records::ClickEvent {
    let i = n % BATCH_CYCLE;
    hoplink::records::ClickEvent {
        id: uuid::Uuid::now_v7(),
        link_id: link.id,
        short_code: link.short_code.clone(),
        occurred_at: chrono::Utc::now(),
        visitor: format!("{:032x}", n % 5000).into(),
        user_agent: Some(
            if i.is_multiple_of(20) {
                "Googlebot/2.1 (+http://www.google.com/bot.html)"
            } else {
                [
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                ][i % 3]
            }
            .to_string(),
        ),
        referrer: (!i.is_multiple_of(3)).then(|| ["", "news.example.com", "t.co"][i % 3].to_string()),
        country: Some(["DE", "US", "FR"][i % 3].to_string()),
        counted_at_redirect: false,
    }
}

/// Dimensions cycle with the position in a batch of 500 (as before `sample_click`).
const BATCH_CYCLE: usize = 500;

/// Latencies of `count` link creations, one at a time, sorted.
async fn create_latencies(shortener: &Shortener, count: usize) -> hoplink::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        shortener
            .shorten(NewLink::new(format!("https://example.com/more/{i}")), None)
            .await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

#[tokio::main]
async fn main() -> hoplink::Result<()> {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "hoplink_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let store = Arc::new(
        PgStore::connect_with(
            &url,
            PgSettings {
                schema: Some(schema.clone()),
                ..PgSettings::default()
            },
        )
        .await?,
    );
    let bus = Arc::new(hoplink::memory::MemoryEventBus::new(1_000_000));
    let shortener = Shortener::builder()
        .store(store.clone())
        .id_allocator(store.clone())
        .event_bus(bus.clone())
        .analytics(hoplink::AnalyticsConfig {
            batch_size: batch(),
            flush_interval: Duration::from_millis(100),
            ..hoplink::AnalyticsConfig::default()
        })
        .build()?;
    let mut links = Vec::with_capacity(self::links());
    for i in 0..self::links() {
        links.push(
            shortener
                .shorten(NewLink::new(format!("https://example.com/{i}")), None)
                .await?,
        );
    }
    eprintln!("{} links created", links.len());

    #[allow(non_snake_case)]
    let (BATCH, BATCHES) = (batch(), 200_000 / batch());
    let postgres_before = cpu_ticks_of("postgres");
    let own_before = own_cpu_ticks();
    let started = Instant::now();
    if std::env::var_os("END_TO_END").is_some() {
        let total = (BATCH * BATCHES) as u64;
        let before = shortener.stats().clicks_recorded;
        for b in 0..BATCHES {
            let events: Vec<hoplink::records::ClickEvent> = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    sample_event(&links[spread(n)], n)
                })
                .collect();
            bus.publish(&events).await?;
        }
        while shortener.stats().clicks_recorded - before < total {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for b in 0..BATCHES {
        if std::env::var_os("END_TO_END").is_some() {
            break;
        }
        let clicks: Vec<ClassifiedClick> = (0..BATCH)
            .map(|i| {
                sample_click(
                    links[spread(b * BATCH + i)].id,
                    chrono::Utc::now(),
                    b * BATCH + i,
                )
            })
            .collect();
        let t = Instant::now();
        store.record(&clicks).await?;
        if std::env::var_os("VERBOSE").is_some() && (b < 8 || b % 50 == 0) {
            eprintln!("batch {b}: {:?}", t.elapsed());
        }
    }
    let took = started.elapsed();
    let postgres_ticks = cpu_ticks_of("postgres").saturating_sub(postgres_before);
    let own_ticks = own_cpu_ticks().saturating_sub(own_before);
    println!(
        "ingest{}: {} events in batches of {BATCH} over {} links: {:.0} events/s ({:.1} ms per batch); PostgreSQL CPU {:.1} us per event, hoplink CPU {:.1} us per event (clicks generated included)",
        if std::env::var_os("END_TO_END").is_some() {
            " end to end (published, through the analytics worker, committed)"
        } else {
            ""
        },
        BATCH * BATCHES,
        links.len(),
        (BATCH * BATCHES) as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / BATCHES as f64,
        // Clock ticks are 1/100 s on Linux.
        postgres_ticks as f64 * 10_000.0 / (BATCH * BATCHES) as f64,
        own_ticks as f64 * 10_000.0 / (BATCH * BATCHES) as f64
    );

    let mut latencies = Vec::with_capacity(LOOKUPS);
    for i in 0..LOOKUPS {
        let code = &links[(i * 7919) % links.len()].short_code;
        let t = Instant::now();
        let found = store.get_by_code(None, code).await?;
        latencies.push(t.elapsed());
        assert!(found.is_some());
    }
    latencies.sort();
    println!(
        "resolve from the store (get_by_code, 1 connection at a time): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    // Link creations while the ingest runs flat out: the ingest has its own pool, so
    // they wait for PostgreSQL's CPU, never for a connection.
    let quiet = create_latencies(&shortener, 1_000).await?;
    let ingesting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ingest = tokio::spawn({
        let ids: Vec<uuid::Uuid> = links.iter().map(|l| l.id).collect();
        let (store, ingesting) = (store.clone(), ingesting.clone());
        async move {
            let mut n = 0usize;
            while ingesting.load(std::sync::atomic::Ordering::Relaxed) {
                let clicks: Vec<ClassifiedClick> = (0..500)
                    .map(|i| sample_click(ids[spread(n + i)], chrono::Utc::now(), n + i))
                    .collect();
                store.record(&clicks).await?;
                n += 500;
            }
            hoplink::Result::Ok(n)
        }
    });
    let busy = create_latencies(&shortener, 1_000).await?;
    ingesting.store(false, std::sync::atomic::Ordering::Relaxed);
    let ingested = ingest
        .await
        .map_err(|e| hoplink::Error::backend("bench", e))??;
    for (label, l) in [("quiet", quiet), ("during ingest", busy)] {
        println!(
            "create a link, {label}: p50 {:?}, p99 {:?}, max {:?}",
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l[l.len() - 1]
        );
    }
    eprintln!("{ingested} clicks ingested meanwhile");

    shortener.shutdown().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .map_err(|e| hoplink::Error::backend("postgres", e))?;
    Ok(())
}
