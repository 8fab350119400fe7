//! [`DomainStore`] and [`ModerationStore`]: short domains, the host blocklist and abuse
//! reports.

use crate::{PgStore, db_error, is_unique_violation};
use async_trait::async_trait;
use hoplink::records::DomainDeletion;
use hoplink::{
    BlockedHost, Cursor, Domain, DomainPatch, DomainStore, Error, ModerationStore, Page, Report,
    ReportReason, ReportStatus, Result,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

const DOMAIN_COLUMNS: &str = "host, root_redirect, not_found_redirect, gone_redirect, created_at";

fn domain_of(row: &PgRow) -> Result<Domain> {
    Ok(Domain {
        host: row.try_get("host").map_err(db_error)?,
        is_default: false,
        root_redirect: row.try_get("root_redirect").map_err(db_error)?,
        not_found_redirect: row.try_get("not_found_redirect").map_err(db_error)?,
        gone_redirect: row.try_get("gone_redirect").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

#[async_trait]
impl DomainStore for PgStore {
    async fn list_domains(&self) -> Result<Vec<Domain>> {
        let sql = format!("SELECT {DOMAIN_COLUMNS} FROM domains ORDER BY created_at, host");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(domain_of).collect()
    }

    async fn insert_domain(&self, domain: &Domain) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO domains (host, root_redirect, not_found_redirect, gone_redirect, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&domain.host)
        .bind(&domain.root_redirect)
        .bind(&domain.not_found_redirect)
        .bind(&domain.gone_redirect)
        .bind(domain.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict {
                code: "domain_exists",
                message: format!("domain {:?} exists", domain.host),
            }),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn update_domain(&self, host: &str, patch: &DomainPatch) -> Result<Option<Domain>> {
        let sql = format!(
            "UPDATE domains SET
                root_redirect      = CASE WHEN $2 THEN $3 ELSE root_redirect END,
                not_found_redirect = CASE WHEN $4 THEN $5 ELSE not_found_redirect END,
                gone_redirect      = CASE WHEN $6 THEN $7 ELSE gone_redirect END
             WHERE host = $1
             RETURNING {DOMAIN_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(host)
            .bind(patch.root_redirect.is_some())
            .bind(patch.root_redirect.clone().flatten())
            .bind(patch.not_found_redirect.is_some())
            .bind(patch.not_found_redirect.clone().flatten())
            .bind(patch.gone_redirect.is_some())
            .bind(patch.gone_redirect.clone().flatten())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(domain_of).transpose()
    }

    async fn delete_domain(&self, host: &str) -> Result<DomainDeletion> {
        // The foreign key of links.domain makes this atomic with inserts of links on it.
        let result = sqlx::query("DELETE FROM domains WHERE host = $1")
            .bind(host)
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(DomainDeletion::Deleted),
            Ok(_) => Ok(DomainDeletion::Missing),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => {
                Ok(DomainDeletion::InUse)
            }
            Err(e) => Err(db_error(e)),
        }
    }
}

fn blocked_host_of(row: &PgRow) -> Result<BlockedHost> {
    Ok(BlockedHost {
        id: row.try_get("id").map_err(db_error)?,
        pattern: row.try_get("pattern").map_err(db_error)?,
        reason: row.try_get("reason").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

const REPORT_COLUMNS: &str = "id, link_id, reason, details, status, reporter_id, created_at";

fn report_of(row: &PgRow) -> Result<Report> {
    let unknown = |what: &str, value: &str| {
        Error::backend("postgres", format!("unknown report {what} {value:?}"))
    };
    let reason: String = row.try_get("reason").map_err(db_error)?;
    let status: String = row.try_get("status").map_err(db_error)?;
    Ok(Report {
        id: row.try_get("id").map_err(db_error)?,
        link_id: row.try_get("link_id").map_err(db_error)?,
        reason: ReportReason::parse(&reason).ok_or_else(|| unknown("reason", &reason))?,
        details: row.try_get("details").map_err(db_error)?,
        status: ReportStatus::parse(&status).ok_or_else(|| unknown("status", &status))?,
        reporter_id: row.try_get("reporter_id").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

#[async_trait]
impl ModerationStore for PgStore {
    async fn list_blocked_hosts(&self) -> Result<Vec<BlockedHost>> {
        let rows = sqlx::query(
            "SELECT id, pattern, reason, created_at FROM blocked_hosts ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(blocked_host_of).collect()
    }

    async fn insert_blocked_host(&self, host: &BlockedHost) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO blocked_hosts (id, pattern, reason, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(host.id)
        .bind(&host.pattern)
        .bind(&host.reason)
        .bind(host.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict {
                code: "pattern_exists",
                message: format!("{:?} is on the blocklist", host.pattern),
            }),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn delete_blocked_host(&self, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM blocked_hosts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_report(&self, report: &Report) -> Result<()> {
        sqlx::query(
            "INSERT INTO reports (id, link_id, reason, details, status, reporter_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(report.id)
        .bind(report.link_id)
        .bind(report.reason.as_str())
        .bind(&report.details)
        .bind(report.status.as_str())
        .bind(report.reporter_id)
        .bind(report.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn list_reports(
        &self,
        status: ReportStatus,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<Report>> {
        let limit = i64::from(limit.max(1));
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM reports
             WHERE status = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(cursor.map(|c| c.created_at))
            .bind(cursor.map(|c| c.id))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut items = rows.iter().map(report_of).collect::<Result<Vec<_>>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|r| Cursor {
                created_at: r.created_at,
                id: r.id,
                clicks: None,
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn set_report_status(&self, id: Uuid, status: ReportStatus) -> Result<Option<Report>> {
        let sql =
            format!("UPDATE reports SET status = $2 WHERE id = $1 RETURNING {REPORT_COLUMNS}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(status.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(report_of).transpose()
    }
}
