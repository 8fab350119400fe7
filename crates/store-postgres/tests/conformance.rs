//! The core conformance suite and PostgreSQL-specific tests against a real server.
//!
//! Reads `TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); each test
//! works in a fresh schema of its own, dropped at the end. Without the variable the tests
//! skip with a notice, except under `CI`, where that is a failure.

use hoplink::{AnalyticsConfig, NewLink, Principal, Shortener, Visit};
use hoplink_postgres::{PgSettings, PgStore};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{connect, database_url, drop_schema, fresh_schema};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(connect(&url, &schema).await);
    hoplink::testing::link_store(store.clone()).await;
    hoplink::testing::user_store(store.clone()).await;
    hoplink::testing::analytics_store(store.clone()).await;
    hoplink::testing::click_log(store.clone()).await;
    hoplink::testing::domain_store(store.clone()).await;
    hoplink::testing::moderation_store(store.clone()).await;
    hoplink::testing::webhook_store(store.clone()).await;
    hoplink::testing::id_allocator(store.clone()).await;
    drop_schema(&store, &schema).await;
}

/// An existing deployment upgraded in place: the schema of the previous release (the
/// first two migrations) with links, case twins made before codes were folded, a deleted
/// link and clicks in it; then this release migrates it. Every link stays on the default
/// domain with its clicks, codes stay taken, and domains work at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrading_a_schema_with_data_keeps_every_link_on_the_default_domain() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let options = sqlx::postgres::PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let old = sqlx::PgPool::connect_with(options).await.unwrap();
    let previous = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(hoplink_postgres::MIGRATOR.migrations[..2].to_vec()),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    previous
        .run(&old)
        .await
        .expect("the previous release's schema");
    // What the previous release wrote: two case twins from before case folding (so
    // inserted directly, without the reservation trigger's check), links with clicks.
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        "ALTER TABLE links DISABLE TRIGGER links_reserve_code;
         INSERT INTO links (id, short_code, original_url, tags, redirect_type, created_at, updated_at)
         VALUES ('00000000-0000-7000-8000-000000000001', 'CaseTest', 'https://example.com/a', '{}', 302, now(), now()),
                ('00000000-0000-7000-8000-000000000002', 'casetest', 'https://example.com/b', '{}', 302, now(), now());
         ALTER TABLE links ENABLE TRIGGER links_reserve_code;
         INSERT INTO reserved_codes (folded) VALUES ('casetest') ON CONFLICT DO NOTHING;
         INSERT INTO links (id, short_code, original_url, tags, redirect_type, created_at, updated_at, click_count)
         VALUES ('00000000-0000-7000-8000-000000000003', 'older01', 'https://example.com/c', '{}', 301, now(), now(), 7);
         INSERT INTO links (id, short_code, original_url, tags, redirect_type, created_at, updated_at)
         VALUES ('00000000-0000-7000-8000-000000000004', 'gone001', 'https://example.com/d', '{}', 302, now(), now());
         DELETE FROM links WHERE short_code = 'gone001';
         INSERT INTO daily_rollups (link_id, day, clicks) VALUES ('00000000-0000-7000-8000-000000000003', current_date, 7);
         INSERT INTO daily_breakdowns (link_id, day, dimension, value, clicks)
         SELECT '00000000-0000-7000-8000-000000000003', current_date, d, v, 7
         FROM (VALUES ('referrer', 'news.example'), ('browser', 'Safari'), ('os', 'Linux'),
                      ('device', 'desktop'), ('country', 'DE')) AS b(d, v);",
    ))
    .execute(&old)
    .await
    .expect("data of the previous release");
    old.close().await;

    let store = Arc::new(connect(&url, &schema).await);
    let (applied,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        applied as usize,
        hoplink_postgres::MIGRATOR.migrations.len()
    );
    use hoplink::{AnalyticsStore, DomainStore, LinkStore};
    for code in ["CaseTest", "casetest", "older01"] {
        let link = store.get_by_code(None, code).await.unwrap();
        let link = link.unwrap_or_else(|| panic!("{code} survived the upgrade"));
        assert_eq!(link.domain, None, "{code} is on the default domain");
        assert!(!link.blocked);
    }
    let older = store.get_by_code(None, "older01").await.unwrap().unwrap();
    assert_eq!(older.click_count, 7);
    let today = chrono::Utc::now().date_naive();
    let window = store.rollups(older.id, today, today).await.unwrap();
    assert_eq!(window.days[0].clicks, 7, "clicks kept");
    // Breakdowns written per value before combinations existed add to the new ones.
    let click = hoplink::testing::sample_click(older.id, today, "v1", false, false);
    assert_eq!(store.record(&[click]).await.unwrap().recorded, 1);
    let window = store.rollups(older.id, today, today).await.unwrap();
    assert_eq!(window.days[0].clicks, 8);
    let mut values: Vec<(hoplink::records::Dimension, String, u64)> = window
        .breakdowns
        .iter()
        .flat_map(|(d, v)| v.iter().map(|v| (*d, v.value.clone(), v.count)))
        .collect();
    values.sort();
    use hoplink::records::Dimension::*;
    let expected = [
        (Referrer, "news.example", 8),
        (Browser, "Firefox", 1),
        (Browser, "Safari", 7),
        (Os, "Linux", 8),
        (Device, "desktop", 8),
        (Country, "DE", 8),
    ];
    assert_eq!(
        values,
        expected.map(|(d, v, n)| (d, v.to_string(), n)).to_vec()
    );
    // The deleted code and the twins' folded code stay taken.
    for code in ["gone001", "CASETEST"] {
        let mut link = hoplink::testing::sample_link(None);
        link.short_code = code.into();
        assert!(
            matches!(
                store.insert(&link).await,
                Err(hoplink::Error::Conflict { .. })
            ),
            "{code} stays taken"
        );
    }
    // Domains work on the upgraded schema: the same code on another domain.
    let domain = hoplink::testing::sample_domain();
    store.insert_domain(&domain).await.unwrap();
    let mut elsewhere = hoplink::testing::sample_link(None);
    elsewhere.short_code = "older01".into();
    elsewhere.domain = Some(domain.host.clone());
    store.insert(&elsewhere).await.unwrap();
    assert_eq!(
        store
            .get_by_code(Some(&domain.host), "older01")
            .await
            .unwrap()
            .map(|l| l.id),
        Some(elsewhere.id)
    );
    drop_schema(&store, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_apply_once_when_instances_start_together() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let starts: Vec<_> = (0..5)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            tokio::spawn(async move { connect(&url, &schema).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.expect("every instance starts"));
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(&schema)
    .fetch_all(stores[0].pool())
    .await
    .unwrap();
    for table in [
        "api_keys",
        "click_events",
        "daily_breakdowns",
        "daily_combinations",
        "daily_rollups",
        "daily_visitors",
        "links",
        "refresh_tokens",
        "reserved_codes",
        "revoked_families",
        "users",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} created: {tables:?}"
        );
    }
    let (applied, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations")
            .fetch_one(stores[0].pool())
            .await
            .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        (applied, distinct),
        (files, files),
        "each migration ran once"
    );
    drop_schema(&stores[0], &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn id_blocks_of_several_allocators_never_overlap() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(connect(&url, &schema).await));
    }
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = stores[i % 3].clone();
            tokio::spawn(
                async move { hoplink::IdAllocator::allocate(&*store, 1000).await.unwrap() },
            )
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        let block = t.await.unwrap();
        assert_eq!(block.end - block.start, 1000);
        assert!(seen.insert(block.start), "block {block:?} handed out twice");
    }
    let mut starts: Vec<u64> = seen.into_iter().collect();
    starts.sort();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] >= 1000),
        "blocks overlap"
    );
    drop_schema(&stores[0], &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shortener_on_postgres_end_to_end() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(connect(&url, &schema).await);
    let build = || {
        Shortener::builder()
            .store(store.clone())
            .id_allocator(store.clone())
            .analytics(AnalyticsConfig {
                batch_size: 100,
                flush_interval: Duration::from_millis(20),
                ..AnalyticsConfig::default()
            })
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    let user = a
        .register("pg@example.com", "password123", None)
        .await
        .unwrap();
    let me = Principal { user_id: user.id };
    let link = a
        .shorten(NewLink::new("https://example.com/pg"), Some(&me))
        .await
        .unwrap();
    let other = b
        .shorten(NewLink::new("https://example.com/pg2"), Some(&me))
        .await
        .unwrap();
    assert_ne!(
        link.short_code, other.short_code,
        "two instances allocate disjoint codes"
    );
    let visit = Visit {
        client_ip: Some("203.0.113.9".parse().unwrap()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
        count: true,
        ..Visit::default()
    };
    for _ in 0..5 {
        b.resolve(&link.short_code, &visit).await.unwrap();
    }
    a.shutdown().await;
    b.shutdown().await;
    let summary = a
        .analytics_summary(&me, None, &link.short_code, 7)
        .await
        .unwrap();
    assert_eq!((summary.total_clicks, summary.unique_visitors), (5, 1));
    assert_eq!(a.get_link(&me, link.id).await.unwrap().click_count, 5);
    let pair = a.login("PG@example.com", "password123").await.unwrap();
    assert!(
        b.refresh(&pair.refresh_token).await.is_ok(),
        "tokens live in the shared store"
    );
    drop_schema(&store, &schema).await;
}

#[tokio::test]
async fn unreachable_database_is_a_clear_retryable_error() {
    let started = std::time::Instant::now();
    let err = PgStore::connect_with(
        "postgres://nobody@127.0.0.1:1/none",
        PgSettings {
            acquire_timeout: Duration::from_secs(1),
            ..PgSettings::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("postgres"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded, never a hang"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_of_one_batch_count_each_click_once() {
    use hoplink::records::ClassifiedClick;
    use hoplink::{AnalyticsStore, LinkStore};
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(connect(&url, &schema).await);
    let links: Vec<_> = (0..7)
        .map(|_| hoplink::testing::sample_link(None))
        .collect();
    for link in &links {
        store.insert(link).await.unwrap();
    }
    let today = chrono::Utc::now().date_naive();
    let batch: Vec<ClassifiedClick> = (0..1000)
        .map(|i| {
            hoplink::testing::sample_click(
                links[i % 7].id,
                today,
                &format!("{:032x}", i % 50),
                false,
                false,
            )
        })
        .collect();
    let batch = Arc::new(batch);
    // Four workers that all received the same batch (redelivery after a rebalance).
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, batch) = (store.clone(), batch.clone());
            tokio::spawn(async move {
                loop {
                    match store.record(&batch).await {
                        Ok(outcome) => return outcome.recorded,
                        Err(e) if e.is_retryable() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut recorded = 0;
    for t in tasks {
        recorded += t.await.unwrap();
    }
    assert_eq!(
        recorded, 1000,
        "each event recorded by exactly one of the workers"
    );
    let mut clicks = 0;
    for link in &links {
        let window = store.rollups(link.id, today, today).await.unwrap();
        clicks += window.days.iter().map(|d| d.clicks).sum::<u64>();
        let counted = store.get(link.id).await.unwrap().unwrap().click_count;
        assert_eq!(
            counted, window.days[0].clicks,
            "click_count agrees with the rollup"
        );
    }
    assert_eq!(clicks, 1000);
    drop_schema(&store, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_ingest_leaves_link_writes_their_connections() {
    use hoplink::{AnalyticsStore, LinkStore};
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    // One connection each: with a shared pool the ingest below would hold it.
    let store = Arc::new(
        PgStore::connect_with(
            &url,
            PgSettings {
                schema: Some(schema.clone()),
                max_connections: 1,
                analytics_connections: 1,
                acquire_timeout: Duration::from_secs(2),
                ..PgSettings::default()
            },
        )
        .await
        .expect("connect and migrate"),
    );
    let link = hoplink::testing::sample_link(None);
    store.insert(&link).await.unwrap();
    // Another session locks the rollups, so the ingest waits inside its statement.
    let mut blocker = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {schema}.daily_rollups IN EXCLUSIVE MODE"
    )))
    .execute(&mut blocker)
    .await
    .unwrap();
    let click = hoplink::testing::sample_click(
        link.id,
        chrono::Utc::now().date_naive(),
        "visitor-7",
        false,
        false,
    );
    let ingest = tokio::spawn({
        let store = store.clone();
        async move { store.record(&[click]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!ingest.is_finished(), "the ingest waits on the lock");
    let other = hoplink::testing::sample_link(None);
    store
        .insert(&other)
        .await
        .expect("a link write gets a connection while the ingest waits");
    assert!(store.get(other.id).await.unwrap().is_some());
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let outcome = ingest.await.unwrap().expect("the ingest completes");
    assert_eq!(outcome.recorded, 1);
    drop_schema(&store, &schema).await;
}
