//! [`WebhookStore`]: webhooks, their delivery jobs and the log of attempts. Jobs survive
//! restarts; instances claim them with `FOR UPDATE SKIP LOCKED` and a lease.

use crate::{PgStore, db_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hoplink::webhooks::{
    DELIVERY_LOG, DISABLE_AFTER, Delivery, DeliveryJob, EnqueueOutcome, Webhook, WebhookEvent,
    WebhookPatch, WebhookRecord,
};
use hoplink::{Error, Result, WebhookStore};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

const COLUMNS: &str =
    "id, owner_id, url, events, description, enabled, failures, secret, created_at";
const JOB_COLUMNS: &str = "id, webhook_id, event_id, event, payload, attempt, due_at";

fn event_of(name: &str) -> Result<WebhookEvent> {
    WebhookEvent::parse(name)
        .ok_or_else(|| Error::backend("postgres", format!("unknown webhook event {name:?}")))
}

fn names(events: &[WebhookEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.as_str()).collect()
}

fn record_of(row: &PgRow) -> Result<WebhookRecord> {
    let events: Vec<String> = row.try_get("events").map_err(db_error)?;
    Ok(WebhookRecord {
        webhook: Webhook {
            id: row.try_get("id").map_err(db_error)?,
            owner_id: row.try_get("owner_id").map_err(db_error)?,
            url: row.try_get("url").map_err(db_error)?,
            events: events.iter().map(|e| event_of(e)).collect::<Result<_>>()?,
            description: row.try_get("description").map_err(db_error)?,
            enabled: row.try_get("enabled").map_err(db_error)?,
            failures: row.try_get::<i32, _>("failures").map_err(db_error)?.max(0) as u32,
            created_at: row.try_get("created_at").map_err(db_error)?,
        },
        secret: row.try_get("secret").map_err(db_error)?,
    })
}

fn job_of(row: &PgRow) -> Result<DeliveryJob> {
    Ok(DeliveryJob {
        id: row.try_get("id").map_err(db_error)?,
        webhook_id: row.try_get("webhook_id").map_err(db_error)?,
        event_id: row.try_get("event_id").map_err(db_error)?,
        event: event_of(row.try_get("event").map_err(db_error)?)?,
        payload: row.try_get("payload").map_err(db_error)?,
        attempt: row.try_get::<i32, _>("attempt").map_err(db_error)?.max(0) as u32,
        due_at: row.try_get("due_at").map_err(db_error)?,
    })
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn insert_webhook(&self, record: &WebhookRecord) -> Result<()> {
        let w = &record.webhook;
        sqlx::query(
            "INSERT INTO webhooks (id, owner_id, url, events, description, enabled, failures, secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(w.id)
        .bind(w.owner_id)
        .bind(&w.url)
        .bind(names(&w.events))
        .bind(&w.description)
        .bind(w.enabled)
        .bind(i32::try_from(w.failures).unwrap_or(i32::MAX))
        .bind(&record.secret)
        .bind(w.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn webhooks(&self, owner_id: Uuid) -> Result<Vec<WebhookRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(record_of).collect()
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(record_of).transpose()
    }

    async fn update_webhook(
        &self,
        id: Uuid,
        patch: &WebhookPatch,
    ) -> Result<Option<WebhookRecord>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 FOR UPDATE");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let mut record = record_of(&row)?;
        patch.apply(&mut record.webhook);
        let w = &record.webhook;
        sqlx::query(
            "UPDATE webhooks SET url = $2, events = $3, description = $4, enabled = $5, failures = $6
             WHERE id = $1",
        )
        .bind(id)
        .bind(&w.url)
        .bind(names(&w.events))
        .bind(&w.description)
        .bind(w.enabled)
        .bind(i32::try_from(w.failures).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(record))
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn subscribed(
        &self,
        owner_id: Option<Uuid>,
        event: WebhookEvent,
    ) -> Result<Vec<WebhookRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks
             WHERE enabled AND $1 = ANY(events) AND ($2::uuid IS NULL OR owner_id = $2)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(event.as_str())
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(record_of).collect()
    }

    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<EnqueueOutcome> {
        if jobs.is_empty() {
            return Ok(EnqueueOutcome::default());
        }
        let col = |f: fn(&DeliveryJob) -> Uuid| jobs.iter().map(f).collect::<Vec<Uuid>>();
        let done = sqlx::query(
            "INSERT INTO webhook_jobs (id, webhook_id, event_id, event, payload, attempt, due_at)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                                  $6::int[], $7::timestamptz[])
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(col(|j| j.id))
        .bind(col(|j| j.webhook_id))
        .bind(col(|j| j.event_id))
        .bind(jobs.iter().map(|j| j.event.as_str()).collect::<Vec<_>>())
        .bind(jobs.iter().map(|j| j.payload.clone()).collect::<Vec<_>>())
        .bind(
            jobs.iter()
                .map(|j| i32::try_from(j.attempt).unwrap_or(i32::MAX))
                .collect::<Vec<_>>(),
        )
        .bind(jobs.iter().map(|j| j.due_at).collect::<Vec<_>>())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        let queued = done.rows_affected();
        Ok(EnqueueOutcome {
            queued,
            duplicates: jobs.len() as u64 - queued.min(jobs.len() as u64),
            dropped: 0,
        })
    }

    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        // Jobs of disabled webhooks go first, so they are never handed out.
        sqlx::query(
            "DELETE FROM webhook_jobs j USING webhooks w
             WHERE j.webhook_id = w.id AND NOT w.enabled AND j.due_at <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let sql = format!(
            "WITH due AS (
                 SELECT id, due_at FROM webhook_jobs WHERE due_at <= $1
                 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE webhook_jobs j SET due_at = $3 FROM due WHERE j.id = due.id
                 RETURNING j.id, j.webhook_id, j.event_id, j.event, j.payload, j.attempt, due.due_at
             )
             SELECT {JOB_COLUMNS} FROM claimed c
             WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = c.webhook_id AND w.enabled)
             ORDER BY due_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(until)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(job_of).collect()
    }

    async fn finish_job(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Webhook>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, attempt, status_code, error, at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $2)",
        )
        .bind(delivery.id)
        .bind(delivery.webhook_id)
        .bind(delivery.event_id)
        .bind(delivery.event.as_str())
        .bind(i32::try_from(delivery.attempt).unwrap_or(i32::MAX))
        .bind(delivery.status_code.map(i32::from))
        .bind(&delivery.error)
        .bind(delivery.at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND id IN (
                 SELECT id FROM webhook_deliveries WHERE webhook_id = $1
                 ORDER BY at DESC, id DESC OFFSET $2)",
        )
        .bind(job.webhook_id)
        .bind(DELIVERY_LOG as i64)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let sql = format!(
            "UPDATE webhooks SET
                 failures = CASE WHEN $2 THEN 0 ELSE failures + 1 END,
                 enabled = enabled AND ($2 OR failures + 1 < $3)
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job.webhook_id)
            .bind(delivery.succeeded())
            .bind(i32::try_from(DISABLE_AFTER).unwrap_or(i32::MAX))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        match retry_at {
            Some(at) => {
                sqlx::query("UPDATE webhook_jobs SET attempt = $2, due_at = $3 WHERE id = $1")
                    .bind(job.id)
                    .bind(i32::try_from(job.attempt + 1).unwrap_or(i32::MAX))
                    .bind(at)
            }
            None => sqlx::query("DELETE FROM webhook_jobs WHERE id = $1").bind(job.id),
        }
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        row.as_ref()
            .map(|r| record_of(r).map(|r| r.webhook))
            .transpose()
    }

    async fn deliveries(&self, webhook_id: Uuid, limit: usize) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, webhook_id, event_id, event, attempt, status_code, error, at
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(webhook_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get("id").map_err(db_error)?,
                    webhook_id: row.try_get("webhook_id").map_err(db_error)?,
                    event_id: row.try_get("event_id").map_err(db_error)?,
                    event: event_of(row.try_get("event").map_err(db_error)?)?,
                    attempt: row.try_get::<i32, _>("attempt").map_err(db_error)?.max(0) as u32,
                    status_code: row
                        .try_get::<Option<i32>, _>("status_code")
                        .map_err(db_error)?
                        .and_then(|s| u16::try_from(s).ok()),
                    error: row.try_get("error").map_err(db_error)?,
                    at: row.try_get("at").map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn pending_jobs(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_jobs")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(n.max(0) as u64)
    }
}
