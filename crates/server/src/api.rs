//! The `/api/v1` routes on poem-openapi: request and response types, and handlers that
//! only translate between HTTP and [`Shortener`](hoplink::Shortener).

use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use hoplink::model::{AnalyticsSummary, DayClicks, ValueCount};
use hoplink::{
    ApiKey, Link, LinkPatch, ListOptions, NewLink, Principal, QrContent, QrFormat, RedirectType,
    User,
};
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::auth::{ApiKey as ApiKeyCredential, Bearer};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json, PlainText};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, ResponseContent, SecurityScheme, Tags};
use std::sync::Arc;
use uuid::Uuid;

type ApiResult<T> = Result<T, ApiError>;

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
    /// Health and metrics.
    System,
}

/// The principal the request middleware authenticated (a checker never talks to a store).
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

fn redirect_type(status: Option<u16>) -> hoplink::Result<Option<RedirectType>> {
    status.map(RedirectType::try_from).transpose()
}

/// A new short link.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewLinkBody {
    /// Absolute http(s) URL to redirect to, at most 2048 bytes, to a public host.
    pub original_url: String,
    /// Your own code: 3–64 characters of `[A-Za-z0-9_-]`, not a reserved word.
    pub custom_alias: Option<String>,
    /// After this instant the link answers 410 (must be in the future).
    pub expires_at: Option<DateTime<Utc>>,
    /// After this many human clicks the link answers 410 (at least 1).
    pub max_clicks: Option<u64>,
    /// 301, 302 (default), 307 or 308.
    pub redirect_type: Option<u16>,
    /// Title, at most 255 characters.
    pub title: Option<String>,
    /// Up to 20 tags of 1–50 characters.
    pub tags: Option<Vec<String>>,
}

impl poem_openapi::types::Example for NewLinkBody {
    fn example() -> Self {
        NewLinkBody {
            original_url: "https://example.com/launch?utm_source=newsletter".into(),
            custom_alias: Some("launch".into()),
            expires_at: None,
            max_clicks: None,
            redirect_type: Some(302),
            title: Some("Launch announcement".into()),
            tags: Some(vec!["marketing".into()]),
        }
    }
}

impl NewLinkBody {
    fn into_request(self) -> hoplink::Result<NewLink> {
        Ok(NewLink {
            original_url: self.original_url,
            custom_alias: self.custom_alias,
            expires_at: self.expires_at,
            max_clicks: self.max_clicks,
            redirect_type: redirect_type(self.redirect_type)?,
            title: self.title,
            tags: self.tags,
        })
    }
}

/// A short link.
#[derive(Debug, Clone, Object)]
pub struct LinkBody {
    /// Identifier.
    pub id: Uuid,
    /// The code after the host.
    pub short_code: String,
    /// `BASE_URL/short_code`.
    pub short_url: String,
    /// Where it redirects.
    pub original_url: String,
    /// Title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Redirect status: 301, 302, 307 or 308.
    pub redirect_type: u16,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Human click budget.
    pub max_clicks: Option<u64>,
    /// Human clicks so far (eventually consistent, exact for links with `max_clicks`).
    pub click_count: u64,
    /// False: the link answers 410.
    pub is_active: bool,
}

impl LinkBody {
    fn of(state: &AppState, link: Link) -> Self {
        LinkBody {
            short_url: state.shortener.short_url(&link.short_code),
            id: link.id,
            short_code: link.short_code,
            original_url: link.original_url,
            title: link.title,
            tags: link.tags,
            redirect_type: link.redirect_type.status(),
            created_at: link.created_at,
            updated_at: link.updated_at,
            expires_at: link.expires_at,
            max_clicks: link.max_clicks,
            click_count: link.click_count,
            is_active: link.is_active,
        }
    }
}

/// A page of links.
#[derive(Debug, Object)]
pub struct LinkList {
    /// Newest first.
    pub items: Vec<LinkBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A change to a link: absent fields stay, `null` clears a nullable field.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct PatchLinkBody {
    /// New destination.
    pub original_url: MaybeUndefined<String>,
    /// New expiry; null removes it.
    pub expires_at: MaybeUndefined<DateTime<Utc>>,
    /// New click budget; null removes it.
    pub max_clicks: MaybeUndefined<u64>,
    /// New redirect status.
    pub redirect_type: MaybeUndefined<u16>,
    /// New title; null removes it.
    pub title: MaybeUndefined<String>,
    /// New tags (replace the old ones).
    pub tags: MaybeUndefined<Vec<String>>,
    /// Enable or disable.
    pub is_active: MaybeUndefined<bool>,
}

fn nullable<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

fn required<T>(field: &'static str, v: MaybeUndefined<T>) -> hoplink::Result<Option<T>> {
    match v {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Value(v) => Ok(Some(v)),
        MaybeUndefined::Null => Err(hoplink::Error::invalid(
            field,
            "invalid_field",
            "must not be null",
        )),
    }
}

impl PatchLinkBody {
    fn into_patch(self) -> hoplink::Result<LinkPatch> {
        Ok(LinkPatch {
            original_url: required("original_url", self.original_url)?,
            expires_at: nullable(self.expires_at),
            max_clicks: nullable(self.max_clicks),
            redirect_type: redirect_type(required("redirect_type", self.redirect_type)?)?,
            title: nullable(self.title),
            tags: required("tags", self.tags)?,
            is_active: required("is_active", self.is_active)?,
        })
    }
}

/// Up to 1,000 new links.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct BulkBody {
    /// The links to create.
    pub items: Vec<NewLinkBody>,
}

/// One bulk result: `ok` with the link, or `error` with the problem.
#[derive(Debug, Object)]
pub struct BulkResult {
    /// The created link.
    #[oai(skip_serializing_if_is_none)]
    pub ok: Option<LinkBody>,
    /// Why this item failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<Problem>,
}

/// One result per item, in order.
#[derive(Debug, Object)]
pub struct BulkResults {
    /// Results in the order of the items.
    pub results: Vec<BulkResult>,
}

/// Clicks on one day.
#[derive(Debug, Object)]
pub struct DayClicksBody {
    /// UTC day.
    pub date: NaiveDate,
    /// Human clicks.
    pub clicks: u64,
}

/// A value and its count.
#[derive(Debug, Object)]
pub struct ValueCountBody {
    /// Value (host, browser, OS, device class, country).
    pub value: String,
    /// Human clicks.
    pub count: u64,
}

/// Analytics of a link over a window of days.
#[derive(Debug, Object)]
pub struct SummaryBody {
    /// The link's code.
    pub short_code: String,
    /// Human clicks.
    pub total_clicks: u64,
    /// Distinct visitors per day, summed over the window.
    pub unique_visitors: u64,
    /// Known bots and link-preview crawlers.
    pub bot_clicks: u64,
    /// Every day of the window, zeros included.
    pub clicks_by_day: Vec<DayClicksBody>,
    /// Top referrer hosts (`direct` without one).
    pub top_referrers: Vec<ValueCountBody>,
    /// Top browsers.
    pub browsers: Vec<ValueCountBody>,
    /// Top operating systems.
    pub operating_systems: Vec<ValueCountBody>,
    /// Top device classes.
    pub devices: Vec<ValueCountBody>,
    /// Top countries (`unknown` when not known).
    pub countries: Vec<ValueCountBody>,
}

fn counts(values: Vec<ValueCount>) -> Vec<ValueCountBody> {
    values
        .into_iter()
        .map(|v| ValueCountBody {
            value: v.value,
            count: v.count,
        })
        .collect()
}

impl From<AnalyticsSummary> for SummaryBody {
    fn from(s: AnalyticsSummary) -> Self {
        SummaryBody {
            short_code: s.short_code,
            total_clicks: s.total_clicks,
            unique_visitors: s.unique_visitors,
            bot_clicks: s.bot_clicks,
            clicks_by_day: s
                .clicks_by_day
                .into_iter()
                .map(|DayClicks { date, clicks }| DayClicksBody { date, clicks })
                .collect(),
            top_referrers: counts(s.top_referrers),
            browsers: counts(s.browsers),
            operating_systems: counts(s.operating_systems),
            devices: counts(s.devices),
            countries: counts(s.countries),
        }
    }
}

/// What to encode: exactly one of `url` and `short_code`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct QrBody {
    /// Any http(s) URL.
    pub url: Option<String>,
    /// An existing short code (its short URL is encoded).
    pub short_code: Option<String>,
    /// `png` (default) or `svg`.
    pub format: Option<String>,
    /// Side in pixels, 64–2048 (default 256).
    pub size: Option<u32>,
}

/// A QR code image.
#[derive(ResponseContent)]
pub enum QrImage {
    /// PNG.
    #[oai(content_type = "image/png")]
    Png(Binary<Vec<u8>>),
    /// SVG.
    #[oai(content_type = "image/svg+xml")]
    Svg(Binary<Vec<u8>>),
}

/// Registration.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterBody {
    /// Email (unique, without regard to case).
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// Display name.
    pub full_name: Option<String>,
}

/// Credentials.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LoginBody {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RefreshBody {
    /// From login or the last refresh.
    pub refresh_token: String,
}

/// Tokens.
#[derive(Debug, Object)]
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

/// A user.
#[derive(Debug, Object)]
pub struct UserBody {
    /// Identifier.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Display name.
    pub full_name: Option<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        UserBody {
            id: u.id,
            email: u.email,
            full_name: u.full_name,
            created_at: u.created_at,
        }
    }
}

/// A new API key.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct NewApiKeyBody {
    /// Label, 1–100 characters (default `api key`).
    pub name: Option<String>,
}

/// A created API key: the only time `key` is shown.
#[derive(Debug, Object)]
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
pub struct ApiKeyList {
    /// Newest first.
    pub items: Vec<ApiKeyBody>,
}

/// The state of one backend.
#[derive(Debug, Object)]
pub struct ComponentBody {
    /// `ok` or `down`.
    pub status: String,
    /// Whether the service is unavailable without it.
    pub required: bool,
    /// The error, when down.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
}

/// Service health.
#[derive(Debug, Object)]
pub struct HealthBody {
    /// `ok`, `degraded` (an optional backend is down) or `unavailable`.
    pub status: String,
    /// Each backend by name (`store`, `cache`, `rate_limiter`, `id_allocator`, `bus`).
    pub components: std::collections::BTreeMap<String, ComponentBody>,
}

#[derive(ApiResponse)]
enum CreatedLink {
    /// Created.
    #[oai(status = 201)]
    Created(Json<LinkBody>),
}

#[derive(ApiResponse)]
enum OkLink {
    /// The link.
    #[oai(status = 200)]
    Ok(Json<LinkBody>),
}

#[derive(ApiResponse)]
enum OkLinks {
    /// A page of links.
    #[oai(status = 200)]
    Ok(Json<LinkList>),
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
enum OkBulk {
    /// One result per item.
    #[oai(status = 200)]
    Ok(Json<BulkResults>),
}

#[derive(ApiResponse)]
enum OkSummary {
    /// The summary.
    #[oai(status = 200)]
    Ok(Json<SummaryBody>),
}

#[derive(ApiResponse)]
enum OkQr {
    /// The image.
    #[oai(status = 200)]
    Ok(QrImage),
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
    /// New tokens.
    #[oai(status = 200)]
    Ok(Json<TokenBody>),
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

#[derive(ApiResponse)]
enum HealthResponse {
    /// Every required backend answers.
    #[oai(status = 200)]
    Ok(Json<HealthBody>),
    /// A required backend is down.
    #[oai(status = 503)]
    Unavailable(Json<HealthBody>),
}

#[derive(ApiResponse)]
enum MetricsResponse {
    /// Prometheus text format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
    /// `METRICS_TOKEN` is set and the bearer token differs.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
}

fn qr_image(format: QrFormat, bytes: Vec<u8>) -> OkQr {
    OkQr::Ok(match format {
        QrFormat::Png => QrImage::Png(Binary(bytes)),
        QrFormat::Svg => QrImage::Svg(Binary(bytes)),
    })
}

fn unprocessable(field: &'static str, code: &'static str, reason: &str) -> ApiError {
    hoplink::Error::invalid(field, code, reason.to_string()).into()
}

/// The API.
pub struct Api {
    pub(crate) state: Arc<AppState>,
}

#[OpenApi]
impl Api {
    /// Shorten a URL
    ///
    /// Anonymous callers may shorten too: their links have no owner and can't be edited.
    #[oai(
        path = "/api/v1/urls",
        method = "post",
        operation_id = "create_link",
        tag = "Tag::Urls"
    )]
    async fn create_url(
        &self,
        auth: OptionalAuth,
        body: Json<NewLinkBody>,
    ) -> ApiResult<CreatedLink> {
        let request = body.0.into_request()?;
        let principal = auth.principal();
        let link = self
            .state
            .shortener
            .shorten(request, principal.as_ref())
            .await?;
        Ok(CreatedLink::Created(Json(LinkBody::of(&self.state, link))))
    }

    /// List your links
    #[oai(
        path = "/api/v1/urls",
        method = "get",
        operation_id = "list_links",
        tag = "Tag::Urls"
    )]
    async fn list_urls(
        &self,
        auth: Auth,
        /// Page size, 1–100.
        #[oai(default = "default_limit")]
        limit: Query<u32>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only links with this tag.
        tag: Query<Option<String>>,
        /// Only links whose URL, title or code contains this text.
        q: Query<Option<String>>,
    ) -> ApiResult<OkLinks> {
        let page = self
            .state
            .shortener
            .list_links(
                &auth.principal(),
                ListOptions {
                    limit: Some(limit.0),
                    cursor: cursor.0,
                    tag: tag.0,
                    query: q.0,
                },
            )
            .await?;
        Ok(OkLinks::Ok(Json(LinkList {
            next_cursor: page.next_cursor.map(|c| c.encode()),
            items: page
                .items
                .into_iter()
                .map(|l| LinkBody::of(&self.state, l))
                .collect(),
        })))
    }

    /// Create up to 1,000 links
    #[oai(
        path = "/api/v1/urls/bulk",
        method = "post",
        operation_id = "create_links_in_bulk",
        tag = "Tag::Urls"
    )]
    async fn bulk_create(&self, auth: Auth, body: Json<BulkBody>) -> ApiResult<OkBulk> {
        if body.0.items.len() > hoplink::MAX_BULK_ITEMS {
            return Err(unprocessable(
                "items",
                "too_many_items",
                &format!("at most {} items per request", hoplink::MAX_BULK_ITEMS),
            ));
        }
        let principal = auth.principal();
        let mut results = Vec::with_capacity(body.0.items.len());
        for item in body.0.items {
            let outcome = match item.into_request() {
                Ok(request) => self
                    .state
                    .shortener
                    .shorten(request, Some(&principal))
                    .await
                    .map_err(|e| crate::problem::problem_of(&e)),
                Err(e) => Err(crate::problem::problem_of(&e)),
            };
            results.push(match outcome {
                Ok(link) => BulkResult {
                    ok: Some(LinkBody::of(&self.state, link)),
                    error: None,
                },
                Err(problem) => BulkResult {
                    ok: None,
                    error: Some(problem),
                },
            });
        }
        Ok(OkBulk::Ok(Json(BulkResults { results })))
    }

    /// Get one of your links
    #[oai(
        path = "/api/v1/urls/:id",
        method = "get",
        operation_id = "get_link",
        tag = "Tag::Urls"
    )]
    async fn get_url(&self, auth: Auth, id: Path<Uuid>) -> ApiResult<OkLink> {
        let link = self
            .state
            .shortener
            .get_link(&auth.principal(), id.0)
            .await?;
        Ok(OkLink::Ok(Json(LinkBody::of(&self.state, link))))
    }

    /// Change one of your links
    ///
    /// The very next redirect, on every instance, sees the change.
    #[oai(
        path = "/api/v1/urls/:id",
        method = "patch",
        operation_id = "update_link",
        tag = "Tag::Urls"
    )]
    async fn update_url(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        body: Json<PatchLinkBody>,
    ) -> ApiResult<OkLink> {
        let patch = body.0.into_patch()?;
        let link = self
            .state
            .shortener
            .update_link(&auth.principal(), id.0, patch)
            .await?;
        Ok(OkLink::Ok(Json(LinkBody::of(&self.state, link))))
    }

    /// Delete one of your links
    #[oai(
        path = "/api/v1/urls/:id",
        method = "delete",
        operation_id = "delete_link",
        tag = "Tag::Urls"
    )]
    async fn delete_url(&self, auth: Auth, id: Path<Uuid>) -> ApiResult<NoContent> {
        self.state
            .shortener
            .delete_link(&auth.principal(), id.0)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Analytics summary of one of your links
    ///
    /// Human clicks only; bots and link-preview crawlers are in `bot_clicks`. Eventually
    /// consistent: a click shows within a few seconds.
    #[oai(
        path = "/api/v1/analytics/:short_code/summary",
        method = "get",
        operation_id = "analytics_summary",
        tag = "Tag::Analytics"
    )]
    async fn analytics_summary(
        &self,
        auth: Auth,
        short_code: Path<String>,
        /// Window in days, 1–365, today included.
        #[oai(default = "default_days")]
        days: Query<u32>,
    ) -> ApiResult<OkSummary> {
        let summary = self
            .state
            .shortener
            .analytics_summary(&auth.principal(), &short_code.0, days.0)
            .await?;
        Ok(OkSummary::Ok(Json(summary.into())))
    }

    /// QR code of a short link
    #[oai(
        path = "/api/v1/qr/:short_code",
        method = "get",
        operation_id = "qr_of_link",
        tag = "Tag::Qr"
    )]
    async fn qr_of_code(
        &self,
        short_code: Path<String>,
        /// `png` (default) or `svg`.
        format: Query<Option<String>>,
        /// Side in pixels, 64–2048.
        #[oai(default = "default_qr_size")]
        size: Query<u32>,
    ) -> ApiResult<OkQr> {
        let format = format
            .0
            .as_deref()
            .map(QrFormat::parse)
            .transpose()?
            .unwrap_or_default();
        let bytes = self
            .state
            .shortener
            .qr_code(QrContent::ShortCode(short_code.0), format, size.0)
            .await?;
        Ok(qr_image(format, bytes))
    }

    /// QR code of a URL or a short code
    #[oai(
        path = "/api/v1/qr",
        method = "post",
        operation_id = "qr_of_url_or_link",
        tag = "Tag::Qr"
    )]
    async fn qr(&self, body: Json<QrBody>) -> ApiResult<OkQr> {
        let body = body.0;
        let content = match (body.url, body.short_code) {
            (Some(url), None) => QrContent::Url(url),
            (None, Some(code)) => QrContent::ShortCode(code),
            _ => {
                return Err(unprocessable(
                    "url",
                    "invalid_qr_request",
                    "give exactly one of url and short_code",
                ));
            }
        };
        let format = body
            .format
            .as_deref()
            .map(QrFormat::parse)
            .transpose()?
            .unwrap_or_default();
        let size = body.size.unwrap_or(hoplink::qr::DEFAULT_QR_SIZE);
        let bytes = self.state.shortener.qr_code(content, format, size).await?;
        Ok(qr_image(format, bytes))
    }

    /// Register
    #[oai(
        path = "/api/v1/auth/register",
        method = "post",
        operation_id = "register",
        tag = "Tag::Auth"
    )]
    async fn register(&self, body: Json<RegisterBody>) -> ApiResult<CreatedUser> {
        let b = body.0;
        let user = self
            .state
            .shortener
            .register(&b.email, &b.password, b.full_name.as_deref())
            .await?;
        Ok(CreatedUser::Created(Json(user.into())))
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
    async fn login(&self, body: Json<LoginBody>) -> ApiResult<OkTokens> {
        let pair = self
            .state
            .shortener
            .login(&body.0.email, &body.0.password)
            .await?;
        Ok(OkTokens::Ok(Json(tokens(pair))))
    }

    /// Exchange a refresh token for a new pair
    ///
    /// The old refresh token dies. Presenting a dead one again revokes every token of
    /// that login.
    #[oai(
        path = "/api/v1/auth/refresh",
        method = "post",
        operation_id = "refresh",
        tag = "Tag::Auth"
    )]
    async fn refresh(&self, body: Json<RefreshBody>) -> ApiResult<OkTokens> {
        let pair = self.state.shortener.refresh(&body.0.refresh_token).await?;
        Ok(OkTokens::Ok(Json(tokens(pair))))
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
    async fn logout(&self, body: Json<RefreshBody>) -> ApiResult<NoContent> {
        self.state.shortener.logout(&body.0.refresh_token).await?;
        Ok(NoContent::NoContent)
    }

    /// Your account
    #[oai(
        path = "/api/v1/auth/me",
        method = "get",
        operation_id = "me",
        tag = "Tag::Auth"
    )]
    async fn me(&self, auth: BearerAuth) -> ApiResult<OkUser> {
        let user = self.state.shortener.user(&auth.0).await?;
        Ok(OkUser::Ok(Json(user.into())))
    }

    /// Create an API key
    #[oai(
        path = "/api/v1/api-keys",
        method = "post",
        operation_id = "create_api_key",
        tag = "Tag::ApiKeys"
    )]
    async fn create_api_key(
        &self,
        auth: BearerAuth,
        body: Json<NewApiKeyBody>,
    ) -> ApiResult<CreatedApiKey> {
        let name = body.0.name.unwrap_or_else(|| "api key".into());
        let (key, secret) = self.state.shortener.create_api_key(&auth.0, &name).await?;
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
    async fn list_api_keys(&self, auth: BearerAuth) -> ApiResult<OkApiKeys> {
        let keys = self.state.shortener.list_api_keys(&auth.0).await?;
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
    async fn revoke_api_key(&self, auth: BearerAuth, id: Path<Uuid>) -> ApiResult<NoContent> {
        self.state.shortener.revoke_api_key(&auth.0, id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Health of the service and each backend
    #[oai(
        path = "/api/v1/health",
        method = "get",
        operation_id = "health",
        tag = "Tag::System"
    )]
    async fn health(&self) -> HealthResponse {
        let report = self.state.shortener.health().await;
        let components = report
            .components
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    ComponentBody {
                        status: if c.healthy { "ok" } else { "down" }.into(),
                        required: c.required,
                        error: c.error.clone(),
                    },
                )
            })
            .collect();
        let status = if !report.is_healthy() {
            "unavailable"
        } else if report.is_degraded() {
            "degraded"
        } else {
            "ok"
        };
        let body = Json(HealthBody {
            status: status.into(),
            components,
        });
        if report.is_healthy() {
            HealthResponse::Ok(body)
        } else {
            HealthResponse::Unavailable(body)
        }
    }

    /// Prometheus metrics
    ///
    /// When `METRICS_TOKEN` is set, requires `Authorization: Bearer <METRICS_TOKEN>`.
    #[oai(
        path = "/metrics",
        method = "get",
        operation_id = "metrics",
        tag = "Tag::System"
    )]
    async fn metrics(&self, req: &Request) -> MetricsResponse {
        if let Some(token) = &self.state.config.metrics_token {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::http::bearer_token);
            if !given.is_some_and(|g| crate::http::constant_time_eq(g.as_bytes(), token.as_bytes()))
            {
                return MetricsResponse::Unauthorized(
                    Json(Problem::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "metrics need Authorization: Bearer <METRICS_TOKEN>",
                    )),
                    crate::problem::WWW_AUTHENTICATE.into(),
                );
            }
        }
        MetricsResponse::Ok(PlainText(
            self.state.metrics.render(&self.state.shortener.stats()),
        ))
    }
}

fn default_limit() -> u32 {
    hoplink::DEFAULT_PAGE_SIZE
}

fn default_days() -> u32 {
    30
}

fn default_qr_size() -> u32 {
    hoplink::qr::DEFAULT_QR_SIZE
}

fn tokens(pair: hoplink::TokenPair) -> TokenBody {
    TokenBody {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: pair.token_type.into(),
        expires_in: pair.expires_in,
    }
}
