//! [`AnalyticsStore`]: clicks into the click log, then folded into daily rollups.

use crate::{PgStore, breakdowns, db_error};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hoplink::records::{
    ClassifiedClick, ClickFold, ClickQuery, DailyRollup, DayDelta, Dimension, RecordOutcome,
    RollupWindow,
};
use hoplink::{AnalyticsStore, Click, Result, ValueCount};
use sqlx::{PgPool, Row};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

/// Most parameter bytes per statement on a connection that keeps Nagle's algorithm on
/// (see [`crate::nodelay`]): past ~16 KB a statement waits ~40 ms for the server's
/// delayed ACK, so a group's writes take several statements.
const NAGLE_STATEMENT_BYTES: usize = 15_000;

/// Most parameter bytes per statement otherwise: a batch of 5,000 clicks is ~600 KB.
const STATEMENT_BYTES: usize = 4 << 20;

/// Splits `items` into runs whose parameters (`size` each) stay within `limit`; an
/// item larger than that still gets a statement of its own.
pub(crate) fn statement_chunks<T>(
    items: &[T],
    limit: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let item_bytes = size(item);
        if i > start && bytes + item_bytes > limit {
            chunks.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += item_bytes;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// What a value adds to a statement's parameters as a binary array element: a 4-byte
/// length, then the value.
pub(crate) const fn element(bytes: usize) -> usize {
    4 + bytes
}

/// A click log row's parameters.
fn click_bytes(click: &&ClassifiedClick) -> usize {
    let text: [&str; 6] = [
        &click.visitor,
        &click.referrer,
        &click.browser,
        &click.os,
        &click.device,
        &click.country,
    ];
    element(16) * 2 + element(8) + element(1) + text.iter().map(|t| element(t.len())).sum::<usize>()
}

/// The click log is the de-duplication record: its primary key is the event id. A batch
/// is first written assuming every click is new (the usual case), with a plain insert;
/// a click seen before fails the whole transaction with a unique violation, and the
/// batch is written again with [`INSERT_UNSEEN_CLICKS`]. A speculative insert (`ON
/// CONFLICT`) costs PostgreSQL about half as much again as a plain one, per row.
const INSERT_CLICKS: &str = "
INSERT INTO clicks (event_id, link_id, at, bot, referrer, browser, os, device, country, visitor)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bool[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])";

/// The same rows, skipping those already in the log: the rows it returns are the clicks
/// seen for the first time.
const INSERT_UNSEEN_CLICKS: &str = "
INSERT INTO clicks (event_id, link_id, at, bot, referrer, browser, os, device, country, visitor)
SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[], $4::bool[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
ON CONFLICT DO NOTHING
RETURNING event_id";

/// `sql` (one of the click log inserts) with the click log rows of `chunk` bound.
fn click_rows<'a>(
    sql: &'static str,
    chunk: &[&'a ClassifiedClick],
) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let text = |f: fn(&ClassifiedClick) -> &str| chunk.iter().map(|c| f(c)).collect::<Vec<_>>();
    sqlx::query(sql)
        .bind(chunk.iter().map(|c| c.event_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|c| c.link_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|c| c.at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|c| c.is_bot).collect::<Vec<_>>())
        .bind(text(|c| &c.referrer))
        .bind(text(|c| &c.browser))
        .bind(text(|c| &c.os))
        .bind(text(|c| &c.device))
        .bind(text(|c| &c.country))
        .bind(text(|c| &c.visitor))
}

/// The visitors a link had not seen that day come back: they are its new unique visitors.
const INSERT_VISITORS: &str = "
INSERT INTO daily_visitors (link_id, day, visitor)
SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[])
ON CONFLICT DO NOTHING
RETURNING link_id, day";

/// Returns the link-days whose human clicks, after the batch, are past $6: those may
/// already hold as many combination rows as they keep (see [`crate::breakdowns`]).
const ADD_DAYS: &str = "
WITH added AS (
    INSERT INTO daily_rollups (link_id, day, clicks, bot_clicks, unique_visitors)
    SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::int8[], $4::int8[], $5::int8[])
    ON CONFLICT (link_id, day) DO UPDATE SET
        clicks = daily_rollups.clicks + EXCLUDED.clicks,
        bot_clicks = daily_rollups.bot_clicks + EXCLUDED.bot_clicks,
        unique_visitors = daily_rollups.unique_visitors + EXCLUDED.unique_visitors
    RETURNING link_id, day, clicks
)
SELECT link_id, day FROM added WHERE clicks > $6";

/// Keeps [`ADD_CLICK_COUNTS`] a nested loop over the links index for the rest of the
/// transaction: the planner otherwise hashes the batch against a scan of the whole
/// `links` table, a cost per batch that grows with the table (in `psql`, 1,000 counts
/// among 100,000 links took 49–73 ms that way and 12–19 ms by the index).
const COUNTS_BY_INDEX: &str = "
SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)";

const ADD_CLICK_COUNTS: &str = "
UPDATE links SET click_count = links.click_count + n.clicks
FROM UNNEST($1::uuid[], $2::int8[]) AS n(link_id, clicks)
WHERE links.id = n.link_id";

/// The link-day (`link_id`, `day`) of a returned row.
pub(crate) fn link_day(row: &sqlx::postgres::PgRow) -> Result<(Uuid, NaiveDate)> {
    Ok((
        row.try_get("link_id").map_err(db_error)?,
        row.try_get("day").map_err(db_error)?,
    ))
}

pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Records one group of a batch in one transaction: its click log rows decide which
/// clicks are new, and only those are folded into the rollups. A failed group adds
/// nothing, so a batch retried later adds exactly what is missing.
async fn record_group(
    pool: &PgPool,
    nagle: &AtomicBool,
    group: &[&ClassifiedClick],
) -> Result<u64> {
    let mut by_event = group.to_vec();
    by_event.sort_unstable_by_key(|c| c.event_id);
    // A click given twice in one batch is new once.
    by_event.dedup_by_key(|c| c.event_id);
    match write_group(pool, nagle, &by_event, true).await? {
        Some(recorded) => Ok(recorded),
        None => {
            tracing::debug!(
                clicks = by_event.len(),
                "clicks seen before in a batch: writing it again without them"
            );
            let recorded = write_group(pool, nagle, &by_event, false).await?;
            Ok(recorded.unwrap_or_default())
        }
    }
}

/// Writes a group's clicks (sorted by event id, each once) in one transaction. With
/// `all_new`, the click log rows go in with a plain insert, and `None` says some were
/// seen before (nothing is written); otherwise the log skips those it holds.
async fn write_group(
    pool: &PgPool,
    nagle: &AtomicBool,
    by_event: &[&ClassifiedClick],
    all_new: bool,
) -> Result<Option<u64>> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    // Read after `begin`: a new connection has just said whether it keeps Nagle.
    let limit = if nagle.load(Ordering::Relaxed) {
        NAGLE_STATEMENT_BYTES
    } else {
        STATEMENT_BYTES
    };
    let mut fresh: HashSet<Uuid> = HashSet::new();
    for chunk in statement_chunks(by_event, limit, click_bytes) {
        if all_new {
            match click_rows(INSERT_CLICKS, chunk).execute(&mut *tx).await {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
                written => written.map_err(db_error)?,
            };
            continue;
        }
        let rows = click_rows(INSERT_UNSEEN_CLICKS, chunk)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        for row in rows {
            fresh.insert(row.try_get("event_id").map_err(db_error)?);
        }
    }
    let fold = if all_new {
        ClickFold::of(by_event.iter().copied())
    } else {
        ClickFold::of(
            by_event
                .iter()
                .copied()
                .filter(|c| fresh.contains(&c.event_id)),
        )
    };
    let recorded = if all_new { by_event.len() } else { fresh.len() } as u64;

    let mut new_visitors: HashMap<(Uuid, NaiveDate), u64> = HashMap::new();
    let visitor_bytes = |v: &(Uuid, NaiveDate, &str)| element(16) + element(4) + element(v.2.len());
    for chunk in statement_chunks(&fold.visitors, limit, visitor_bytes) {
        let rows = sqlx::query(INSERT_VISITORS)
            .bind(chunk.iter().map(|v| v.0).collect::<Vec<_>>())
            .bind(chunk.iter().map(|v| v.1).collect::<Vec<_>>())
            .bind(chunk.iter().map(|v| v.2).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        for row in rows {
            *new_visitors.entry(link_day(&row)?).or_default() += 1;
        }
    }
    let day_bytes = |_: &DayDelta| element(16) + element(4) + 3 * element(8);
    let mut crowded: Vec<(Uuid, NaiveDate)> = Vec::new();
    for chunk in statement_chunks(&fold.days, limit, day_bytes) {
        let rows = sqlx::query(ADD_DAYS)
            .bind(chunk.iter().map(|d| d.link_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|d| d.day).collect::<Vec<_>>())
            .bind(chunk.iter().map(|d| count(d.clicks)).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|d| count(d.bot_clicks))
                    .collect::<Vec<_>>(),
            )
            .bind(
                chunk
                    .iter()
                    .map(|d| count(new_visitors.get(&(d.link_id, d.day)).copied().unwrap_or(0)))
                    .collect::<Vec<_>>(),
            )
            .bind(count(breakdowns::COMBINATION_ROWS))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        for row in rows {
            crowded.push(link_day(&row)?);
        }
    }
    breakdowns::add(&mut tx, &fold.combinations, &crowded, limit).await?;
    if !fold.counts.is_empty() {
        sqlx::query(COUNTS_BY_INDEX)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    for chunk in statement_chunks(&fold.counts, limit, |_| element(16) + element(8)) {
        sqlx::query(ADD_CLICK_COUNTS)
            .bind(chunk.iter().map(|c| c.0).collect::<Vec<_>>())
            .bind(chunk.iter().map(|c| count(c.1)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(Some(recorded))
}

/// Splits a batch sorted by link into at most `groups` runs of about equal size that
/// never split a link: groups then touch disjoint rollup rows and run side by side.
fn link_groups<'a>(
    sorted: &'a [&'a ClassifiedClick],
    groups: usize,
) -> Vec<&'a [&'a ClassifiedClick]> {
    let target = sorted.len().div_ceil(groups.max(1)).max(1);
    let mut runs = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let mut end = (start + target).min(sorted.len());
        while end < sorted.len() && sorted[end].link_id == sorted[end - 1].link_id {
            end += 1;
        }
        runs.push(&sorted[start..end]);
        start = end;
    }
    runs
}

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn record(&self, clicks: &[ClassifiedClick]) -> Result<RecordOutcome> {
        if clicks.is_empty() {
            return Ok(RecordOutcome::default());
        }
        // The batch is folded in memory, so each rollup row is written once per batch;
        // groups of links run concurrently on the analytics pool's connections, and
        // every statement writes in key order, so concurrent writers cannot deadlock.
        let mut sorted: Vec<&ClassifiedClick> = clicks.iter().collect();
        sorted.sort_unstable_by_key(|c| (c.link_id, c.event_id));
        let groups = link_groups(&sorted, self.record_groups);
        let results = futures_util::future::join_all(
            groups
                .iter()
                .map(|group| record_group(&self.analytics_pool, &self.nagle, group)),
        )
        .await;
        let mut recorded = 0u64;
        for result in results {
            recorded += result?;
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
        // Both statements take the window as ($1 link, $2 first day, $3 last day).
        let window_rows = |sql: &'static str| {
            sqlx::query(sql)
                .bind(link_id)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
        };
        let days = window_rows(
            "SELECT day, clicks, bot_clicks, unique_visitors FROM daily_rollups
             WHERE link_id = $1 AND day BETWEEN $2 AND $3",
        )
        .await
        .map_err(db_error)?;
        let breakdowns = window_rows(breakdowns::READ).await.map_err(db_error)?;
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
            visitor: format!("{:032x}", 1).into(),
            is_bot: false,
            referrer: referrer.to_string().into(),
            browser: "Chrome".into(),
            os: "Windows 10".into(),
            device: "desktop".into(),
            country: "DE".into(),
            counted_at_redirect: false,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn statements_keep_every_click_in_order_within_the_byte_bound() {
        let clicks: Vec<ClassifiedClick> = (0..1000)
            .map(|i| match i % 7 {
                0 => click(&"r".repeat(250)),
                1 => click(&"x".repeat(20_000)),
                _ => click("news.example.com"),
            })
            .chain((0..250).map(|_| click("t.co")))
            .collect();
        let refs: Vec<&ClassifiedClick> = clicks.iter().collect();
        let chunks = statement_chunks(&refs, NAGLE_STATEMENT_BYTES, click_bytes);
        let flattened: Vec<Uuid> = chunks
            .iter()
            .flat_map(|c| c.iter().map(|c| c.event_id))
            .collect();
        assert_eq!(
            flattened,
            clicks.iter().map(|c| c.event_id).collect::<Vec<_>>()
        );
        for chunk in &chunks {
            let bytes: usize = chunk.iter().map(click_bytes).sum();
            assert!(
                !chunk.is_empty() && (bytes <= NAGLE_STATEMENT_BYTES || chunk.len() == 1),
                "{} clicks, {bytes} bytes",
                chunk.len()
            );
        }
        // The oversized clicks travel alone; the tail of short clicks fills whole chunks.
        assert!(chunks.iter().filter(|c| c.len() == 1).count() >= 1000 / 7);
        let tail = chunks[chunks.len() - 2];
        assert!(click_bytes(&tail[0]) * (tail.len() + 1) > NAGLE_STATEMENT_BYTES);
        assert_eq!(
            statement_chunks(&refs, STATEMENT_BYTES, click_bytes).len(),
            1
        );
        assert!(statement_chunks(&[] as &[&ClassifiedClick], 1, click_bytes).is_empty());
    }

    #[test]
    fn groups_are_about_even_and_never_split_a_link() {
        let hot = click("t.co");
        let mut clicks: Vec<ClassifiedClick> = (0..90)
            .map(|_| ClassifiedClick {
                event_id: Uuid::now_v7(),
                ..hot.clone()
            })
            .collect();
        clicks.extend((0..110).map(|_| click("t.co")));
        let mut sorted: Vec<&ClassifiedClick> = clicks.iter().collect();
        sorted.sort_unstable_by_key(|c| (c.link_id, c.event_id));
        let groups = link_groups(&sorted, 4);
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), 200);
        assert!(groups.len() <= 4);
        assert!(groups.iter().any(|g| g.len() >= 90));
        for pair in groups.windows(2) {
            assert_ne!(pair[0].last().unwrap().link_id, pair[1][0].link_id);
        }
        assert_eq!(link_groups(&sorted, 1).len(), 1);
        assert!(link_groups(&[], 4).is_empty());
    }
}
