//! Breakdowns of busy link-days against a real server (`TEST_DATABASE_URL`): the rows a
//! link-day's stats read stay bounded, and concurrent writers count every click once.

use hoplink::records::{ClassifiedClick, Dimension};
use hoplink::{AnalyticsStore, LinkStore};
use hoplink_postgres::COMBINATION_ROWS;
use std::sync::Arc;

mod common;
use common::{connect, database_url, drop_schema, fresh_schema};

/// A link's breakdown rows: (combination rows, per-value rows), over all its days.
async fn stored_rows(store: &hoplink_postgres::PgStore, link_id: uuid::Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM daily_combinations WHERE link_id = $1),
                (SELECT count(*) FROM daily_breakdowns WHERE link_id = $1)",
    )
    .bind(link_id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_link_day_reads_a_bounded_number_of_rows() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let store = Arc::new(connect(&url, &schema).await);
    let link = hoplink::testing::sample_link(None);
    store.insert(&link).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    // 200 combinations of values (one per referrer), few values in the other
    // dimensions; four writers at once, ten batches of 25 clicks each.
    let click = |i: usize| ClassifiedClick {
        referrer: format!("r{}.example", i % 200).into(),
        browser: ["Firefox", "Chrome", "Safari", "Edge"][i % 4].into(),
        country: ["DE", "FR", "US", "JP", "BR"][i % 5].into(),
        ..hoplink::testing::sample_click(link.id, today, &format!("{i:032x}"), false, false)
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            let batches: Vec<Vec<ClassifiedClick>> = (0..10)
                .map(|b| (0..25).map(|i| click(w * 250 + b * 25 + i)).collect())
                .collect();
            tokio::spawn(async move {
                for batch in batches {
                    loop {
                        match store.record(&batch).await {
                            Ok(outcome) => {
                                assert_eq!(outcome.recorded, 25);
                                break;
                            }
                            Err(e) if e.is_retryable() => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }

    let (combinations, values) = stored_rows(&store, link.id).await;
    assert!(
        (1..=COMBINATION_ROWS as i64).contains(&combinations),
        "{combinations} combination rows for 1,000 clicks in 200 combinations"
    );
    // One row per distinct value at most: 200 referrers, 4 browsers, 1 OS, 1 device, 5
    // countries.
    assert!(values <= 211, "{values} per-value rows");

    let window = store.rollups(link.id, today, today).await.unwrap();
    assert_eq!(window.days[0].clicks, 1000);
    assert_eq!(window.days[0].unique_visitors, 1000);
    assert_eq!(store.get(link.id).await.unwrap().unwrap().click_count, 1000);
    for (dimension, counts) in &window.breakdowns {
        let total: u64 = counts.iter().map(|v| v.count).sum();
        assert_eq!(total, 1000, "{dimension:?} counts each click once");
        let expected_values = match dimension {
            Dimension::Referrer => 200,
            Dimension::Browser => 4,
            Dimension::Country => 5,
            Dimension::Os | Dimension::Device => 1,
        };
        assert_eq!(counts.len(), expected_values, "{dimension:?}");
        let each = 1000 / expected_values as u64;
        assert!(
            counts.iter().all(|v| v.count == each),
            "{dimension:?}: {counts:?}"
        );
    }

    // A busy link-day whose clicks share two combinations keeps adding to those rows.
    let steady = hoplink::testing::sample_link(None);
    store.insert(&steady).await.unwrap();
    for batch in 0..4 {
        let clicks: Vec<ClassifiedClick> = (0..50)
            .map(|i| ClassifiedClick {
                browser: ["Firefox", "Chrome"][i % 2].into(),
                ..hoplink::testing::sample_click(
                    steady.id,
                    today,
                    &format!("{batch}-{i}"),
                    false,
                    false,
                )
            })
            .collect();
        assert_eq!(store.record(&clicks).await.unwrap().recorded, 50);
    }
    let (combinations, values) = stored_rows(&store, steady.id).await;
    assert_eq!((combinations, values), (2, 0));
    let window = store.rollups(steady.id, today, today).await.unwrap();
    let browsers = &window
        .breakdowns
        .iter()
        .find(|(d, _)| *d == Dimension::Browser)
        .unwrap()
        .1;
    let mut browsers: Vec<(&str, u64)> = browsers
        .iter()
        .map(|v| (v.value.as_str(), v.count))
        .collect();
    browsers.sort();
    assert_eq!(browsers, [("Chrome", 100), ("Firefox", 100)]);
    drop_schema(&store, &schema).await;
}
