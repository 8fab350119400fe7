//! `/api/v1/auth`: registration, logins and their tokens.

use super::input::Text;
use super::urls::NoContent;
use super::{ApiResult, BearerAuth, Tag};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::User;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// Registration.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RegisterBody {
    /// Email (unique without regard to case): 1–64 characters, `@`, and a dotted domain
    /// whose labels don't start or end with `-`; no spaces or control characters.
    #[oai(validator(
        min_length = 3,
        max_length = 254,
        pattern = r"^[^\s@\x00-\x1F\x7F-\x9F]{1,64}@[^\s@.\x00-\x1F\x7F-\x9F-](?:[^\s@.\x00-\x1F\x7F-\x9F]*[^\s@.\x00-\x1F\x7F-\x9F-])?(?:\.[^\s@.\x00-\x1F\x7F-\x9F-](?:[^\s@.\x00-\x1F\x7F-\x9F]*[^\s@.\x00-\x1F\x7F-\x9F-])?)+$"
    ))]
    pub email: Text,
    /// At least 8 characters.
    #[oai(validator(min_length = 8, max_length = 256))]
    pub password: Text,
    /// Display name, at most 100 printable characters.
    #[oai(
        validator(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub full_name: Option<Text>,
}

impl poem_openapi::types::Example for RegisterBody {
    fn example() -> Self {
        RegisterBody {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            full_name: Some("Ada Lovelace".into()),
        }
    }
}

/// Credentials.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LoginBody {
    /// Email.
    #[oai(validator(max_length = 254))]
    pub email: Text,
    /// Password.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl poem_openapi::types::Example for LoginBody {
    fn example() -> Self {
        LoginBody {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
        }
    }
}

/// A refresh token.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RefreshBody {
    /// From login or the last refresh.
    #[oai(validator(max_length = 200))]
    pub refresh_token: Text,
}

impl poem_openapi::types::Example for RefreshBody {
    fn example() -> Self {
        RefreshBody {
            refresh_token: "hlr_4u8Xq0mQ9s3vVq3r1tLwZC2p6xJk0aYH1nE5fGd7bTc".into(),
        }
    }
}

/// Tokens.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TokenBody {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use token for `/auth/refresh` and `/auth/logout`.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

impl poem_openapi::types::Example for TokenBody {
    fn example() -> Self {
        TokenBody {
            access_token: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl"
                .into(),
            refresh_token: "hlr_4u8Xq0mQ9s3vVq3r1tLwZC2p6xJk0aYH1nE5fGd7bTc".into(),
            token_type: "bearer".into(),
            expires_in: 900,
        }
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoleBody {
    /// An administrator (`ADMIN_EMAILS`).
    Admin,
    /// Everybody else.
    User,
}

impl From<hoplink::Role> for RoleBody {
    fn from(role: hoplink::Role) -> Self {
        match role {
            hoplink::Role::Admin => RoleBody::Admin,
            hoplink::Role::User => RoleBody::User,
        }
    }
}

/// A user.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UserBody {
    /// Identifier.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub full_name: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// `admin` or `user`.
    pub role: RoleBody,
}

impl UserBody {
    fn of(state: &AppState, u: User) -> Self {
        UserBody {
            role: state.shortener.role(&u).into(),
            id: u.id,
            email: u.email,
            full_name: u.full_name,
            created_at: u.created_at,
        }
    }
}

impl poem_openapi::types::Example for UserBody {
    fn example() -> Self {
        UserBody {
            id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0001),
            email: "ada@example.com".into(),
            full_name: Some("Ada Lovelace".into()),
            created_at: DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            role: RoleBody::User,
        }
    }
}

#[derive(ApiResponse)]
enum CreatedUser {
    /// Registered.
    #[oai(status = 201)]
    Created(Json<UserBody>),
}

#[derive(ApiResponse)]
enum OkUser {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<UserBody>),
}

#[derive(ApiResponse)]
enum OkTokens {
    /// New tokens; never to be stored by caches.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

fn tokens(pair: hoplink::TokenPair) -> OkTokens {
    OkTokens::Ok(
        Json(TokenBody {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: pair.token_type.into(),
            expires_in: pair.expires_in,
        }),
        "no-store".into(),
    )
}

pub struct AuthApi;

#[OpenApi]
impl AuthApi {
    /// Register
    #[oai(
        path = "/api/v1/auth/register",
        method = "post",
        operation_id = "register",
        tag = "Tag::Auth"
    )]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<RegisterBody>,
    ) -> ApiResult<CreatedUser> {
        let b = body.0;
        let user = state
            .shortener
            .register(
                &b.email.0,
                &b.password.0,
                b.full_name.as_ref().map(|n| n.0.as_str()),
            )
            .await?;
        Ok(CreatedUser::Created(Json(UserBody::of(&state, user))))
    }

    /// Log in
    ///
    /// Unknown email and wrong password get the same 401.
    #[oai(
        path = "/api/v1/auth/login",
        method = "post",
        operation_id = "login",
        tag = "Tag::Auth"
    )]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<LoginBody>,
    ) -> ApiResult<OkTokens> {
        let pair = state
            .shortener
            .login(&body.0.email.0, &body.0.password.0)
            .await?;
        Ok(tokens(pair))
    }

    /// Exchange a refresh token for a new pair
    ///
    /// The old refresh token dies. Presenting it again within a few seconds (two tabs
    /// refreshing at once) gives the same new pair; later, it revokes every token of
    /// that login.
    #[oai(
        path = "/api/v1/auth/refresh",
        method = "post",
        operation_id = "refresh",
        tag = "Tag::Auth"
    )]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<RefreshBody>,
    ) -> ApiResult<OkTokens> {
        let pair = state.shortener.refresh(&body.0.refresh_token.0).await?;
        Ok(tokens(pair))
    }

    /// Log out
    ///
    /// The refresh token and the access tokens of its login stop working.
    #[oai(
        path = "/api/v1/auth/logout",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Auth"
    )]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        body: Json<RefreshBody>,
    ) -> ApiResult<NoContent> {
        state.shortener.logout(&body.0.refresh_token.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Your account
    #[oai(
        path = "/api/v1/auth/me",
        method = "get",
        operation_id = "me",
        tag = "Tag::Auth"
    )]
    async fn me(&self, state: Data<&Arc<AppState>>, auth: BearerAuth) -> ApiResult<OkUser> {
        let user = state.shortener.user(&auth.0).await?;
        Ok(OkUser::Ok(Json(UserBody::of(&state, user))))
    }
}
