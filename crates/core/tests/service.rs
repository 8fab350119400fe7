//! The `Shortener` service end to end on the in-memory backends.

use chrono::{Duration as ChronoDuration, Utc};
use hoplink::memory::{MemoryCache, MemoryEventBus, MemoryStore};
use hoplink::{
    AnalyticsConfig, DomainPatch, Error, GoneReason, LimitScope, LinkPatch, LinkSort, ListOptions,
    ManualClock, NewLink, Principal, QrContent, QrFormat, Quota, RateLimits, RedirectType,
    ReportReason, ReportStatus, Shortener, Visit,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

fn fast_analytics() -> AnalyticsConfig {
    AnalyticsConfig {
        batch_size: 100,
        flush_interval: Duration::from_millis(20),
        ..AnalyticsConfig::default()
    }
}

fn shortener() -> Shortener {
    Shortener::builder()
        .base_url("https://sho.rt")
        .analytics(fast_analytics())
        .build()
        .unwrap()
}

fn click<'a>(ua: &'a str, ip: &str) -> Visit<'a> {
    Visit {
        host: None,
        client_ip: Some(ip.parse::<IpAddr>().unwrap()),
        user_agent: Some(ua),
        referrer: Some("https://news.example.com/item"),
        country: Some("de"),
        count: true,
        ..Visit::default()
    }
}

fn head() -> Visit<'static> {
    Visit {
        count: false,
        ..Visit::default()
    }
}

async fn user(s: &Shortener, email: &str) -> Principal {
    let user = s
        .register(email, "password123", Some("Test"))
        .await
        .unwrap();
    Principal { user_id: user.id }
}

#[tokio::test]
async fn shorten_and_resolve() {
    let s = shortener();
    let link = s
        .shorten(NewLink::new("https://example.com/a"), None)
        .await
        .unwrap();
    assert_eq!(link.short_code.len(), 7);
    assert_eq!(
        s.short_url(None, &link.short_code),
        format!("https://sho.rt/{}", link.short_code)
    );
    assert_eq!(link.redirect_type, RedirectType::Found);
    assert!(link.is_active && link.owner_id.is_none());
    let r = s
        .resolve(&link.short_code, &click(CHROME, "8.8.8.8"))
        .await
        .unwrap();
    assert_eq!(r.location(), "https://example.com/a");
    assert_eq!(r.redirect_type().status(), 302);
    let second = s
        .shorten(NewLink::new("https://example.com/a"), None)
        .await
        .unwrap();
    assert_ne!(
        second.short_code, link.short_code,
        "every shorten makes a new code"
    );
    assert!(matches!(
        s.resolve("nope123", &head()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.resolve("bad code!", &head()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.resolve("", &head()).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn generated_codes_are_unique_and_unordered() {
    let s = shortener();
    let mut codes = std::collections::HashSet::new();
    let mut previous = String::new();
    let mut adjacent_sorted = 0;
    for i in 0..2500 {
        let link = s
            .shorten(NewLink::new(format!("https://example.com/{i}")), None)
            .await
            .unwrap();
        if link.short_code > previous {
            adjacent_sorted += 1;
        }
        previous = link.short_code.clone();
        assert!(codes.insert(link.short_code));
    }
    assert!(
        adjacent_sorted < 1500,
        "codes must not follow creation order ({adjacent_sorted} of 2500 ascending)"
    );
}

#[tokio::test]
async fn custom_alias_rules() {
    let s = shortener();
    let mut req = NewLink::new("https://example.com/");
    req.custom_alias = Some("my-launch".into());
    let link = s.shorten(req.clone(), None).await.unwrap();
    assert_eq!(link.short_code, "my-launch");
    match s.shorten(req, None).await {
        Err(Error::Conflict {
            code: "alias_taken",
            ..
        }) => {}
        other => panic!("expected alias_taken, got {other:?}"),
    }
    let with_routes = Shortener::builder()
        .reserved_aliases(["api", "docs"])
        .build()
        .unwrap();
    for (s, alias, code) in [
        (&s, "ab", "invalid_alias"),
        (&s, "Admin", "reserved_alias"),
        (&with_routes, "api", "reserved_alias"),
        (&with_routes, "Docs", "reserved_alias"),
        (&s, "bad/alias", "invalid_alias"),
    ] {
        let mut req = NewLink::new("https://example.com/");
        req.custom_alias = Some(alias.into());
        match s.shorten(req, None).await {
            Err(Error::Invalid { field, code: c, .. }) => {
                assert_eq!(field, "custom_alias");
                assert_eq!(c, code, "{alias}");
            }
            other => panic!("{alias}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_shortens_of_one_alias_have_one_winner() {
    let s = shortener();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut req = NewLink::new(format!("https://example.com/{i}"));
                req.custom_alias = Some("contested".into());
                s.shorten(req, None).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(link) => winners.push(link),
            Err(Error::Conflict {
                code: "alias_taken",
                ..
            }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let r = s.resolve("contested", &head()).await.unwrap();
    assert_eq!(r.location(), winners[0].original_url);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let s = shortener();
    let cases: Vec<(NewLink, &str)> = vec![
        (NewLink::new("javascript:alert(1)"), "original_url"),
        (NewLink::new("http://169.254.169.254/"), "original_url"),
        (NewLink::new("https://sho.rt/loop"), "original_url"),
        (
            NewLink {
                max_clicks: Some(0),
                ..NewLink::new("https://example.com")
            },
            "max_clicks",
        ),
        (
            NewLink {
                expires_at: Some(Utc::now() - ChronoDuration::seconds(1)),
                ..NewLink::new("https://example.com")
            },
            "expires_at",
        ),
        (
            NewLink {
                title: Some("t".repeat(300)),
                ..NewLink::new("https://example.com")
            },
            "title",
        ),
        (
            NewLink {
                tags: Some(vec![String::new()]),
                ..NewLink::new("https://example.com")
            },
            "tags",
        ),
    ];
    for (req, field) in cases {
        match s.shorten(req, None).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn redirect_types() {
    let s = shortener();
    for status in [301u16, 302, 307, 308] {
        let req = NewLink {
            redirect_type: Some(RedirectType::try_from(status).unwrap()),
            ..NewLink::new("https://example.com/")
        };
        let link = s.shorten(req, None).await.unwrap();
        let r = s.resolve(&link.short_code, &head()).await.unwrap();
        assert_eq!(r.redirect_type().status(), status);
    }
    assert!(RedirectType::try_from(303).is_err());
}

#[tokio::test]
async fn edits_and_deletes_are_seen_by_the_next_redirect() {
    let s = shortener();
    let me = user(&s, "edit@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/old"), Some(&me))
        .await
        .unwrap();
    // Warm the cache.
    assert_eq!(
        s.resolve(&link.short_code, &head())
            .await
            .unwrap()
            .location(),
        "https://example.com/old"
    );
    let patch = LinkPatch {
        original_url: Some("https://example.com/new".into()),
        redirect_type: Some(RedirectType::MovedPermanently),
        ..LinkPatch::default()
    };
    let updated = s.update_link(&me, link.id, patch).await.unwrap();
    assert!(updated.updated_at >= link.updated_at);
    let r = s.resolve(&link.short_code, &head()).await.unwrap();
    assert_eq!(
        (r.location(), r.redirect_type().status()),
        ("https://example.com/new", 301)
    );

    s.update_link(
        &me,
        link.id,
        LinkPatch {
            is_active: Some(false),
            ..LinkPatch::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        s.resolve(&link.short_code, &head()).await,
        Err(Error::Gone {
            reason: GoneReason::Disabled
        })
    ));
    s.update_link(
        &me,
        link.id,
        LinkPatch {
            is_active: Some(true),
            ..LinkPatch::default()
        },
    )
    .await
    .unwrap();
    assert!(s.resolve(&link.short_code, &head()).await.is_ok());

    s.delete_link(&me, link.id).await.unwrap();
    assert!(matches!(
        s.resolve(&link.short_code, &head()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.get_link(&me, link.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_link(&me, link.id).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn unknown_codes_are_negatively_cached_until_created() {
    let s = shortener();
    assert!(matches!(
        s.resolve("soon-here", &head()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.resolve("soon-here", &head()).await,
        Err(Error::NotFound { .. })
    ));
    let misses = s.stats().cache_misses;
    assert_eq!(
        misses, 1,
        "the second lookup is answered by the negative entry"
    );
    let req = NewLink {
        custom_alias: Some("soon-here".into()),
        ..NewLink::new("https://example.com/")
    };
    s.shorten(req, None).await.unwrap();
    assert!(
        s.resolve("soon-here", &head()).await.is_ok(),
        "creation clears the negative entry"
    );
}

#[tokio::test]
async fn ownership_is_enforced_and_hidden() {
    let s = shortener();
    let alice = user(&s, "alice@example.com").await;
    let bob = user(&s, "bob@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/"), Some(&alice))
        .await
        .unwrap();
    assert!(matches!(
        s.get_link(&bob, link.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.update_link(
            &bob,
            link.id,
            LinkPatch {
                is_active: Some(false),
                ..Default::default()
            }
        )
        .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_link(&bob, link.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.analytics_summary(&bob, None, &link.short_code, 30).await,
        Err(Error::NotFound { .. })
    ));
    let anonymous = s
        .shorten(NewLink::new("https://example.com/"), None)
        .await
        .unwrap();
    assert!(
        matches!(
            s.get_link(&alice, anonymous.id).await,
            Err(Error::NotFound { .. })
        ),
        "nobody owns anonymous links"
    );
    assert_eq!(s.get_link(&alice, link.id).await.unwrap(), link);
}

#[tokio::test]
async fn expiry_with_an_injected_clock() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let s = Shortener::builder().clock(clock.clone()).build().unwrap();
    let req = NewLink {
        expires_at: Some(clock_now(&clock) + ChronoDuration::minutes(10)),
        ..NewLink::new("https://example.com/")
    };
    let link = s.shorten(req, None).await.unwrap();
    assert!(s.resolve(&link.short_code, &head()).await.is_ok());
    clock.advance(Duration::from_secs(601));
    assert!(
        matches!(
            s.resolve(&link.short_code, &head()).await,
            Err(Error::Gone {
                reason: GoneReason::Expired
            })
        ),
        "expiry applies to cached links too"
    );
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<Utc> {
    use hoplink::Clock;
    clock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_clicks_is_exact_under_concurrency_and_ignores_bots_and_head() {
    let s = shortener();
    let req = NewLink {
        max_clicks: Some(25),
        ..NewLink::new("https://example.com/")
    };
    let link = s.shorten(req, None).await.unwrap();
    for _ in 0..5 {
        assert!(
            s.resolve(&link.short_code, &click(SLACK, "1.1.1.1"))
                .await
                .is_ok(),
            "bots are redirected"
        );
        assert!(
            s.resolve(&link.short_code, &head()).await.is_ok(),
            "HEAD is answered"
        );
    }
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let s = s.clone();
            let code = link.short_code.clone();
            tokio::spawn(async move { s.resolve(&code, &click(CHROME, "9.9.9.9")).await })
        })
        .collect();
    let (mut ok, mut gone) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Gone {
                reason: GoneReason::ClickLimitReached,
            }) => gone += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, gone), (25, 75), "exactly max_clicks human redirects");
    assert!(
        matches!(
            s.resolve(&link.short_code, &head()).await,
            Err(Error::Gone { .. })
        ),
        "HEAD sees the spent budget"
    );
    assert!(matches!(
        s.resolve(&link.short_code, &click(SLACK, "1.1.1.1")).await,
        Err(Error::Gone { .. })
    ));
    s.shutdown().await;
    let me = Principal {
        user_id: uuid::Uuid::nil(),
    };
    let _ = me;
    let stats = s.stats();
    assert_eq!(
        stats.clicks_recorded, 30,
        "25 humans + 5 bots recorded, HEAD never"
    );
}

#[tokio::test]
async fn analytics_summary_counts_humans_bots_and_uniques() {
    let s = shortener();
    let me = user(&s, "stats@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/"), Some(&me))
        .await
        .unwrap();
    for (ua, ip) in [
        (CHROME, "8.8.8.8"),
        (CHROME, "8.8.8.8"),
        (IPHONE, "8.8.4.4"),
        (CHROME, "1.2.3.4"),
        (SLACK, "3.3.3.3"),
    ] {
        s.resolve(&link.short_code, &click(ua, ip)).await.unwrap();
    }
    s.resolve(&link.short_code, &head()).await.unwrap();
    // Eventually consistent: poll, as a client would.
    let mut summary = s
        .analytics_summary(&me, None, &link.short_code, 7)
        .await
        .unwrap();
    for _ in 0..100 {
        if summary.total_clicks + summary.bot_clicks == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        summary = s
            .analytics_summary(&me, None, &link.short_code, 7)
            .await
            .unwrap();
    }
    assert_eq!(summary.total_clicks, 4);
    assert_eq!(summary.bot_clicks, 1);
    assert_eq!(summary.unique_visitors, 3);
    assert_eq!(summary.clicks_by_day.len(), 7, "every day of the window");
    assert_eq!(summary.clicks_by_day.last().unwrap().clicks, 4);
    assert_eq!(
        summary.clicks_by_day.last().unwrap().date,
        Utc::now().date_naive()
    );
    assert!(
        summary.clicks_by_day[..6].iter().all(|d| d.clicks == 0),
        "zero days included"
    );
    assert_eq!(summary.top_referrers[0].value, "news.example.com");
    assert_eq!(summary.browsers[0].value, "Chrome");
    assert_eq!(summary.browsers[0].count, 3);
    assert_eq!(
        summary.devices.iter().map(|d| d.count).sum::<u64>(),
        4,
        "bots stay out of breakdowns"
    );
    assert_eq!(summary.countries[0].value, "DE");
    assert_eq!(
        s.get_link(&me, link.id).await.unwrap().click_count,
        4,
        "click_count counts humans"
    );
    assert!(matches!(
        s.analytics_summary(&me, None, &link.short_code, 0).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.analytics_summary(&me, None, &link.short_code, 366).await,
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        s.analytics_summary(&me, None, &link.short_code, 365)
            .await
            .unwrap()
            .clicks_by_day
            .len(),
        365
    );
}

#[tokio::test]
async fn shutdown_drains_every_buffered_click() {
    let s = Shortener::builder()
        .analytics(AnalyticsConfig {
            batch_size: 500,
            flush_interval: Duration::from_secs(3600),
            ..AnalyticsConfig::default()
        })
        .build()
        .unwrap();
    let me = user(&s, "drain@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/"), Some(&me))
        .await
        .unwrap();
    for i in 0..1234 {
        let ip = format!("11.0.{}.{}", i / 250, i % 250);
        s.resolve(&link.short_code, &click(CHROME, &ip))
            .await
            .unwrap();
    }
    s.shutdown().await;
    s.shutdown().await;
    let summary = s
        .analytics_summary(&me, None, &link.short_code, 1)
        .await
        .unwrap();
    assert_eq!(
        summary.total_clicks, 1234,
        "nothing lost by a graceful shutdown"
    );
    assert_eq!(summary.unique_visitors, 1234);
    let stats = s.stats();
    assert_eq!(
        (
            stats.clicks_buffered,
            stats.clicks_published,
            stats.clicks_recorded,
            stats.clicks_dropped
        ),
        (1234, 1234, 1234, 0)
    );
    s.resolve(&link.short_code, &click(CHROME, "8.8.8.8"))
        .await
        .unwrap();
    assert_eq!(
        s.stats().clicks_dropped,
        1,
        "after shutdown, clicks are refused and counted"
    );
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_instead_of_waiting() {
    // A tiny bus that nobody drains: the buffer fills, redirects go on.
    let s = Shortener::builder()
        .event_bus(Arc::new(MemoryEventBus::new(1)))
        .analytics(AnalyticsConfig {
            buffer_capacity: 10,
            run_worker: false,
            ..fast_analytics()
        })
        .build()
        .unwrap();
    let link = s
        .shorten(NewLink::new("https://example.com/"), None)
        .await
        .unwrap();
    for _ in 0..200 {
        s.resolve(&link.short_code, &click(CHROME, "8.8.8.8"))
            .await
            .unwrap();
    }
    let stats = s.stats();
    assert!(stats.clicks_dropped > 0, "{stats:?}");
    assert_eq!(stats.clicks_buffered + stats.clicks_dropped, 200);
}

#[tokio::test]
async fn replayed_events_are_counted_once() {
    use hoplink::{EventBus, records::ClickEvent};
    let bus = Arc::new(MemoryEventBus::new(1000));
    let store = Arc::new(MemoryStore::new());
    let s = Shortener::builder()
        .store(store.clone())
        .event_bus(bus.clone())
        .analytics(fast_analytics())
        .build()
        .unwrap();
    let me = user(&s, "replay@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/"), Some(&me))
        .await
        .unwrap();
    let event = ClickEvent {
        id: uuid::Uuid::now_v7(),
        link_id: link.id,
        short_code: link.short_code.clone(),
        occurred_at: Utc::now(),
        visitor: "abc".into(),
        user_agent: Some(CHROME.into()),
        referrer: None,
        country: None,
        counted_at_redirect: false,
    };
    for _ in 0..3 {
        bus.publish(std::slice::from_ref(&event)).await.unwrap();
    }
    s.shutdown().await;
    let summary = s
        .analytics_summary(&me, None, &link.short_code, 1)
        .await
        .unwrap();
    assert_eq!(summary.total_clicks, 1);
    assert_eq!(s.stats().clicks_duplicate, 2);
    assert_eq!(s.get_link(&me, link.id).await.unwrap().click_count, 1);
}

#[tokio::test]
async fn two_instances_sharing_a_cache_never_serve_a_stale_link() {
    let cache = Arc::new(MemoryCache::new());
    hoplink::testing::two_instances(cache.clone(), cache).await;
}

#[tokio::test]
async fn listing_with_pagination_and_filters() {
    let s = shortener();
    let me = user(&s, "list@example.com").await;
    let other = user(&s, "other@example.com").await;
    for i in 0..45 {
        let req = NewLink {
            tags: Some(vec![if i % 3 == 0 {
                "three".into()
            } else {
                "misc".into()
            }]),
            title: Some(format!("Link number {i}")),
            ..NewLink::new(format!("https://example.com/{i}"))
        };
        s.shorten(req, Some(&me)).await.unwrap();
    }
    s.shorten(NewLink::new("https://example.com/x"), Some(&other))
        .await
        .unwrap();
    let first = s.list_links(&me, ListOptions::default()).await.unwrap();
    assert_eq!(first.items.len(), 20);
    assert_eq!(
        first.items[0].title.as_deref(),
        Some("Link number 44"),
        "newest first"
    );
    let mut all = first.items.clone();
    let first_cursor = first.next_cursor.unwrap();
    let mut cursor = Some(first_cursor.encode());
    while let Some(c) = cursor {
        let page = s
            .list_links(
                &me,
                ListOptions {
                    cursor: Some(c),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        all.extend(page.items);
        cursor = page.next_cursor.map(|c| c.encode());
    }
    assert_eq!(all.len(), 45);
    let tagged = s
        .list_links(
            &me,
            ListOptions {
                tag: Some("three".into()),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tagged.items.len(), 15);
    let searched = s
        .list_links(
            &me,
            ListOptions {
                query: Some("NUMBER 4".into()),
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(searched.items.len(), 6, "4 and 40..44");
    for bad in [0, 101] {
        assert!(matches!(
            s.list_links(
                &me,
                ListOptions {
                    limit: Some(bad),
                    ..Default::default()
                }
            )
            .await,
            Err(Error::Invalid { .. })
        ));
    }
    assert!(matches!(
        s.list_links(
            &me,
            ListOptions {
                cursor: Some("garbage!".into()),
                ..Default::default()
            }
        )
        .await,
        Err(Error::Invalid {
            code: "invalid_cursor",
            ..
        })
    ));
    // A cursor continues only the order it came from.
    let by_clicks = s
        .list_links(
            &me,
            ListOptions {
                sort: LinkSort::Clicks,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let clicks_cursor = by_clicks.next_cursor.unwrap().encode();
    let newest_cursor = first_cursor.encode();
    for (sort, cursor) in [
        (LinkSort::Newest, clicks_cursor),
        (LinkSort::Clicks, newest_cursor),
    ] {
        assert!(matches!(
            s.list_links(
                &me,
                ListOptions {
                    sort,
                    cursor: Some(cursor),
                    ..Default::default()
                }
            )
            .await,
            Err(Error::Invalid {
                code: "invalid_cursor",
                ..
            })
        ));
    }
}

#[tokio::test]
async fn bulk_create_reports_each_item() {
    let s = shortener();
    let me = user(&s, "bulk@example.com").await;
    let items = vec![
        NewLink::new("https://example.com/1"),
        NewLink::new("ftp://example.com/"),
        NewLink {
            custom_alias: Some("bulk-one".into()),
            ..NewLink::new("https://example.com/3")
        },
        NewLink {
            custom_alias: Some("bulk-one".into()),
            ..NewLink::new("https://example.com/4")
        },
    ];
    let results = s.shorten_many(items, Some(&me)).await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::Invalid { .. })));
    assert!(results[2].is_ok());
    assert!(matches!(results[3], Err(Error::Conflict { .. })));
    let too_many = vec![NewLink::new("https://example.com/"); 1001];
    assert!(matches!(
        s.shorten_many(too_many, Some(&me)).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn qr_codes() {
    let s = shortener();
    let link = s
        .shorten(NewLink::new("https://example.com/"), None)
        .await
        .unwrap();
    let png = s
        .qr_code(
            QrContent::Link {
                domain: None,
                short_code: link.short_code.clone(),
            },
            QrFormat::Png,
            256,
        )
        .await
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = s
        .qr_code(
            QrContent::Link {
                domain: None,
                short_code: link.short_code,
            },
            QrFormat::Svg,
            512,
        )
        .await
        .unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    assert!(matches!(
        s.qr_code(
            QrContent::Link {
                domain: None,
                short_code: "missing1".into()
            },
            QrFormat::Png,
            256
        )
        .await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        s.qr_code(
            QrContent::Url("https://example.com/any".into()),
            QrFormat::Png,
            64
        )
        .await
        .is_ok()
    );
    assert!(matches!(
        s.qr_code(QrContent::Url("javascript:1".into()), QrFormat::Png, 64)
            .await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.qr_code(
            QrContent::Url("https://example.com".into()),
            QrFormat::Png,
            10
        )
        .await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn accounts_tokens_and_reuse_detection() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let s = Shortener::builder()
        .rate_limits(RateLimits::off())
        .clock(clock.clone())
        .build()
        .unwrap();
    let user = s
        .register("Ada@Example.com", "password123", Some("Ada"))
        .await
        .unwrap();
    assert!(matches!(
        s.register("ada@example.com", "password123", None).await,
        Err(Error::Conflict {
            code: "email_taken",
            ..
        })
    ));
    assert!(matches!(
        s.register("not-an-email", "password123", None).await,
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.register("x@example.com", "short", None).await,
        Err(Error::Invalid {
            code: "weak_password",
            ..
        })
    ));

    let wrong = s
        .login("ada@example.com", "wrong-password")
        .await
        .unwrap_err();
    let unknown = s
        .login("nobody@example.com", "password123")
        .await
        .unwrap_err();
    assert_eq!(
        wrong.to_string(),
        unknown.to_string(),
        "one answer for both"
    );

    let pair = s.login("ADA@example.com", "password123").await.unwrap();
    assert_eq!(pair.token_type, "bearer");
    let me = s.authenticate_bearer(&pair.access_token).await.unwrap();
    assert_eq!(me.user_id, user.id);
    assert_eq!(s.user(&me).await.unwrap().email, "Ada@Example.com");
    assert!(s.authenticate_bearer("garbage").await.is_err());

    let second = s.refresh(&pair.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, pair.refresh_token);
    assert!(s.authenticate_bearer(&second.access_token).await.is_ok());
    // A second tab presenting the same token a moment later gets the same successor.
    clock.advance(Duration::from_secs(3));
    let twin = s.refresh(&pair.refresh_token).await.unwrap();
    assert_eq!(twin.refresh_token, second.refresh_token);
    assert!(s.authenticate_bearer(&twin.access_token).await.is_ok());
    // Presenting the dead token after the grace period: the whole login dies.
    clock.advance(Duration::from_secs(10));
    assert!(matches!(
        s.refresh(&pair.refresh_token).await,
        Err(Error::Unauthorized { .. })
    ));
    assert!(
        s.refresh(&second.refresh_token).await.is_err(),
        "the successor is revoked too"
    );
    assert!(
        s.authenticate_bearer(&second.access_token).await.is_err(),
        "and its access tokens"
    );

    let other_login = s.login("ada@example.com", "password123").await.unwrap();
    assert!(
        s.authenticate_bearer(&other_login.access_token)
            .await
            .is_ok(),
        "other logins live on"
    );
    s.logout(&other_login.refresh_token).await.unwrap();
    assert!(s.refresh(&other_login.refresh_token).await.is_err());
    assert!(
        s.authenticate_bearer(&other_login.access_token)
            .await
            .is_err()
    );
    s.logout("unknown").await.unwrap();
}

#[tokio::test]
async fn api_keys_work_until_revoked() {
    let s = shortener();
    let me = user(&s, "keys@example.com").await;
    let (key, secret) = s.create_api_key(&me, "ci").await.unwrap();
    assert_eq!(s.authenticate_api_key(&secret).await.unwrap(), me);
    let listed = s.list_api_keys(&me).await.unwrap();
    assert_eq!(listed, vec![key.clone()]);
    assert!(secret.starts_with(&key.prefix));
    let stranger = user(&s, "stranger@example.com").await;
    assert!(matches!(
        s.revoke_api_key(&stranger, key.id).await,
        Err(Error::NotFound { .. })
    ));
    s.revoke_api_key(&me, key.id).await.unwrap();
    assert!(s.authenticate_api_key(&secret).await.is_err());
    assert!(s.authenticate_api_key("hlk_forged").await.is_err());
    assert!(matches!(
        s.create_api_key(&me, "  ").await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn rate_limits_per_scope() {
    let s = Shortener::builder()
        .rate_limits(RateLimits {
            anonymous: Quota::new(3, Duration::from_secs(60)),
            login: None,
            ..RateLimits::default()
        })
        .build()
        .unwrap();
    for remaining in [2, 1, 0] {
        let d = s
            .check_rate_limit(LimitScope::Anonymous, "203.0.113.1")
            .await
            .unwrap()
            .unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, remaining);
    }
    let refused = s
        .check_rate_limit(LimitScope::Anonymous, "203.0.113.1")
        .await
        .unwrap()
        .unwrap();
    assert!(!refused.allowed && refused.retry_after.is_some());
    assert!(
        s.check_rate_limit(LimitScope::Anonymous, "203.0.113.2")
            .await
            .unwrap()
            .unwrap()
            .allowed
    );
    assert_eq!(
        s.check_rate_limit(LimitScope::Login, "x").await.unwrap(),
        None,
        "off"
    );
    let long_subject = "x".repeat(500);
    assert!(
        s.check_rate_limit(LimitScope::Redirect, &long_subject)
            .await
            .unwrap()
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn health_reports_every_component() {
    // With a shared cache and with none (the in-process cache then stands for it).
    for s in [
        Shortener::builder()
            .cache(Arc::new(MemoryCache::new()))
            .build()
            .unwrap(),
        Shortener::builder().build().unwrap(),
    ] {
        let report = s.health().await;
        assert!(report.is_healthy() && !report.is_degraded());
        let names: Vec<&str> = report.components.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["store", "cache", "bus", "rate_limiter", "id_allocator"]
        );
    }
}

#[test]
fn build_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(Shortener::builder().build().is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(matches!(
            Shortener::builder().base_url("ftp://x").build(),
            Err(Error::Invalid { .. })
        ));
    });
}

#[tokio::test]
async fn deleted_codes_stay_taken_and_codes_differ_by_more_than_case() {
    let s = shortener();
    let me = user(&s, "codes@example.com").await;
    let alias = |a: &str| NewLink {
        custom_alias: Some(a.into()),
        ..NewLink::new("https://example.com/first")
    };
    let link = s.shorten(alias("CaseTest"), Some(&me)).await.unwrap();
    let generated = s
        .shorten(NewLink::new("https://example.com/g"), Some(&me))
        .await
        .unwrap();
    for taken in ["CaseTest", "casetest", "CASETEST"] {
        assert!(
            matches!(
                s.shorten(alias(taken), None).await,
                Err(Error::Conflict {
                    code: "alias_taken",
                    ..
                })
            ),
            "{taken}: look-alikes are one code"
        );
    }
    assert!(
        matches!(
            s.resolve("casetest", &head()).await,
            Err(Error::NotFound { .. })
        ),
        "redirects match the code exactly"
    );
    s.delete_link(&me, link.id).await.unwrap();
    s.delete_link(&me, generated.id).await.unwrap();
    for (code, what) in [
        ("CaseTest", "a deleted alias"),
        (generated.short_code.as_str(), "a deleted generated code"),
    ] {
        assert!(matches!(
            s.resolve(code, &head()).await,
            Err(Error::NotFound { .. })
        ));
        assert!(
            matches!(
                s.shorten(alias(code), None).await,
                Err(Error::Conflict {
                    code: "alias_taken",
                    ..
                })
            ),
            "{what} is never given to anyone else"
        );
    }
}

#[tokio::test]
async fn text_no_store_can_hold_is_refused_or_finds_nothing() {
    let s = shortener();
    let me = user(&s, "nul@example.com").await;
    assert!(matches!(
        s.login("\0", "x").await,
        Err(Error::Unauthorized { .. })
    ));
    for options in [
        ListOptions {
            query: Some("\0".into()),
            ..ListOptions::default()
        },
        ListOptions {
            tag: Some("a\0".into()),
            ..ListOptions::default()
        },
    ] {
        assert!(matches!(
            s.list_links(&me, options).await,
            Err(Error::Invalid { .. })
        ));
    }
    assert!(matches!(
        s.resolve("a\0b", &head()).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_click_keeps_little_of_what_the_visitor_sent() {
    let s = shortener();
    let me = user(&s, "bounded@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/b"), Some(&me))
        .await
        .unwrap();
    let long_agent = format!("Mozilla/5.0 (X11; Linux x86_64) {}", "x".repeat(100_000));
    for i in 0..30 {
        let referrer = format!("https://site{i}.example.com/{}", "p".repeat(97 * 1024));
        let visit = Visit {
            host: None,
            client_ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: Some(&long_agent),
            referrer: Some(&referrer),
            country: None,
            count: true,
            ..Visit::default()
        };
        s.resolve(&link.short_code, &visit).await.unwrap();
    }
    s.shutdown().await;
    let summary = s
        .analytics_summary(&me, None, &link.short_code, 1)
        .await
        .unwrap();
    assert_eq!(summary.total_clicks, 30);
    // Ten hosts, and the other twenty summed up.
    assert_eq!(
        summary.top_referrers.len(),
        11,
        "{:?}",
        summary.top_referrers
    );
    let other = summary.top_referrers.last().unwrap();
    assert_eq!((other.value.as_str(), other.count), ("other", 20));
    assert!(
        summary.top_referrers.iter().all(|r| r.value.len() < 40),
        "hosts, never whole referrers"
    );
}

#[tokio::test]
async fn embedders_run_domains_and_moderation_through_the_service() {
    let s = Shortener::builder()
        .base_url("https://sho.rt")
        .admin_emails(["Boss@Example.com"])
        .analytics(fast_analytics())
        .build()
        .unwrap();
    let boss = user(&s, "boss@example.com").await;
    let someone = user(&s, "someone@example.com").await;
    assert!(matches!(
        s.add_domain(&someone, "go.example.com", DomainPatch::default())
            .await,
        Err(Error::Forbidden { .. })
    ));
    let domain = s
        .add_domain(
            &boss,
            "go.example.com",
            DomainPatch {
                not_found_redirect: Some(Some("https://example.com/missing".into())),
                ..DomainPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(domain.host, "go.example.com");
    let on_domain = s
        .shorten(
            NewLink {
                custom_alias: Some("launch".into()),
                domain: Some("Go.Example.com".into()),
                ..NewLink::new("https://example.org/there")
            },
            Some(&someone),
        )
        .await
        .unwrap();
    assert_eq!(on_domain.domain.as_deref(), Some("go.example.com"));
    assert_eq!(s.link_url(&on_domain), "https://go.example.com/launch");
    let visit = |host| Visit {
        host: Some(host),
        ..Visit::default()
    };
    let there = s
        .resolve("launch", &visit("go.example.com:443"))
        .await
        .unwrap();
    assert_eq!(there.location(), "https://example.org/there");
    let fallback = s
        .resolve("nothing", &visit("go.example.com"))
        .await
        .unwrap();
    assert_eq!(
        (fallback.location(), fallback.short_code()),
        ("https://example.com/missing", None)
    );
    assert!(matches!(
        s.resolve("launch", &visit("sho.rt")).await,
        Err(Error::NotFound { .. })
    ));

    let blocked = s
        .block_link(&boss, on_domain.id, true, Some("phishing"))
        .await
        .unwrap();
    assert!(blocked.blocked);
    assert!(matches!(
        s.resolve("launch", &visit("go.example.com")).await,
        Err(Error::Gone {
            reason: GoneReason::Blocked
        })
    ));
    let plain = s
        .shorten(NewLink::new("https://bad.example/x"), None)
        .await
        .unwrap();
    s.block_host(&boss, "bad.example", None).await.unwrap();
    assert!(matches!(
        s.resolve(&plain.short_code, &head()).await,
        Err(Error::Gone {
            reason: GoneReason::Blocked
        })
    ));
    assert!(matches!(
        s.shorten(NewLink::new("https://www.bad.example/y"), None)
            .await,
        Err(Error::Invalid {
            code: "blocked_url",
            ..
        })
    ));
    let report = s
        .report(
            None,
            "https://go.example.com/launch",
            ReportReason::Phishing,
            Some("fake bank"),
        )
        .await
        .unwrap();
    let open = s
        .reports(&boss, ReportStatus::Open, 10, None)
        .await
        .unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(
        (open.items[0].0.id, open.items[0].1.id),
        (report.id, on_domain.id)
    );
    assert_eq!(
        s.unclaimed_admin_emails().await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn embedders_get_smart_redirects_through_resolve() {
    use hoplink::rules::{ConditionType, RedirectRule, RuleCondition};
    let geoip = hoplink::GeoIp::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/geoip/GeoLite2-Country-Test.mmdb"
    ))
    .unwrap();
    let s = Shortener::builder()
        .base_url("https://sho.rt")
        .analytics(fast_analytics())
        .geoip(geoip)
        .build()
        .unwrap();
    let me = user(&s, "embed@example.com").await;
    let rule = |url: &str, kind, value: &str| RedirectRule {
        url: url.into(),
        conditions: vec![RuleCondition::new(kind, value)],
    };
    let link = s
        .shorten(
            NewLink {
                redirect_rules: Some(vec![
                    rule("https://example.com/ios", ConditionType::Os, "ios"),
                    rule("https://example.com/gb", ConditionType::Country, "GB"),
                ]),
                forward_query: Some(true),
                ..NewLink::new("https://example.com/web")
            },
            Some(&me),
        )
        .await
        .unwrap();
    let visit = |ua, ip: &str, query| Visit {
        user_agent: Some(ua),
        client_ip: Some(ip.parse().unwrap()),
        query,
        count: true,
        ..Visit::default()
    };
    let to = |r: hoplink::Redirect| (r.location().to_string(), r.is_private());
    assert_eq!(
        to(
            s.resolve(&link.short_code, &visit(IPHONE, "203.0.113.1", None))
                .await
                .unwrap()
        ),
        ("https://example.com/ios".to_string(), true)
    );
    assert_eq!(
        to(
            s.resolve(&link.short_code, &visit(CHROME, "81.2.69.160", Some("a=1")))
                .await
                .unwrap()
        ),
        ("https://example.com/gb?a=1".to_string(), true),
        "the country from the GeoIP database, the query forwarded"
    );
    assert_eq!(
        s.resolve(&link.short_code, &visit(CHROME, "203.0.113.1", None))
            .await
            .unwrap()
            .location(),
        "https://example.com/web"
    );

    // A password: asked for, refused when wrong, counted once when right.
    let secret = s
        .shorten(
            NewLink {
                password: Some("hunter22".into()),
                ..NewLink::new("https://example.com/secret")
            },
            Some(&me),
        )
        .await
        .unwrap();
    assert!(secret.password_protected());
    let code = &secret.short_code;
    assert!(matches!(
        s.resolve(code, &visit(CHROME, "203.0.113.1", None)).await,
        Err(Error::PasswordRequired)
    ));
    let with = |password| Visit {
        password: Some(password),
        ..visit(CHROME, "203.0.113.1", None)
    };
    assert!(matches!(
        s.resolve(code, &with("wrong")).await,
        Err(Error::Unauthorized { .. })
    ));
    assert_eq!(
        s.resolve(code, &with("hunter22")).await.unwrap().location(),
        "https://example.com/secret"
    );
    let preview = s.preview(code, &with("ignored")).await.unwrap();
    assert_eq!(preview.destination, None, "a preview never shows it");

    // Permanent redirects are refused with any of them, on create and on edit.
    let permanent = s
        .shorten(
            NewLink {
                forward_query: Some(true),
                redirect_type: Some(RedirectType::PermanentRedirect),
                ..NewLink::new("https://example.com/p")
            },
            Some(&me),
        )
        .await;
    assert!(matches!(
        permanent,
        Err(Error::Invalid {
            code: "invalid_redirect_type",
            ..
        })
    ));
    let edit = s
        .update_link(
            &me,
            secret.id,
            LinkPatch {
                redirect_type: Some(RedirectType::MovedPermanently),
                ..LinkPatch::default()
            },
        )
        .await;
    assert!(matches!(
        edit,
        Err(Error::Invalid {
            code: "invalid_redirect_type",
            ..
        })
    ));
    let removed = s
        .update_link(
            &me,
            secret.id,
            LinkPatch {
                password: Some(None),
                redirect_type: Some(RedirectType::MovedPermanently),
                ..LinkPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !removed.password_protected(),
        "without the password it may be permanent"
    );

    s.shutdown().await;
    let summary = s
        .analytics_summary(&me, None, &link.short_code, 1)
        .await
        .unwrap();
    assert_eq!(summary.total_clicks, 3);
    assert!(
        summary.countries.iter().any(|c| c.value == "GB"),
        "{:?}",
        summary.countries
    );
    let secret_clicks = s.analytics_summary(&me, None, code, 1).await.unwrap();
    assert_eq!(
        secret_clicks.total_clicks, 1,
        "only the right password counted"
    );
}

#[tokio::test]
async fn raw_clicks_page_by_cursor_and_go_after_the_retention_while_summaries_stay() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let s = Shortener::builder()
        .clock(clock.clone())
        .analytics(fast_analytics())
        .click_retention(Duration::from_secs(30 * 86_400))
        .build()
        .unwrap();
    let alice = user(&s, "alice@example.com").await;
    let link = s
        .shorten(NewLink::new("https://example.com/logged"), Some(&alice))
        .await
        .unwrap();
    for ip in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        s.resolve(&link.short_code, &click(CHROME, ip))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(60));
    }
    s.resolve(&link.short_code, &click(SLACK, "4.4.4.4"))
        .await
        .unwrap();
    let options = |limit, cursor| hoplink::ClickOptions {
        limit: Some(limit),
        cursor,
        ..Default::default()
    };
    let mut all = Vec::new();
    for _ in 0..200 {
        all = s
            .click_log(&alice, None, &link.short_code, options(100, None))
            .await
            .unwrap()
            .items;
        if all.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(all.len(), 4, "every click, bots included");
    assert!(all[0].bot && !all[1].bot, "newest first");
    assert!(all.iter().all(|c| !c.visitor.contains('.')), "no address");
    let first = s
        .click_log(&alice, None, &link.short_code, options(3, None))
        .await
        .unwrap();
    let cursor = first.next_cursor.expect("a second page").encode();
    let second = s
        .click_log(&alice, None, &link.short_code, options(3, Some(cursor)))
        .await
        .unwrap();
    assert_eq!(second.items, all[3..]);
    assert!(second.next_cursor.is_none());
    assert!(matches!(
        s.click_log(&alice, None, &link.short_code, options(1001, None))
            .await,
        Err(Error::Invalid { .. })
    ));
    let bob = user(&s, "bob@example.com").await;
    assert!(matches!(
        s.click_log(&bob, None, &link.short_code, options(10, None))
            .await,
        Err(Error::NotFound { .. })
    ));

    assert_eq!(s.prune_clicks().await.unwrap(), 0, "nothing is old yet");
    clock.advance(Duration::from_secs(31 * 86_400));
    s.prune_clicks().await.unwrap();
    let left = s
        .click_log(&alice, None, &link.short_code, options(100, None))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "raw clicks go after the retention");
    let summary = s
        .analytics_summary(&alice, None, &link.short_code, 365)
        .await
        .unwrap();
    assert_eq!(
        (summary.total_clicks, summary.bot_clicks),
        (3, 1),
        "rollups stay"
    );
}
