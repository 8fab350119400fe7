//! PostgreSQL backend for hoplink: [`LinkStore`], [`UserStore`], [`AnalyticsStore`],
//! [`DomainStore`], [`ModerationStore`] and [`IdAllocator`] over sqlx.
//!
//! [`LinkStore`]: hoplink::LinkStore
//! [`UserStore`]: hoplink::UserStore
//! [`AnalyticsStore`]: hoplink::AnalyticsStore
//! [`DomainStore`]: hoplink::DomainStore
//! [`ModerationStore`]: hoplink::ModerationStore
//! [`IdAllocator`]: hoplink::IdAllocator
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
//! - A batch of clicks is split into groups of links, each written in one transaction
//!   on its own connection: the click log rows (`UNNEST` arrays; the event id is the
//!   key, so a redelivered click comes back as already there), then, for the new clicks
//!   only, folded in memory ([`hoplink::records::ClickFold`]), the unique visitors, daily
//!   rollups, breakdowns (one row per combination of values, up to [`COMBINATION_ROWS`]
//!   a link-day, then one per value) and `click_count`.
//! - Ids come from a sequence, one `nextval` per block of 1,000.

mod analytics;
mod breakdowns;
mod clicks;
mod ids;
mod links;
mod moderation;
mod nodelay;
mod users;
mod webhooks;

pub use breakdowns::COMBINATION_ROWS;
use hoplink::{Error, Link, Result};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The schema's migrations, applied by [`PgStore::connect`] (for tools and tests that
/// apply them themselves).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

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
    /// Groups of links a batch of clicks is recorded in side by side (one connection each).
    record_groups: usize,
    /// Set once any connection keeps Nagle's algorithm on ([`nodelay`]).
    nagle: Arc<AtomicBool>,
}

/// The pools' `after_connect` hook: Nagle's algorithm off where possible, and `nagle`
/// set where not.
fn nagle_off(
    nagle: Arc<AtomicBool>,
) -> impl Fn(
    &mut sqlx::PgConnection,
    sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, std::result::Result<(), sqlx::Error>>
+ Send
+ Sync
+ 'static {
    move |conn, _| {
        let nagle = nagle.clone();
        Box::pin(async move {
            if nodelay::disable_nagle(conn).await == nodelay::Transport::Nagle
                && !nagle.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "PostgreSQL connections keep Nagle's algorithm on: clicks are written in small statements"
                );
            }
            Ok(())
        })
    }
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
        let nagle = Arc::new(AtomicBool::new(false));
        let pool = PgPoolOptions::new()
            .after_connect(nagle_off(nagle.clone()))
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|e| Error::unavailable("postgres", format!("cannot connect: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::backend("postgres", format!("migration failed: {e}")))?;
        clicks::ensure_partitions(&pool, chrono::Utc::now().date_naive()).await?;
        // Connects on first use: the main pool just proved the database is there.
        let analytics_pool = PgPoolOptions::new()
            .after_connect(nagle_off(nagle.clone()))
            .max_connections(settings.analytics_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            analytics_pool,
            record_groups: settings.analytics_connections.max(1) as usize,
            nagle,
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
        row.as_ref().map(links::link_of).transpose()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
