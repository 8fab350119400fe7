//! Criterion benchmarks of the core's hot paths: `cargo bench -p hoplink-benches`.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use hoplink::code::CodeGenerator;
use hoplink::{NewLink, RateLimits, Shortener, Visit};
use std::future::Future;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// Runs a future that completes without waiting (an in-memory path) by polling it once,
/// so that the figure is the path's own cost and not an executor's.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the measured path waited; it must complete in one poll"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn resolve(c: &mut Criterion) {
    let rt = runtime();
    let visit = Visit {
        host: None,
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        user_agent: Some(UA),
        referrer: Some("https://news.example.com/"),
        country: None,
        count: true,
        ..Visit::default()
    };
    let head = Visit {
        count: false,
        ..Visit::default()
    };

    let s = rt
        .block_on(async {
            Shortener::builder()
                .rate_limits(RateLimits::off())
                .admin_emails(["admin@example.com"])
                .build()
        })
        .expect("build");
    let link = rt
        .block_on(s.shorten(NewLink::new("https://example.com/landing"), None))
        .expect("shorten");
    let code = link.short_code.clone();
    rt.block_on(s.resolve(&code, &head)).expect("warm");
    let mut group = c.benchmark_group("resolve");
    group.bench_function("l1_hit_head", |b| {
        b.iter(|| ready(s.resolve(black_box(&code), &head)).expect("hit"))
    });
    group.bench_function("l1_hit_click", |b| {
        b.iter(|| ready(s.resolve(black_box(&code), &visit)).expect("hit"))
    });
    // Picking the domain from `Host`: the default host (compared, nothing looked up), and
    // a host that is no domain (looked up in the table of domains, on the stack).
    for (name, host) in [
        ("l1_hit_head_default_host", "localhost:8080"),
        ("l1_hit_head_other_host", "127.0.0.1:8080"),
    ] {
        let on_host = Visit {
            host: Some(host),
            ..head
        };
        group.bench_function(name, |b| {
            b.iter(|| ready(s.resolve(black_box(&code), &on_host)).expect("hit"))
        });
    }
    // A link on a short domain of its own.
    let admin = rt.block_on(async {
        let user = s.register("admin@example.com", "password123", None).await?;
        Ok::<_, hoplink::Error>(hoplink::Principal { user_id: user.id })
    });
    let admin = admin.expect("admin");
    rt.block_on(s.add_domain(&admin, "go.example.com", hoplink::DomainPatch::default()))
        .expect("domain");
    let on_domain = rt
        .block_on(s.shorten(
            NewLink {
                domain: Some("go.example.com".into()),
                ..NewLink::new("https://example.com/elsewhere")
            },
            None,
        ))
        .expect("shorten");
    let domain_visit = Visit {
        host: Some("go.example.com"),
        ..head
    };
    rt.block_on(s.resolve(&on_domain.short_code, &domain_visit))
        .expect("warm");
    group.bench_function("l1_hit_head_on_a_domain", |b| {
        b.iter(|| ready(s.resolve(black_box(&on_domain.short_code), &domain_visit)).expect("hit"))
    });

    // A one-entry L1 and 50,000 codes taken in turn: every lookup misses to the store.
    let cold = rt
        .block_on(async { Shortener::builder().l1_capacity(1).build() })
        .expect("build");
    let codes: Vec<String> = rt.block_on(async {
        let mut codes = Vec::new();
        for i in 0..50_000 {
            let link = cold
                .shorten(NewLink::new(format!("https://example.com/{i}")), None)
                .await
                .expect("shorten");
            codes.push(link.short_code);
        }
        codes
    });
    let mut next = 0;
    group.bench_function("miss_to_memory_store", |b| {
        b.iter(|| {
            next = (next + 1) % codes.len();
            ready(cold.resolve(&codes[next], &head)).expect("found")
        })
    });
    group.finish();
    rt.block_on(s.shutdown());
    rt.block_on(cold.shutdown());
}

/// The MaxMind test database the core's tests use.
fn geoip() -> hoplink::GeoIp {
    hoplink::GeoIp::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/core/tests/data/geoip/GeoLite2-City-Test.mmdb"
    ))
    .expect("test database")
}

/// Redirect rules on the redirect path: the worst case of 20 rules of 10 conditions
/// (every condition type) where each rule fails only at its last condition, so all 200
/// are evaluated and the link's own URL is the answer.
fn smart(c: &mut Criterion) {
    use hoplink::rules::{ConditionType as T, RedirectRule, RuleCondition as C};
    let rt = runtime();
    let s = rt
        .block_on(async {
            Shortener::builder()
                .rate_limits(RateLimits::off())
                .geoip(geoip())
                .build()
        })
        .expect("build");
    let rule = |i: usize| RedirectRule {
        url: format!("https://example.com/rule/{i}"),
        conditions: vec![
            C::new(T::Device, "desktop"),
            C::new(T::Browser, "chrome"),
            C::new(T::Os, "windows"),
            C::new(T::Language, "de"),
            C::new(T::Country, "GB"),
            C {
                key: Some("utm_source".into()),
                ..C::new(T::Query, "*")
            },
            C::new(T::Ip, "81.2.69.0/24"),
            C::new(T::After, "2020-01-01T00:00:00Z"),
            C::new(T::Before, "2100-01-01T00:00:00Z"),
            C::new(T::Language, "fr"),
        ],
    };
    let link = rt
        .block_on(s.shorten(
            NewLink {
                redirect_rules: Some((0..20).map(rule).collect()),
                ..NewLink::new("https://example.com/fallback")
            },
            None,
        ))
        .expect("shorten");
    let visit = Visit {
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(81, 2, 69, 160))),
        user_agent: Some(UA),
        accept_language: Some("de-AT,de;q=0.9,en;q=0.5"),
        query: Some("utm_source=newsletter&utm_medium=email"),
        count: false,
        ..Visit::default()
    };
    let code = link.short_code.clone();
    let warm = rt.block_on(s.resolve(&code, &visit)).expect("warm");
    assert_eq!(warm.location(), "https://example.com/fallback");
    let mut group = c.benchmark_group("resolve");
    group.bench_function("l1_hit_head_20_rules_of_10_conditions", |b| {
        b.iter(|| ready(s.resolve(black_box(&code), &visit)).expect("hit"))
    });
    group.finish();

    let geo = geoip();
    let known = IpAddr::V4(Ipv4Addr::new(81, 2, 69, 160));
    c.bench_function("geoip/country_remembered", |b| {
        b.iter(|| geo.country(black_box(known)))
    });
    // More addresses than the cache holds, each new: every lookup walks the database.
    let mut n = 0u32;
    c.bench_function("geoip/country_looked_up", |b| {
        b.iter(|| {
            n = n.wrapping_add(7919);
            geo.country(black_box(IpAddr::V4(Ipv4Addr::from(
                0x5100_0000 | (n & 0x00ff_ffff),
            ))))
        })
    });
    rt.block_on(s.shutdown());
}

fn codes(c: &mut Criterion) {
    let generator = CodeGenerator::new(42);
    let mut id = 1_000_000u64;
    c.bench_function("code/encode", |b| {
        b.iter(|| {
            id += 1;
            generator.encode(black_box(id))
        })
    });
    let code = generator.encode(123_456_789);
    c.bench_function("code/decode", |b| {
        b.iter(|| generator.decode(black_box(&code)))
    });
}

fn shorten(c: &mut Criterion) {
    let rt = runtime();
    let s = rt
        .block_on(async { Shortener::builder().build() })
        .expect("build");
    c.bench_function("shorten/generated_code", |b| {
        b.iter(|| {
            ready(s.shorten(NewLink::new("https://example.com/some/long/path?q=1"), None))
                .expect("shorten")
        })
    });
    rt.block_on(s.shutdown());
}

/// The analytics fold of one batch of 5,000 new clicks over 100,000 links, Zipf-shaped
/// as in the PostgreSQL bench (a few hot links, a long tail of single clicks).
fn fold(c: &mut Criterion) {
    use hoplink::records::{ClassifiedClick, ClickFold};
    const LINKS: u64 = 100_000;
    let links: Vec<uuid::Uuid> = (0..LINKS)
        .map(|i| uuid::Uuid::from_u64_pair(7, i))
        .collect();
    let now = chrono::Utc::now();
    let batch: Vec<ClassifiedClick> = (0..5_000u64)
        .map(|n| {
            // The inverse of the Zipf CDF (exponent 1), approximately.
            let u = hoplink_benches::uniform(n);
            let link = ((LINKS as f64).powf(u) as u64).clamp(1, LINKS) - 1;
            hoplink_benches::sample_click(links[link as usize], now, n as usize)
        })
        .collect();
    let folded = ClickFold::of(&batch);
    eprintln!(
        "fold of 5,000 clicks: {} day rows, {} combination rows, {} visitors, {} links",
        folded.days.len(),
        folded.combinations.len(),
        folded.visitors.len(),
        folded.counts.len()
    );
    c.bench_function("analytics/fold_5000_clicks_zipf", |b| {
        b.iter(|| ClickFold::of(black_box(&batch)))
    });
}

criterion_group!(benches, resolve, smart, codes, shorten, fold);
criterion_main!(benches);
