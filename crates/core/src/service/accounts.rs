//! Accounts: registration, logins and their tokens, API keys.

use super::Shortener;
use crate::auth::{self, AccessClaims};
use crate::error::{Error, Result};
use crate::model::{ApiKey, Principal, TokenPair, User};
use crate::records::{ApiKeyRecord, RefreshTokenRecord, RotateOutcome, Rotation, UserRecord};
use crate::validate::{validate_email, validate_password};
use uuid::Uuid;

impl Shortener {
    /// Registers a user.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
    ) -> Result<User> {
        let email = validate_email(email)?;
        validate_password(password)?;
        let full_name = match full_name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
                return Err(Error::invalid(
                    "full_name",
                    "invalid_name",
                    "must be at most 100 printable characters",
                ));
            }
            other => other.map(str::to_string),
        };
        let password = password.to_string();
        let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| Error::backend("argon2", e))??;
        let user = User {
            id: Uuid::now_v7(),
            email,
            full_name,
            created_at: self.now(),
        };
        self.inner
            .users
            .create_user(&UserRecord {
                user: user.clone(),
                password_hash,
            })
            .await?;
        Ok(user)
    }

    fn issue_access_token(&self, user_id: Uuid, family_id: Uuid) -> Result<String> {
        let now = self.inner.clock.now().timestamp();
        auth::sign_access_token(
            &self.inner.jwt_secret,
            &AccessClaims {
                sub: user_id,
                sid: family_id,
                iat: now,
                exp: now + self.inner.config.access_ttl.as_secs() as i64,
            },
        )
    }

    fn new_refresh_token(&self, user_id: Uuid, family_id: Uuid) -> (String, RefreshTokenRecord) {
        let token = auth::new_secret(auth::REFRESH_TOKEN_PREFIX);
        let now = self.now();
        let record = RefreshTokenRecord {
            id: Uuid::now_v7(),
            user_id,
            family_id,
            token_hash: auth::token_hash(&token),
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.inner.config.refresh_ttl)
                    .unwrap_or(chrono::Duration::days(30)),
        };
        (token, record)
    }

    fn token_pair(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        refresh_token: String,
    ) -> Result<TokenPair> {
        Ok(TokenPair {
            access_token: self.issue_access_token(user_id, family_id)?,
            refresh_token,
            token_type: "bearer",
            expires_in: self.inner.config.access_ttl.as_secs(),
        })
    }

    /// The account of `email`, for work done on its behalf without its credentials (an
    /// operator's import from the command line).
    pub async fn principal_by_email(&self, email: &str) -> Result<Principal> {
        let email = email.trim();
        let found = if email.len() <= 254 && !email.chars().any(char::is_control) {
            self.inner.users.user_by_email(email).await?
        } else {
            None
        };
        found
            .map(|u| Principal { user_id: u.user.id })
            .ok_or(Error::NotFound { what: "user" })
    }

    /// Logs in: one answer (`Unauthorized`) for an unknown email and a wrong password,
    /// in about the same time.
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair> {
        // No account has such an email: don't ask the store (no stored text holds a NUL).
        let plausible = email.len() <= 254 && !email.chars().any(char::is_control);
        let record = if plausible {
            self.inner.users.user_by_email(email.trim()).await?
        } else {
            None
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        let password = password.to_string();
        let verified = tokio::task::spawn_blocking(move || {
            password.len() <= crate::validate::MAX_PASSWORD_BYTES
                && auth::verify_password(&password, stored.as_deref())
        })
        .await
        .map_err(|e| Error::backend("argon2", e))?;
        let (true, Some(record)) = (verified, record) else {
            return Err(Error::Unauthorized {
                reason: "invalid email or password",
            });
        };
        let user_id = record.user.id;
        let family_id = Uuid::now_v7();
        let (token, stored) = self.new_refresh_token(user_id, family_id);
        self.inner.users.insert_refresh_token(&stored).await?;
        self.token_pair(user_id, family_id, token)
    }

    /// Exchanges a refresh token for a new pair. The old token dies; presenting it again
    /// within the grace period (two tabs refreshing at once) gives the same refresh token
    /// again with a fresh access token; later, it revokes the whole login (every token of
    /// its family).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let invalid = Error::Unauthorized {
            reason: "invalid refresh token",
        };
        let old_hash = auth::token_hash(refresh_token);
        let Some(old) = self.inner.users.refresh_token(&old_hash).await? else {
            return Err(invalid);
        };
        let family_id = old.family_id;
        let (token, record) = self.new_refresh_token(old.user_id, family_id);
        let sealed = auth::seal_successor(refresh_token, &token);
        let rotation = Rotation {
            new: &record,
            sealed_successor: &sealed,
            now: self.inner.clock.now(),
            grace: chrono::Duration::from_std(self.inner.config.refresh_grace)
                .unwrap_or(chrono::Duration::zero()),
        };
        match self
            .inner
            .users
            .rotate_refresh_token(&old_hash, &rotation)
            .await?
        {
            RotateOutcome::Rotated { user_id } => self.token_pair(user_id, family_id, token),
            RotateOutcome::Recent {
                user_id,
                sealed_successor,
            } => match auth::open_successor(refresh_token, &sealed_successor) {
                Some(successor) => self.token_pair(user_id, family_id, successor),
                None => Err(invalid),
            },
            RotateOutcome::Reused => {
                tracing::warn!(%family_id, "refresh token reused; login revoked");
                Err(Error::Unauthorized {
                    reason: "refresh token reuse detected; the login is revoked",
                })
            }
            RotateOutcome::Invalid => Err(invalid),
        }
    }

    /// Ends a login: its refresh token and access tokens stop working. Unknown tokens
    /// are ignored (logging out twice is fine).
    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let hash = auth::token_hash(refresh_token);
        if let Some(token) = self.inner.users.refresh_token(&hash).await? {
            self.inner.users.revoke_family(token.family_id).await?;
        }
        Ok(())
    }

    /// Checks an access token: signature, expiry, and that its login was not revoked.
    pub async fn authenticate_bearer(&self, access_token: &str) -> Result<Principal> {
        let claims = auth::verify_access_token(
            &self.inner.jwt_secret,
            access_token,
            self.inner.clock.now().timestamp(),
        )?;
        if !self.inner.users.family_active(claims.sid).await? {
            return Err(Error::Unauthorized {
                reason: "login revoked",
            });
        }
        Ok(Principal {
            user_id: claims.sub,
        })
    }

    /// Checks an API key.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Principal> {
        if !key.starts_with(auth::API_KEY_PREFIX) || key.len() > 200 {
            return Err(Error::Unauthorized {
                reason: "invalid API key",
            });
        }
        let found = self
            .inner
            .users
            .api_key_by_hash(&auth::token_hash(key))
            .await?;
        found
            .map(|k| Principal { user_id: k.user_id })
            .ok_or(Error::Unauthorized {
                reason: "invalid API key",
            })
    }

    /// The caller's account.
    pub async fn user(&self, principal: &Principal) -> Result<User> {
        self.inner
            .users
            .user_by_id(principal.user_id)
            .await?
            .ok_or(Error::Unauthorized {
                reason: "user no longer exists",
            })
    }

    /// Creates an API key; the secret is returned here only, and stored hashed.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "invalid_name",
                "must be 1 to 100 printable characters",
            ));
        }
        let secret = auth::new_secret(auth::API_KEY_PREFIX);
        let key = ApiKey {
            id: Uuid::now_v7(),
            user_id: principal.user_id,
            name: name.to_string(),
            prefix: secret.chars().take(8).collect(),
            created_at: self.now(),
        };
        self.inner
            .users
            .insert_api_key(&ApiKeyRecord {
                key: key.clone(),
                key_hash: auth::token_hash(&secret),
            })
            .await?;
        Ok((key, secret))
    }

    /// The caller's live API keys, newest first.
    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKey>> {
        self.inner.users.list_api_keys(principal.user_id).await
    }

    /// Revokes one of the caller's API keys; it stops working at once.
    pub async fn revoke_api_key(&self, principal: &Principal, key_id: Uuid) -> Result<()> {
        if self
            .inner
            .users
            .revoke_api_key(principal.user_id, key_id)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound { what: "api key" })
        }
    }
}
