//! `/api/v1/api-keys`: keys for scripts, shown once and stored hashed.

use super::input::Text;
use super::urls::NoContent;
use super::{ApiResult, BearerAuth, Tag};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::ApiKey;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new API key.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewApiKeyBody {
    /// Label, 1–100 printable characters (default `api key`).
    #[oai(
        validator(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
        ),
        nullable
    )]
    pub name: Option<Text>,
}

impl poem_openapi::types::Example for NewApiKeyBody {
    fn example() -> Self {
        NewApiKeyBody {
            name: Some("ci".into()),
        }
    }
}

fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A created API key: the only time `key` is shown.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ApiKeyCreatedBody {
    /// Identifier.
    pub id: Uuid,
    /// The secret, for `X-API-Key`. Store it now: it is kept only as a hash.
    pub key: String,
    /// Label.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl poem_openapi::types::Example for ApiKeyCreatedBody {
    fn example() -> Self {
        ApiKeyCreatedBody {
            id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0002),
            key: "hlk_Zx8kP0q2rT5vW7yA9cE1gI3kM5oQ7sU9wY1aC3eG5iK".into(),
            name: "ci".into(),
            created_at: example_time(),
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Object)]
pub struct ApiKeyBody {
    /// Identifier.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// First characters of the key.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyBody {
    fn from(k: ApiKey) -> Self {
        ApiKeyBody {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
        }
    }
}

/// A list of API keys.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ApiKeyList {
    /// Newest first.
    pub items: Vec<ApiKeyBody>,
}

impl poem_openapi::types::Example for ApiKeyList {
    fn example() -> Self {
        ApiKeyList {
            items: vec![ApiKeyBody {
                id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0002),
                name: "ci".into(),
                prefix: "hlk_Zx8k".into(),
                created_at: example_time(),
            }],
        }
    }
}

#[derive(ApiResponse)]
enum CreatedApiKey {
    /// Created; `key` is shown only now.
    #[oai(status = 201)]
    Created(Json<ApiKeyCreatedBody>),
}

#[derive(ApiResponse)]
enum OkApiKeys {
    /// Your keys.
    #[oai(status = 200)]
    Ok(Json<ApiKeyList>),
}

pub struct KeysApi;

#[OpenApi]
impl KeysApi {
    /// Create an API key
    #[oai(
        path = "/api/v1/api-keys",
        method = "post",
        operation_id = "create_api_key",
        tag = "Tag::ApiKeys"
    )]
    async fn create_api_key(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: Json<NewApiKeyBody>,
    ) -> ApiResult<CreatedApiKey> {
        let name = body
            .0
            .name
            .map_or_else(|| "api key".into(), Text::into_inner);
        let (key, secret) = state.shortener.create_api_key(&auth.0, &name).await?;
        Ok(CreatedApiKey::Created(Json(ApiKeyCreatedBody {
            id: key.id,
            key: secret,
            name: key.name,
            created_at: key.created_at,
        })))
    }

    /// List your API keys
    #[oai(
        path = "/api/v1/api-keys",
        method = "get",
        operation_id = "list_api_keys",
        tag = "Tag::ApiKeys"
    )]
    async fn list_api_keys(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> ApiResult<OkApiKeys> {
        let keys = state.shortener.list_api_keys(&auth.0).await?;
        Ok(OkApiKeys::Ok(Json(ApiKeyList {
            items: keys.into_iter().map(Into::into).collect(),
        })))
    }

    /// Revoke an API key
    ///
    /// It stops working at once.
    #[oai(
        path = "/api/v1/api-keys/:id",
        method = "delete",
        operation_id = "revoke_api_key",
        tag = "Tag::ApiKeys"
    )]
    async fn revoke_api_key(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        state.shortener.revoke_api_key(&auth.0, id.0).await?;
        Ok(NoContent::NoContent)
    }
}
