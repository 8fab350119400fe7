//! [`AnalyticsStore`]: clicks into daily rollups, one statement per chunk.

use crate::{PgStore, db_error};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hoplink::records::{
    ClassifiedClick, ClickQuery, DailyRollup, Dimension, RecordOutcome, RollupWindow,
};
use hoplink::{AnalyticsStore, Click, Error, Result, ValueCount};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Most events per statement of [`AnalyticsStore::record`].
const RECORD_CHUNK: usize = 100;

/// Most parameter bytes per statement of [`AnalyticsStore::record`]: sqlx 0.9.0 leaves
/// Nagle's algorithm on (launchbadge/sqlx#4335), and a statement whose parameters pass
/// ~16 KB waits ~40 ms for the server's delayed ACK.
const RECORD_CHUNK_BYTES: usize = 15_000;

/// What a click adds to a statement's parameters (binary array elements: a 4-byte
/// length each, then the value).
fn parameter_bytes(click: &ClassifiedClick) -> usize {
    let fixed = 4 * 11 + 16 + 16 + 8 + 1 + 1;
    let text = [
        &click.visitor,
        &click.referrer,
        &click.browser,
        &click.os,
        &click.device,
        &click.country,
    ];
    fixed + text.iter().map(|t| t.len()).sum::<usize>()
}

/// Splits clicks into runs of at most [`RECORD_CHUNK`] events and [`RECORD_CHUNK_BYTES`]
/// of parameters (a single larger click still gets a statement of its own).
fn record_chunks<'a>(clicks: &'a [&'a ClassifiedClick]) -> Vec<&'a [&'a ClassifiedClick]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, click) in clicks.iter().enumerate() {
        let size = parameter_bytes(click);
        if i > start && (i - start == RECORD_CHUNK || bytes + size > RECORD_CHUNK_BYTES) {
            chunks.push(&clicks[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < clicks.len() {
        chunks.push(&clicks[start..]);
    }
    chunks
}

/// One statement records a chunk of a batch: the inserted click log rows decide which
/// clicks are new (the log's primary key is the event id), and every table is modified
/// once (data-modifying CTEs see one snapshot). The day is the UTC date of `at`, as
/// [`ClassifiedClick::day`] is, computed here to keep the statement's parameters small.
const RECORD_BATCH: &str = "
WITH input AS (
    SELECT t.*, (t.at AT TIME ZONE 'UTC')::date AS day
    FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::bool[],
                $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[])
        AS t(event_id, link_id, at, visitor, is_bot, referrer, browser, os, device, country, counted)
),
fresh_ids AS (
    INSERT INTO clicks (event_id, link_id, at, bot, referrer, browser, os, device, country, visitor)
    SELECT DISTINCT ON (event_id) event_id, link_id, at, is_bot, referrer, browser, os, device, country, visitor
    FROM input ORDER BY event_id
    ON CONFLICT DO NOTHING
    RETURNING event_id
),
fresh AS (
    SELECT DISTINCT ON (i.event_id) i.* FROM input i JOIN fresh_ids f USING (event_id)
),
new_visitors AS (
    INSERT INTO daily_visitors (link_id, day, visitor)
    SELECT DISTINCT link_id, day, visitor FROM fresh WHERE NOT is_bot AND visitor <> ''
    ORDER BY link_id, day, visitor
    ON CONFLICT DO NOTHING
    RETURNING link_id, day
),
visitor_counts AS (
    SELECT link_id, day, count(*) AS n FROM new_visitors GROUP BY link_id, day
),
click_counts AS (
    SELECT link_id, day,
           count(*) FILTER (WHERE NOT is_bot) AS clicks,
           count(*) FILTER (WHERE is_bot) AS bot_clicks
    FROM fresh GROUP BY link_id, day
),
rollups AS (
    INSERT INTO daily_rollups (link_id, day, clicks, bot_clicks, unique_visitors)
    SELECT c.link_id, c.day, c.clicks, c.bot_clicks, coalesce(v.n, 0)
    FROM click_counts c LEFT JOIN visitor_counts v USING (link_id, day)
    ORDER BY c.link_id, c.day
    ON CONFLICT (link_id, day) DO UPDATE SET
        clicks = daily_rollups.clicks + EXCLUDED.clicks,
        bot_clicks = daily_rollups.bot_clicks + EXCLUDED.bot_clicks,
        unique_visitors = daily_rollups.unique_visitors + EXCLUDED.unique_visitors
    RETURNING 1
),
breakdowns AS (
    INSERT INTO daily_breakdowns (link_id, day, dimension, value, clicks)
    SELECT link_id, day, d.dimension, d.value, count(*)
    FROM fresh,
         LATERAL (VALUES ('referrer', referrer), ('browser', browser), ('os', os),
                         ('device', device), ('country', country)) AS d(dimension, value)
    WHERE NOT is_bot
    GROUP BY link_id, day, d.dimension, d.value
    ORDER BY link_id, day, d.dimension, d.value
    ON CONFLICT (link_id, day, dimension, value) DO UPDATE SET
        clicks = daily_breakdowns.clicks + EXCLUDED.clicks
    RETURNING 1
),
counted AS (
    UPDATE links SET click_count = links.click_count + n.clicks
    FROM (SELECT link_id, count(*) AS clicks FROM fresh WHERE NOT is_bot AND NOT counted GROUP BY link_id) n
    WHERE links.id = n.link_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM fresh) AS recorded,
       (SELECT count(*) FROM rollups) + (SELECT count(*) FROM breakdowns) + (SELECT count(*) FROM counted) AS touched
";

async fn record_chunk(pool: &PgPool, chunk: &[ClassifiedClick]) -> Result<u64> {
    let col = |f: fn(&ClassifiedClick) -> String| chunk.iter().map(f).collect::<Vec<String>>();
    let row = sqlx::query(RECORD_BATCH)
        .bind(chunk.iter().map(|c| c.event_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|c| c.link_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|c| c.at).collect::<Vec<_>>())
        .bind(col(|c| c.visitor.clone()))
        .bind(chunk.iter().map(|c| c.is_bot).collect::<Vec<_>>())
        .bind(col(|c| c.referrer.clone()))
        .bind(col(|c| c.browser.clone()))
        .bind(col(|c| c.os.clone()))
        .bind(col(|c| c.device.clone()))
        .bind(col(|c| c.country.clone()))
        .bind(
            chunk
                .iter()
                .map(|c| c.counted_at_redirect)
                .collect::<Vec<_>>(),
        )
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    let n: i64 = row.try_get("recorded").map_err(db_error)?;
    Ok(n.max(0) as u64)
}

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn record(&self, clicks: &[ClassifiedClick]) -> Result<RecordOutcome> {
        if clicks.is_empty() {
            return Ok(RecordOutcome::default());
        }
        // Each chunk statement is complete on its own (de-duplication, rollups and
        // click_count of its events move together), so a failed batch retried later only
        // adds what is missing. Chunks run concurrently on separate connections; sorted by
        // link they mostly touch disjoint rows, and every statement locks in key order.
        //
        // Why chunks of bounded size: see RECORD_CHUNK_BYTES.
        let mut sorted: Vec<&ClassifiedClick> = clicks.iter().collect();
        sorted.sort_by_key(|c| (c.link_id, c.event_id));
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in record_chunks(&sorted) {
            let chunk: Vec<ClassifiedClick> = chunk.iter().map(|c| (*c).clone()).collect();
            let pool = self.analytics_pool.clone();
            tasks.spawn(async move { record_chunk(&pool, &chunk).await });
        }
        let mut recorded = 0u64;
        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(n)) => recorded += n,
                Ok(Err(e)) => failure = Some(e),
                Err(e) => failure = Some(Error::backend("postgres", e)),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let recorded = recorded.min(clicks.len() as u64);
        Ok(RecordOutcome {
            recorded,
            duplicates: clicks.len() as u64 - recorded,
        })
    }

    async fn clicks(&self, query: &ClickQuery) -> Result<Vec<Click>> {
        crate::clicks::page(&self.pool, query).await
    }

    async fn prune_clicks(&self, before: DateTime<Utc>) -> Result<u64> {
        crate::clicks::prune(&self.pool, before).await
    }

    async fn rollups(&self, link_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<RollupWindow> {
        let days = sqlx::query(
            "SELECT day, clicks, bot_clicks, unique_visitors FROM daily_rollups
             WHERE link_id = $1 AND day BETWEEN $2 AND $3",
        )
        .bind(link_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let breakdowns = sqlx::query(
            "SELECT dimension, value, sum(clicks)::bigint AS clicks FROM daily_breakdowns
             WHERE link_id = $1 AND day BETWEEN $2 AND $3
             GROUP BY dimension, value",
        )
        .bind(link_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut window = RollupWindow::default();
        for row in &days {
            let n = |name: &str| -> Result<u64> {
                Ok(row.try_get::<i64, _>(name).map_err(db_error)?.max(0) as u64)
            };
            window.days.push(DailyRollup {
                date: row.try_get("day").map_err(db_error)?,
                clicks: n("clicks")?,
                bot_clicks: n("bot_clicks")?,
                unique_visitors: n("unique_visitors")?,
            });
        }
        for dim in Dimension::ALL {
            let mut values = Vec::new();
            for row in &breakdowns {
                let name: String = row.try_get("dimension").map_err(db_error)?;
                if name == dim.as_str() {
                    values.push(ValueCount {
                        value: row.try_get("value").map_err(db_error)?,
                        count: row.try_get::<i64, _>("clicks").map_err(db_error)?.max(0) as u64,
                    });
                }
            }
            window.breakdowns.push((dim, values));
        }
        Ok(window)
    }

    async fn health(&self) -> Result<()> {
        self.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(referrer: &str) -> ClassifiedClick {
        ClassifiedClick {
            event_id: Uuid::now_v7(),
            link_id: Uuid::now_v7(),
            day: chrono::Utc::now().date_naive(),
            visitor: format!("{:032x}", 1),
            is_bot: false,
            referrer: referrer.into(),
            browser: "Chrome".into(),
            os: "Windows 10".into(),
            device: "desktop".into(),
            country: "DE".into(),
            counted_at_redirect: false,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn chunks_keep_every_click_in_order_within_both_bounds() {
        // Ordinary clicks fill chunks of RECORD_CHUNK; long referrers make them smaller.
        let clicks: Vec<ClassifiedClick> = (0..1000)
            .map(|i| match i % 7 {
                0 => click(&"r".repeat(250)),
                1 => click(&"x".repeat(20_000)),
                _ => click("news.example.com"),
            })
            .chain((0..250).map(|_| click("t.co")))
            .collect();
        let refs: Vec<&ClassifiedClick> = clicks.iter().collect();
        let chunks = record_chunks(&refs);
        let flattened: Vec<Uuid> = chunks
            .iter()
            .flat_map(|c| c.iter().map(|c| c.event_id))
            .collect();
        assert_eq!(
            flattened,
            clicks.iter().map(|c| c.event_id).collect::<Vec<_>>()
        );
        for chunk in &chunks {
            assert!(!chunk.is_empty() && chunk.len() <= RECORD_CHUNK);
            let bytes: usize = chunk.iter().map(|c| parameter_bytes(c)).sum();
            assert!(
                bytes <= RECORD_CHUNK_BYTES || chunk.len() == 1,
                "{} clicks, {bytes} bytes",
                chunk.len()
            );
        }
        // The oversized clicks travel alone; the tail of short clicks fills whole chunks.
        assert!(chunks.iter().filter(|c| c.len() == 1).count() >= 1000 / 7);
        assert_eq!(chunks[chunks.len() - 2].len(), RECORD_CHUNK);
        assert_eq!(chunks[chunks.len() - 3].len(), RECORD_CHUNK);
        assert!(record_chunks(&[]).is_empty());
    }
}
