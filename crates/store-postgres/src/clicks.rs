//! The raw click log: a table partitioned by day of the event ids (UUIDv7, whose first
//! 48 bits are the Unix time in milliseconds), paged by id, pruned by dropping whole
//! partitions.

use crate::db_error;
use chrono::{DateTime, Days, NaiveDate, Utc};
use hoplink::records::ClickQuery;
use hoplink::{Click, Error, Result};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Days of partitions kept ready after today: the hourly prune makes the next ones, and
/// clicks of a day without its partition land in the default one (found, only not
/// dropped with a partition), so a few days suffice and a start stays light.
const DAYS_AHEAD: u64 = 2;
/// How far the id of a click may run ahead of its time (the forwarder stamps ids with the
/// click's own millisecond; earlier releases stamped them a moment after the click): an
/// upper bound on ids in a time filter, for partition pruning.
const ID_SLACK_MS: i64 = 3_600_000;

/// The smallest UUIDv7 of millisecond `ms`.
fn id_floor(ms: i64) -> Uuid {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

fn day_floor(day: NaiveDate) -> Uuid {
    id_floor(
        day.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()),
    )
}

fn partition_name(day: NaiveDate) -> String {
    format!("clicks_p{}", day.format("%Y%m%d"))
}

fn day_of_partition(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("clicks_p")?, "%Y%m%d").ok()
}

/// The partitions of `clicks` in the current schema, by day.
async fn partitions(conn: &mut sqlx::PgConnection) -> Result<Vec<NaiveDate>> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
         WHERE p.relname = 'clicks' AND p.relnamespace = current_schema()::regnamespace",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>("name").ok())
        .filter_map(|n| day_of_partition(&n))
        .collect())
}

/// Creates the partitions of `today - 1` to `today + DAYS_AHEAD` that are missing. One
/// instance at a time (an advisory lock), so instances starting together don't race.
pub(crate) async fn ensure_partitions(pool: &PgPool, today: NaiveDate) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.clicks partitions'))")
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    let existing = partitions(&mut tx).await?;
    let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    for day in first.iter_days().take(DAYS_AHEAD as usize + 2) {
        if existing.contains(&day) {
            continue;
        }
        let next = day.succ_opt().unwrap_or(day);
        // Names and bounds are made here from dates, never from input.
        let sql = format!(
            "CREATE TABLE {} PARTITION OF clicks FOR VALUES FROM ('{}') TO ('{}')",
            partition_name(day),
            day_floor(day),
            day_floor(next)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}

/// Drops the partitions of days before `before`'s day, deletes older rows from the
/// default partition, and makes sure the coming days have partitions. Returns the
/// partitions dropped.
pub(crate) async fn prune(pool: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    ensure_partitions(pool, Utc::now().date_naive()).await?;
    let cutoff = before.date_naive();
    let mut conn = pool.acquire().await.map_err(db_error)?;
    let mut dropped = 0;
    for day in partitions(&mut conn).await? {
        if day < cutoff {
            let sql = format!("DROP TABLE IF EXISTS {}", partition_name(day));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            dropped += 1;
        }
    }
    sqlx::query("DELETE FROM clicks_default WHERE at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(dropped)
}

/// A page of one link's clicks, newest first.
pub(crate) async fn page(pool: &PgPool, query: &ClickQuery) -> Result<Vec<Click>> {
    let newest = query.after.unwrap_or(Uuid::max());
    let newest = match query.to {
        Some(to) => newest.min(id_floor(to.timestamp_millis() + ID_SLACK_MS)),
        None => newest,
    };
    let oldest = query
        .from
        .map_or(Uuid::nil(), |from| id_floor(from.timestamp_millis()));
    let rows = sqlx::query(
        "SELECT event_id, at, bot, referrer, browser, os, device, country, visitor FROM clicks
         WHERE link_id = $1 AND event_id < $2 AND event_id >= $3
           AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)
         ORDER BY event_id DESC LIMIT $6",
    )
    .bind(query.link_id)
    .bind(newest)
    .bind(oldest)
    .bind(query.from)
    .bind(query.to)
    .bind(i64::from(query.limit.max(1)))
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(Click {
                id: r.try_get("event_id").map_err(db_error)?,
                at: r.try_get("at").map_err(db_error)?,
                bot: r.try_get("bot").map_err(db_error)?,
                referrer: r.try_get("referrer").map_err(db_error)?,
                browser: r.try_get("browser").map_err(db_error)?,
                os: r.try_get("os").map_err(db_error)?,
                device: r.try_get("device").map_err(db_error)?,
                country: r.try_get("country").map_err(db_error)?,
                visitor: r.try_get("visitor").map_err(db_error)?,
            })
        })
        .collect::<std::result::Result<Vec<_>, Error>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_a_range_of_v7_ids() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let lo = day_floor(day);
        let hi = day_floor(day.succ_opt().unwrap());
        let noon = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp() as u64,
            0,
        ));
        assert!(lo <= noon && noon < hi);
        assert_eq!(lo.get_version_num(), 7);
        assert_eq!(day_of_partition(&partition_name(day)), Some(day));
    }
}
