//! The API on poem-openapi: one file per area, each an `#[OpenApi]` impl whose handlers
//! only translate between HTTP and [`Shortener`](hoplink::Shortener). Request bodies
//! refuse unknown fields (`additionalProperties: false` in the document); every input
//! rule is a validator, so the document states it and poem enforces it.

mod admin;
mod analytics;
mod auth;
pub mod diagnose;
mod domains;
pub mod input;
mod keys;
mod qr;
mod rules;
mod system;
mod transfer;
mod urls;
mod webhooks;

pub use urls::LinkBody;

use crate::problem::ApiError;
use hoplink::Principal;
use poem::Request;
use poem_openapi::auth::{ApiKey as ApiKeyCredential, Bearer};
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

type ApiResult<T> = Result<T, ApiError>;

/// Every area of the API, as one service.
pub type Apis = (
    urls::UrlsApi,
    transfer::TransferApi,
    analytics::AnalyticsApi,
    qr::QrApi,
    auth::AuthApi,
    keys::KeysApi,
    webhooks::WebhooksApi,
    domains::DomainsApi,
    admin::AdminApi,
    system::SystemApi,
);

/// The OpenAPI service of every area; handlers find the [`AppState`](crate::state::AppState) in the request
/// data (`Data<&Arc<AppState>>`), so the document needs no running service.
pub fn service() -> OpenApiService<Apis, ()> {
    let apis = (
        urls::UrlsApi,
        transfer::TransferApi,
        analytics::AnalyticsApi,
        qr::QrApi,
        auth::AuthApi,
        keys::KeysApi,
        webhooks::WebhooksApi,
        domains::DomainsApi,
        admin::AdminApi,
        system::SystemApi,
    );
    OpenApiService::new(apis, "hoplink", env!("CARGO_PKG_VERSION"))
        .description(
            "URL shortener API. Errors are RFC 9457 problem documents \
             (`application/problem+json`) with a machine-readable `code` and, for validation \
             problems, the `field`. Request bodies refuse unknown fields. Rate-limited routes \
             send `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`; every answer \
             carries `X-Request-Id`.",
        )
        .extra_response_header::<String, _>(
            poem_openapi::ExtraHeader::new("X-Request-Id")
                .description("Echoed from the request, or generated"),
        )
}

#[derive(Tags)]
enum Tag {
    /// Create, list, edit and delete short links.
    Urls,
    /// Click analytics.
    Analytics,
    /// QR codes.
    Qr,
    /// Accounts and tokens.
    Auth,
    /// API keys.
    ApiKeys,
    /// Signed deliveries of events about your links.
    Webhooks,
    /// Short domains of the deployment.
    Domains,
    /// Moderation: every owner's links, blocking, the host blocklist, abuse reports.
    Admin,
    /// Health and metrics.
    System,
}

/// The principal the request layer authenticated (a checker never talks to a store).
fn authenticated(req: &Request) -> Option<Principal> {
    req.extensions().get::<Principal>().copied()
}

async fn bearer_checker(req: &Request, _bearer: Bearer) -> Option<Principal> {
    authenticated(req)
}

async fn api_key_checker(req: &Request, _key: ApiKeyCredential) -> Option<Principal> {
    authenticated(req)
}

/// `Authorization: Bearer <access_token>` from `/api/v1/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "bearer_checker")]
struct BearerAuth(Principal);

/// `X-API-Key: <key>` from `/api/v1/api-keys`.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header",
    checker = "api_key_checker"
)]
struct ApiKeyAuth(Principal);

/// A bearer token or an API key.
#[derive(SecurityScheme)]
enum Auth {
    Bearer(BearerAuth),
    ApiKey(ApiKeyAuth),
}

impl Auth {
    fn principal(&self) -> Principal {
        match self {
            Auth::Bearer(b) => b.0,
            Auth::ApiKey(k) => k.0,
        }
    }
}

/// An administrator's bearer token (`ADMIN_EMAILS`): others get 403.
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    rename = "AdminBearer",
    bearer_format = "JWT",
    checker = "bearer_checker"
)]
struct AdminBearer(Principal);

/// An administrator's API key (`ADMIN_EMAILS`): others get 403.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    rename = "AdminApiKey",
    key_name = "X-API-Key",
    key_in = "header",
    checker = "api_key_checker"
)]
struct AdminApiKey(Principal);

/// An administrator's credentials; whether the caller is one is decided by the service
/// (`403 forbidden` for everybody else).
#[derive(SecurityScheme)]
enum AdminAuth {
    Bearer(AdminBearer),
    ApiKey(AdminApiKey),
}

impl AdminAuth {
    fn principal(&self) -> Principal {
        match self {
            AdminAuth::Bearer(b) => b.0,
            AdminAuth::ApiKey(k) => k.0,
        }
    }
}

/// A bearer token, an API key, or nobody.
#[derive(SecurityScheme)]
enum OptionalAuth {
    Bearer(BearerAuth),
    ApiKey(ApiKeyAuth),
    #[oai(fallback)]
    Anonymous,
}

impl OptionalAuth {
    fn principal(&self) -> Option<Principal> {
        match self {
            OptionalAuth::Bearer(b) => Some(b.0),
            OptionalAuth::ApiKey(k) => Some(k.0),
            OptionalAuth::Anonymous => None,
        }
    }
}

/// `u64` from a validated [`input::Int`] (validators keep it non-negative).
fn unsigned(n: input::Int) -> u64 {
    u64::try_from(n.0).unwrap_or(0)
}

/// `u32` from a validated [`input::Int`] (validators keep it in range).
fn small(n: input::Int) -> u32 {
    u32::try_from(n.0).unwrap_or(u32::MAX)
}
