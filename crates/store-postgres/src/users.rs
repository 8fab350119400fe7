//! [`UserStore`]: users, refresh tokens and API keys.

use crate::{PgStore, db_error, is_unique_violation, unstorable};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hoplink::records::{ApiKeyRecord, RefreshTokenRecord, RotateOutcome, Rotation, UserRecord};
use hoplink::{ApiKey, Error, Result, User, UserStore};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

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
