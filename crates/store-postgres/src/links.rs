//! [`LinkStore`]: links, keyed by domain and code.

use crate::{PgStore, db_error, is_unique_violation, to_i64, unstorable};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hoplink::records::{ClickBudget, LinkQuery};
use hoplink::{
    Error, Link, LinkPatch, LinkSort, LinkStore, Page, RedirectRule, RedirectType, Result,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

pub(crate) const LINK_COLUMNS: &str = "id, short_code, original_url, title, tags, redirect_type, owner_id, created_at, updated_at, expires_at, max_clicks, click_count, is_active, domain, blocked, blocked_reason, redirect_rules::text AS redirect_rules, forward_query, password_hash";

pub(crate) fn link_of(row: &PgRow) -> Result<Link> {
    let status: i16 = row.try_get("redirect_type").map_err(db_error)?;
    let max_clicks: Option<i64> = row.try_get("max_clicks").map_err(db_error)?;
    let click_count: i64 = row.try_get("click_count").map_err(db_error)?;
    Ok(Link {
        id: row.try_get("id").map_err(db_error)?,
        short_code: row.try_get("short_code").map_err(db_error)?,
        original_url: row.try_get("original_url").map_err(db_error)?,
        title: row.try_get("title").map_err(db_error)?,
        tags: row.try_get("tags").map_err(db_error)?,
        redirect_type: RedirectType::try_from(status as u16)?,
        owner_id: row.try_get("owner_id").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        updated_at: row.try_get("updated_at").map_err(db_error)?,
        expires_at: row.try_get("expires_at").map_err(db_error)?,
        max_clicks: max_clicks.map(|n| n.max(0) as u64),
        click_count: click_count.max(0) as u64,
        is_active: row.try_get("is_active").map_err(db_error)?,
        domain: row.try_get("domain").map_err(db_error)?,
        blocked: row.try_get("blocked").map_err(db_error)?,
        blocked_reason: row.try_get("blocked_reason").map_err(db_error)?,
        redirect_rules: rules_of(row)?,
        forward_query: row.try_get("forward_query").map_err(db_error)?,
        password_hash: row.try_get("password_hash").map_err(db_error)?,
    })
}

/// The rules of a row, kept as JSON (`[]` for none).
fn rules_of(row: &PgRow) -> Result<Vec<RedirectRule>> {
    let text: String = row.try_get("redirect_rules").map_err(db_error)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::backend("postgres", format!("redirect_rules of a link: {e}")))
}

fn rules_json(rules: &[RedirectRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[async_trait]
impl LinkStore for PgStore {
    async fn insert(&self, link: &Link) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO links (id, short_code, original_url, title, tags, redirect_type, owner_id, created_at, updated_at, expires_at, max_clicks, click_count, is_active, domain, blocked, blocked_reason, redirect_rules, forward_query, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18, $19)",
        )
        .bind(link.id)
        .bind(&link.short_code)
        .bind(&link.original_url)
        .bind(&link.title)
        .bind(&link.tags)
        .bind(link.redirect_type.status() as i16)
        .bind(link.owner_id)
        .bind(link.created_at)
        .bind(link.updated_at)
        .bind(link.expires_at)
        .bind(link.max_clicks.map(to_i64))
        .bind(to_i64(link.click_count))
        .bind(link.is_active)
        .bind(&link.domain)
        .bind(link.blocked)
        .bind(&link.blocked_reason)
        .bind(rules_json(&link.redirect_rules))
        .bind(link.forward_query)
        .bind(&link.password_hash)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict {
                code: "alias_taken",
                message: format!("short code {:?} is already taken", link.short_code),
            }),
            // The domain's foreign key: no such domain (or it was deleted meanwhile).
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23503") => {
                Err(Error::invalid(
                    "domain",
                    "unknown_domain",
                    "is not a domain of this deployment",
                ))
            }
            Err(e) => Err(db_error(e)),
        }
    }

    async fn get_by_code(&self, domain: Option<&str>, short_code: &str) -> Result<Option<Link>> {
        if unstorable(short_code) || domain.is_some_and(unstorable) {
            return Ok(None);
        }
        // coalesce(domain, '') is the key of the unique index links_domain_code.
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE coalesce(domain, '') = $1 AND short_code = $2"
        );
        self.optional_link(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(domain.unwrap_or_default())
                .bind(short_code),
        )
        .await
    }

    async fn get(&self, id: Uuid) -> Result<Option<Link>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE id = $1");
        self.optional_link(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id))
            .await
    }

    async fn list(&self, query: &LinkQuery) -> Result<Page<Link>> {
        if [&query.tag, &query.text]
            .into_iter()
            .flatten()
            .any(|t| unstorable(t))
        {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let limit = i64::from(query.limit.max(1));
        // Only the filters a query sets are in its statement, so each shape of listing
        // gets a plan that uses its index.
        let mut sql = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE true"
        ));
        if let Some(owner) = query.owner_id {
            sql.push(" AND owner_id = ").push_bind(owner);
        }
        match &query.domain {
            None => {}
            Some(None) => {
                sql.push(" AND domain IS NULL");
            }
            Some(Some(host)) => {
                sql.push(" AND domain = ").push_bind(host.clone());
            }
        }
        if let Some(blocked) = query.blocked {
            sql.push(" AND blocked = ").push_bind(blocked);
        }
        match (query.sort, query.cursor) {
            (_, None) => {}
            (LinkSort::Newest, Some(cursor)) => {
                sql.push(" AND (created_at, id) < (")
                    .push_bind(cursor.created_at)
                    .push(", ")
                    .push_bind(cursor.id)
                    .push(")");
            }
            (LinkSort::Clicks, Some(cursor)) => {
                let clicks = cursor.clicks.map_or(i64::MAX, to_i64);
                sql.push(" AND (click_count, id) < (")
                    .push_bind(clicks)
                    .push(", ")
                    .push_bind(cursor.id)
                    .push(")");
            }
        }
        if let Some(tag) = &query.tag {
            sql.push(" AND ")
                .push_bind(tag.clone())
                .push(" = ANY(tags)");
        }
        if let Some(text) = &query.text {
            let pattern = escape_like(text);
            sql.push(" AND (original_url ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR title ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR short_code ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
        sql.push(match query.sort {
            LinkSort::Newest => " ORDER BY created_at DESC, id DESC LIMIT ",
            LinkSort::Clicks => " ORDER BY click_count DESC, id DESC LIMIT ",
        })
        .push_bind(limit + 1);
        let rows = sql.build().fetch_all(&self.pool).await.map_err(db_error)?;
        let mut items = rows.iter().map(link_of).collect::<Result<Vec<_>>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|l| hoplink::Cursor::after(l, query.sort))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn update(
        &self,
        id: Uuid,
        patch: &LinkPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>> {
        // Each column is set only when the patch names it; nullable ones can be cleared.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE links SET
                original_url  = CASE WHEN $2 THEN $3 ELSE original_url END,
                expires_at    = CASE WHEN $4 THEN $5 ELSE expires_at END,
                max_clicks    = CASE WHEN $6 THEN $7 ELSE max_clicks END,
                redirect_type = CASE WHEN $8 THEN $9 ELSE redirect_type END,
                title         = CASE WHEN $10 THEN $11 ELSE title END,
                tags          = CASE WHEN $12 THEN $13 ELSE tags END,
                is_active     = CASE WHEN $14 THEN $15 ELSE is_active END,
                updated_at    = $16,
                blocked       = CASE WHEN $17 THEN $18 ELSE blocked END,
                blocked_reason = CASE WHEN $19 THEN $20 ELSE blocked_reason END,
                redirect_rules = CASE WHEN $21 THEN $22::jsonb ELSE redirect_rules END,
                forward_query = CASE WHEN $23 THEN $24 ELSE forward_query END,
                password_hash = CASE WHEN $25 THEN $26 ELSE password_hash END
             WHERE id = $1
             RETURNING {LINK_COLUMNS}"
        )))
        .bind(id)
        .bind(patch.original_url.is_some())
        .bind(patch.original_url.as_deref().unwrap_or_default())
        .bind(patch.expires_at.is_some())
        .bind(patch.expires_at.flatten())
        .bind(patch.max_clicks.is_some())
        .bind(patch.max_clicks.flatten().map(to_i64))
        .bind(patch.redirect_type.is_some())
        .bind(patch.redirect_type.unwrap_or_default().status() as i16)
        .bind(patch.title.is_some())
        .bind(patch.title.clone().flatten())
        .bind(patch.tags.is_some())
        .bind(patch.tags.clone().unwrap_or_default())
        .bind(patch.is_active.is_some())
        .bind(patch.is_active.unwrap_or(true))
        .bind(now)
        .bind(patch.blocked.is_some())
        .bind(patch.blocked.unwrap_or(false))
        .bind(patch.blocked_reason.is_some())
        .bind(patch.blocked_reason.clone().flatten())
        .bind(patch.redirect_rules.is_some())
        .bind(rules_json(
            patch.redirect_rules.as_deref().unwrap_or_default(),
        ))
        .bind(patch.forward_query.is_some())
        .bind(patch.forward_query.unwrap_or(false))
        .bind(patch.password_hash.is_some())
        .bind(patch.password_hash.clone().flatten())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(link_of).transpose()
    }

    async fn delete(&self, id: Uuid) -> Result<Option<Link>> {
        let sql = format!("DELETE FROM links WHERE id = $1 RETURNING {LINK_COLUMNS}");
        self.optional_link(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id))
            .await
    }

    async fn consume_click(&self, id: Uuid) -> Result<ClickBudget> {
        // One conditional update: the row lock makes concurrent clicks queue, and the
        // condition stops the count at max_clicks exactly.
        let counted = sqlx::query(
            "UPDATE links SET click_count = click_count + 1
             WHERE id = $1 AND (max_clicks IS NULL OR click_count < max_clicks)",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        if counted.rows_affected() == 1 {
            return Ok(ClickBudget::Counted);
        }
        let exists = sqlx::query("SELECT 1 FROM links WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(if exists.is_some() {
            ClickBudget::Exhausted
        } else {
            ClickBudget::Missing
        })
    }

    async fn health(&self) -> Result<()> {
        self.ping().await
    }
}
