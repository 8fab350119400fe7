//! Helpers of the PostgreSQL tests: the server from `TEST_DATABASE_URL`, and a fresh
//! schema per test.

use hoplink_postgres::{PgSettings, PgStore};

pub fn database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TEST_DATABASE_URL is not: PostgreSQL tests cannot run")
        }
        _ => {
            eprintln!("skipped: set TEST_DATABASE_URL=postgres://… to run the PostgreSQL tests");
            None
        }
    }
}

pub fn fresh_schema() -> String {
    format!(
        "hoplink_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub async fn connect(url: &str, schema: &str) -> PgStore {
    PgStore::connect_with(
        url,
        PgSettings {
            schema: Some(schema.into()),
            max_connections: 20,
            ..PgSettings::default()
        },
    )
    .await
    .expect("connect and migrate")
}

pub async fn drop_schema(store: &PgStore, schema: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(store.pool())
        .await
        .expect("drop schema");
}
