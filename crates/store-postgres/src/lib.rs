//! PostgreSQL backend for hoplink: [`LinkStore`], [`UserStore`], [`AnalyticsStore`] and
//! [`IdAllocator`] over sqlx.
//!
//! ```no_run
//! # async fn demo() -> hoplink::Result<()> {
//! use std::sync::Arc;
//! let store = Arc::new(hoplink_postgres::PgStore::connect("postgres://localhost/hoplink").await?);
//! let shortener = hoplink::Shortener::builder()
//!     .store(store.clone())
//!     .id_allocator(store)
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! - The schema is embedded as sqlx migrations and applied by [`PgStore::connect`];
//!   several instances starting at once are serialised by sqlx's advisory lock.
//! - Uniqueness (codes, case-insensitive emails, event ids) is enforced by the database;
//!   a unique violation becomes [`hoplink::Error::Conflict`]. Every code ever taken stays
//!   in `reserved_codes` (in lower case), kept by a trigger on `links`, so a deleted
//!   link's code is never given again and no two codes differ only by case.
//! - Clicks are written one batch per statement (`UNNEST` arrays into data-modifying
//!   CTEs): de-duplication by event id, daily rollups, unique visitors, breakdowns and
//!   `click_count` change together or not at all.
//! - Ids come from a sequence, one `nextval` per block of 1,000.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hoplink::records::{
    ApiKeyRecord, ClassifiedClick, ClickBudget, DailyRollup, Dimension, LinkQuery, RecordOutcome,
    RefreshTokenRecord, RollupWindow, RotateOutcome, Rotation, UserRecord,
};
use hoplink::{AnalyticsStore, Error, IdAllocator, LinkStore, RedirectType, Result, UserStore};
use hoplink::{ApiKey, Link, LinkPatch, Page, User, ValueCount};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// Ids per `nextval` of the `id_blocks` sequence.
pub const ID_BLOCK: u64 = 1000;

/// Pool and timeout settings.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Most connections in the pool of links, users and summaries (default 10).
    pub max_connections: u32,
    /// Most connections of the separate pool that records click analytics (default 5):
    /// a busy ingest never makes link writes, logins or cold redirects wait for a
    /// connection.
    pub analytics_connections: u32,
    /// Longest wait for a connection (default 3 s): past it, calls fail as unavailable.
    pub acquire_timeout: Duration,
    /// `statement_timeout` of every connection (default 5 s).
    pub statement_timeout: Duration,
    /// Schema to use (created if missing), for isolated tests; default `public`.
    pub schema: Option<String>,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            max_connections: 10,
            analytics_connections: 5,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// Links, users, analytics and id blocks in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Only [`AnalyticsStore::record`] uses it.
    analytics_pool: PgPool,
}

fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => Error::unavailable("postgres", e),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("57014") => {
            Error::unavailable("postgres", "statement timed out")
        }
        // Text PostgreSQL can't store (a NUL character): bad input, not a failure.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22021") => {
            Error::invalid("text", "invalid_text", "must not contain NUL characters")
        }
        // Deadlock or serialization failure: the same call can succeed when retried.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")) => {
            Error::unavailable("postgres", e.to_string())
        }
        _ => Error::backend("postgres", e),
    }
}

/// Text no stored value can hold: PostgreSQL refuses NUL in `text`, so lookups of it find
/// nothing instead of failing.
fn unstorable(text: &str) -> bool {
    text.contains('\0')
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects with default settings and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgSettings::default()).await
    }

    /// Connects and applies the migrations.
    pub async fn connect_with(url: &str, settings: PgSettings) -> Result<Self> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database_url", "invalid_database_url", e.to_string()))?;
        let timeout_ms = settings.statement_timeout.as_millis().to_string();
        options = options.options([("statement_timeout", timeout_ms.as_str())]);
        if let Some(schema) = &settings.schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(Error::invalid(
                    "schema",
                    "invalid_schema",
                    "letters, digits and _ only",
                ));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.clone())
                .await
                .map_err(|e| Error::unavailable("postgres", format!("cannot connect: {e}")))?;
            let created = sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&admin)
            .await;
            // Two instances creating the schema at once: IF NOT EXISTS still races in
            // PostgreSQL's catalog, and losing that race is fine.
            match created {
                Err(e) if !is_unique_violation(&e) => return Err(db_error(e)),
                _ => {}
            }
            admin.close().await;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::unavailable("postgres", format!("cannot connect: {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| Error::backend("postgres", format!("migration failed: {e}")))?;
        // Connects on first use: the main pool just proved the database is there.
        let analytics_pool = PgPoolOptions::new()
            .max_connections(settings.analytics_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            analytics_pool,
        })
    }

    /// The pool, for callers that need raw access (benchmarks, maintenance).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs a query that yields at most one link row.
    async fn optional_link(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<Link>> {
        let row = query.fetch_optional(&self.pool).await.map_err(db_error)?;
        row.as_ref().map(link_of).transpose()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

const LINK_COLUMNS: &str = "id, short_code, original_url, title, tags, redirect_type, owner_id, created_at, updated_at, expires_at, max_clicks, click_count, is_active";

fn link_of(row: &PgRow) -> Result<Link> {
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
    })
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
            "INSERT INTO links (id, short_code, original_url, title, tags, redirect_type, owner_id, created_at, updated_at, expires_at, max_clicks, click_count, is_active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict {
                code: "alias_taken",
                message: format!("short code {:?} is already taken", link.short_code),
            }),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn get_by_code(&self, short_code: &str) -> Result<Option<Link>> {
        if unstorable(short_code) {
            return Ok(None);
        }
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE short_code = $1");
        self.optional_link(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(short_code))
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LINK_COLUMNS} FROM links
             WHERE owner_id = $1
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
               AND ($4::text IS NULL OR $4 = ANY(tags))
               AND ($5::text IS NULL OR original_url ILIKE $5 OR title ILIKE $5 OR short_code ILIKE $5)
             ORDER BY created_at DESC, id DESC
             LIMIT $6"
        )))
        .bind(query.owner_id)
        .bind(query.cursor.map(|c| c.created_at))
        .bind(query.cursor.map(|c| c.id))
        .bind(&query.tag)
        .bind(query.text.as_deref().map(escape_like))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let mut items = rows.iter().map(link_of).collect::<Result<Vec<_>>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(hoplink::Cursor::after)
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
                updated_at    = $16
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

fn user_of(row: &PgRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id").map_err(db_error)?,
        email: row.try_get("email").map_err(db_error)?,
        full_name: row.try_get("full_name").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

fn api_key_of(row: &PgRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id").map_err(db_error)?,
        user_id: row.try_get("user_id").map_err(db_error)?,
        name: row.try_get("name").map_err(db_error)?,
        prefix: row.try_get("prefix").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
    })
}

fn refresh_of(row: &PgRow) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        id: row.try_get("id").map_err(db_error)?,
        user_id: row.try_get("user_id").map_err(db_error)?,
        family_id: row.try_get("family_id").map_err(db_error)?,
        token_hash: row.try_get("token_hash").map_err(db_error)?,
        created_at: row.try_get("created_at").map_err(db_error)?,
        expires_at: row.try_get("expires_at").map_err(db_error)?,
    })
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, record: &UserRecord) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, full_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(record.user.id)
        .bind(&record.user.email)
        .bind(&record.user.full_name)
        .bind(&record.password_hash)
        .bind(record.user.created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::Conflict {
                code: "email_taken",
                message: "a user with this email already exists".into(),
            }),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        if unstorable(email) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT id, email, full_name, created_at, password_hash FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.map(|r| {
            Ok(UserRecord {
                user: user_of(&r)?,
                password_hash: r.try_get("password_hash").map_err(db_error)?,
            })
        })
        .transpose()
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, email, full_name, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(user_of).transpose()
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, id, user_id, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.token_hash)
        .bind(token.id)
        .bind(token.user_id)
        .bind(token.family_id)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RotateOutcome> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // The row lock serialises concurrent rotations of one token.
        let row = sqlx::query(
            "SELECT t.user_id, t.family_id, t.used, t.used_at, t.successor, t.expires_at,
                    (r.family_id IS NOT NULL) AS revoked
             FROM refresh_tokens t LEFT JOIN revoked_families r USING (family_id)
             WHERE t.token_hash = $1 FOR UPDATE OF t",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(RotateOutcome::Invalid);
        };
        let user_id: Uuid = row.try_get("user_id").map_err(db_error)?;
        let family_id: Uuid = row.try_get("family_id").map_err(db_error)?;
        let used: bool = row.try_get("used").map_err(db_error)?;
        let used_at: Option<DateTime<Utc>> = row.try_get("used_at").map_err(db_error)?;
        let successor: Option<Vec<u8>> = row.try_get("successor").map_err(db_error)?;
        let expires_at: DateTime<Utc> = row.try_get("expires_at").map_err(db_error)?;
        let revoked: bool = row.try_get("revoked").map_err(db_error)?;
        if revoked {
            return Ok(RotateOutcome::Invalid);
        }
        if used {
            // Rotated moments ago (and by this version, which keeps the successor): the
            // same successor again.
            if let (Some(at), Some(sealed)) = (used_at, successor)
                && rotation.now - at <= rotation.grace
            {
                return Ok(RotateOutcome::Recent {
                    user_id,
                    sealed_successor: sealed,
                });
            }
            sqlx::query(
                "INSERT INTO revoked_families (family_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(family_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            return Ok(RotateOutcome::Reused);
        }
        if expires_at <= rotation.now {
            return Ok(RotateOutcome::Invalid);
        }
        sqlx::query(
            "UPDATE refresh_tokens SET used = true, used_at = $2, successor = $3 WHERE token_hash = $1",
        )
        .bind(old_hash)
        .bind(rotation.now)
        .bind(rotation.sealed_successor)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let new = rotation.new;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, id, user_id, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&new.token_hash)
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.family_id)
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(RotateOutcome::Rotated { user_id })
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT token_hash, id, user_id, family_id, created_at, expires_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(refresh_of).transpose()
    }

    async fn revoke_family(&self, family_id: Uuid) -> Result<()> {
        sqlx::query("INSERT INTO revoked_families (family_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(family_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn family_active(&self, family_id: Uuid) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_families WHERE family_id = $1")
            .bind(family_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(row.is_none())
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(key.key.id)
            .bind(key.key.user_id)
            .bind(&key.key.name)
            .bind(&key.key.prefix)
            .bind(&key.key_hash)
            .bind(key.key.created_at)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT id, user_id, name, prefix, created_at FROM api_keys WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.as_ref().map(api_key_of).transpose()
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT id, user_id, name, prefix, created_at FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(api_key_of).collect()
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(key_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn health(&self) -> Result<()> {
        self.ping().await
    }
}

/// Most events per statement of [`AnalyticsStore::record`].
const RECORD_CHUNK: usize = 100;

/// Most parameter bytes per statement of [`AnalyticsStore::record`]: sqlx 0.9.0 leaves
/// Nagle's algorithm on (launchbadge/sqlx#4335), and a statement whose parameters pass
/// ~16 KB waits ~40 ms for the server's delayed ACK.
const RECORD_CHUNK_BYTES: usize = 15_000;

/// What a click adds to a statement's parameters (binary array elements: a 4-byte
/// length each, then the value).
fn parameter_bytes(click: &ClassifiedClick) -> usize {
    let fixed = 4 * 11 + 16 + 16 + 4 + 1 + 1;
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

/// One statement records a chunk of a batch: the inserted event ids decide which clicks are
/// new, and every table is modified once (data-modifying CTEs see one snapshot).
const RECORD_BATCH: &str = "
WITH input AS (
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::date[], $4::text[], $5::bool[],
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[])
        AS t(event_id, link_id, day, visitor, is_bot, referrer, browser, os, device, country, counted)
),
fresh_ids AS (
    INSERT INTO click_events (event_id, day)
    SELECT DISTINCT ON (event_id) event_id, day FROM input ORDER BY event_id
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
        .bind(chunk.iter().map(|c| c.day).collect::<Vec<_>>())
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

#[async_trait]
impl IdAllocator for PgStore {
    async fn allocate(&self, count: u64) -> Result<Range<u64>> {
        if count > ID_BLOCK {
            return Err(Error::invalid(
                "count",
                "invalid_count",
                format!("blocks hold at most {ID_BLOCK} ids"),
            ));
        }
        let block: i64 = sqlx::query_scalar("SELECT nextval('id_blocks')")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let start = (block.max(0) as u64) * ID_BLOCK;
        Ok(start..start + count)
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
