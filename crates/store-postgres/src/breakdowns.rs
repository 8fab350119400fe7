//! A link's breakdowns (human clicks per referrer, browser, OS, device and country, per
//! day), kept in the form that is cheap for each link-day:
//!
//! - one row per combination of the five values (`daily_combinations`), up to
//!   [`COMBINATION_ROWS`] rows a link-day: a link's only click of a batch, the usual case
//!   in the long tail of links, writes one row instead of five, and a busy link whose
//!   clicks share a few combinations keeps adding to those few rows;
//! - past that, one row per dimension and value (`daily_breakdowns`), whose number the
//!   distinct values bound: a busy link with thousands of combinations a day would
//!   otherwise make its stats read thousands of rows per day of the window.
//!
//! A link-day may hold both forms; reads add them up, and each click is folded into
//! exactly one. A batch's form is decided per link-day after the rollup upsert, whose row
//! lock serialises the writers of a link-day: a link-day with at most
//! [`COMBINATION_ROWS`] clicks cannot have more combinations than that; only busier ones
//! have their combination rows counted (through the key, at most that many each).

use crate::analytics::{count, element, link_day, statement_chunks};
use crate::db_error;
use chrono::NaiveDate;
use hoplink::Result;
use hoplink::records::{CombinationDelta, Dimension};
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Most combination rows a link-day keeps: reading a day's breakdowns costs at most this
/// many of them plus one row per distinct value.
pub const COMBINATION_ROWS: u64 = 64;

/// A window's breakdowns ($1 link, $2 first day, $3 last day): the combinations summed
/// per dimension and value, plus the per-value rows.
pub(crate) const READ: &str = "
SELECT dimension, value, sum(clicks)::bigint AS clicks FROM (
    SELECT v.dimension, v.value, c.clicks FROM daily_combinations c,
        LATERAL (VALUES ('referrer', c.referrer), ('browser', c.browser), ('os', c.os),
                        ('device', c.device), ('country', c.country)) AS v(dimension, value)
    WHERE c.link_id = $1 AND c.day BETWEEN $2 AND $3
    UNION ALL
    SELECT dimension, value, clicks FROM daily_breakdowns
    WHERE link_id = $1 AND day BETWEEN $2 AND $3
) AS breakdowns
GROUP BY dimension, value";

const ADD_COMBINATIONS: &str = "
INSERT INTO daily_combinations (link_id, day, referrer, browser, os, device, country, clicks)
SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::int8[])
ON CONFLICT (link_id, day, referrer, browser, os, device, country) DO UPDATE SET
    clicks = daily_combinations.clicks + EXCLUDED.clicks";

/// The combination rows of each link-day ($1 links, $2 days). A correlated subquery, so
/// each is an index range scan, never a join against the whole table.
const COUNT_COMBINATIONS: &str = "
SELECT k.link_id, k.day,
       (SELECT count(*) FROM daily_combinations c
        WHERE c.link_id = k.link_id AND c.day = k.day) AS combinations
FROM UNNEST($1::uuid[], $2::date[]) AS k(link_id, day)";

const ADD_VALUES: &str = "
INSERT INTO daily_breakdowns (link_id, day, dimension, value, clicks)
SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::text[], $4::text[], $5::int8[])
ON CONFLICT (link_id, day, dimension, value) DO UPDATE SET
    clicks = daily_breakdowns.clicks + EXCLUDED.clicks";

/// One dimension's value on one link-day, with the clicks it gains.
struct ValueDelta<'a> {
    link_id: Uuid,
    day: NaiveDate,
    dimension: Dimension,
    value: &'a str,
    clicks: u64,
}

/// Adds a fold's combinations (sorted by key) to the breakdowns, in the transaction that
/// has just upserted their link-days' rollups; `crowded` are the link-days of the batch
/// with more than [`COMBINATION_ROWS`] human clicks, which may have as many combination
/// rows as they keep. Rows go in key order, so concurrent writers lock them
/// in the same order.
pub(crate) async fn add(
    conn: &mut PgConnection,
    combinations: &[CombinationDelta<'_>],
    crowded: &[(Uuid, NaiveDate)],
    statement_limit: usize,
) -> Result<()> {
    let busy = busy_link_days(conn, combinations, crowded, statement_limit).await?;
    let (per_value, quiet): (Vec<_>, Vec<_>) = combinations
        .iter()
        .partition(|c| busy.contains(&(c.link_id, c.day)));
    let combination_bytes = |c: &&CombinationDelta| {
        element(16)
            + element(4)
            + c.values.iter().map(|v| element(v.len())).sum::<usize>()
            + element(8)
    };
    for chunk in statement_chunks(&quiet, statement_limit, combination_bytes) {
        let mut query = sqlx::query(ADD_COMBINATIONS)
            .bind(chunk.iter().map(|c| c.link_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|c| c.day).collect::<Vec<_>>());
        for dimension in Dimension::ALL {
            query = query.bind(chunk.iter().map(|c| c.value(dimension)).collect::<Vec<_>>());
        }
        query
            .bind(chunk.iter().map(|c| count(c.clicks)).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }

    let values = per_value_deltas(&per_value);
    let value_bytes = |v: &ValueDelta| {
        element(16)
            + element(4)
            + element(v.dimension.as_str().len())
            + element(v.value.len())
            + element(8)
    };
    for chunk in statement_chunks(&values, statement_limit, value_bytes) {
        sqlx::query(ADD_VALUES)
            .bind(chunk.iter().map(|v| v.link_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|v| v.day).collect::<Vec<_>>())
            .bind(
                chunk
                    .iter()
                    .map(|v| v.dimension.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(chunk.iter().map(|v| v.value).collect::<Vec<_>>())
            .bind(chunk.iter().map(|v| count(v.clicks)).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// The crowded link-days whose combination rows, with this batch's combinations, could
/// pass [`COMBINATION_ROWS`]: their clicks go per value.
async fn busy_link_days(
    conn: &mut PgConnection,
    combinations: &[CombinationDelta<'_>],
    crowded: &[(Uuid, NaiveDate)],
    statement_limit: usize,
) -> Result<HashSet<(Uuid, NaiveDate)>> {
    let mut busy = HashSet::new();
    if crowded.is_empty() {
        return Ok(busy);
    }
    let mut batch: HashMap<(Uuid, NaiveDate), u64> = HashMap::new();
    for c in combinations {
        *batch.entry((c.link_id, c.day)).or_default() += 1;
    }
    for chunk in statement_chunks(crowded, statement_limit, |_| element(16) + element(4)) {
        let rows = sqlx::query(COUNT_COMBINATIONS)
            .bind(chunk.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind(chunk.iter().map(|k| k.1).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
        for row in rows {
            let key = link_day(&row)?;
            let stored: i64 = row.try_get("combinations").map_err(db_error)?;
            let added = batch.get(&key).copied().unwrap_or(0);
            if stored.max(0) as u64 + added > COMBINATION_ROWS {
                busy.insert(key);
            }
        }
    }
    Ok(busy)
}

/// Combinations summed per (link, day, dimension, value), sorted by that key.
fn per_value_deltas<'a>(combinations: &[&CombinationDelta<'a>]) -> Vec<ValueDelta<'a>> {
    let mut sums: HashMap<(Uuid, NaiveDate, Dimension, &'a str), u64> = HashMap::new();
    for c in combinations {
        for dimension in Dimension::ALL {
            *sums
                .entry((c.link_id, c.day, dimension, c.value(dimension)))
                .or_default() += c.clicks;
        }
    }
    let mut values: Vec<ValueDelta<'a>> = sums
        .into_iter()
        .map(|((link_id, day, dimension, value), clicks)| ValueDelta {
            link_id,
            day,
            dimension,
            value,
            clicks,
        })
        .collect();
    values.sort_unstable_by_key(|v| (v.link_id, v.day, v.dimension, v.value));
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_sum_per_value_in_key_order() {
        let link = Uuid::now_v7();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let combination = |referrer, browser, clicks| CombinationDelta {
            link_id: link,
            day,
            values: [referrer, browser, "Linux", "desktop", "DE"],
            clicks,
        };
        let combinations = [
            combination("t.co", "Firefox", 2),
            combination("t.co", "Chrome", 3),
            combination("news.example", "Firefox", 1),
        ];
        let refs: Vec<&CombinationDelta> = combinations.iter().collect();
        let values: Vec<(Dimension, &str, u64)> = per_value_deltas(&refs)
            .iter()
            .map(|v| (v.dimension, v.value, v.clicks))
            .collect();
        use Dimension::*;
        assert_eq!(
            values,
            [
                (Referrer, "news.example", 1),
                (Referrer, "t.co", 5),
                (Browser, "Chrome", 3),
                (Browser, "Firefox", 3),
                (Os, "Linux", 6),
                (Device, "desktop", 6),
                (Country, "DE", 6),
            ]
        );
    }
}
