//! `/api/v1/urls`: create, list, read, change and delete links.

use super::input::{Int, RedirectStatus, Text};
use super::rules::{RuleBody, into_rules};
use super::{ApiResult, Auth, OptionalAuth, Tag, small, unsigned};
use crate::problem::problem_of;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::{Link, LinkPatch, LinkSort, ListOptions, NewLink};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// A new short link.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewLinkBody {
    /// Absolute http(s) URL to redirect to, at most 2048 bytes, to a public host (not this
    /// service, no credentials, no private, loopback or link-local address).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub original_url: Text,
    /// Your own code: 3–64 characters of `[A-Za-z0-9_-]`, not a reserved word and not an
    /// existing code in any letter case.
    #[oai(
        validator(min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9_-]+$"),
        nullable
    )]
    pub custom_alias: Option<Text>,
    /// After this instant the link answers 410; must be in the future.
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    /// After this many human clicks the link answers 410.
    #[oai(
        validator(minimum(value = "1"), maximum(value = "1000000000000")),
        nullable
    )]
    pub max_clicks: Option<Int>,
    /// 301, 302 (default), 307 or 308.
    #[oai(nullable)]
    pub redirect_type: Option<RedirectStatus>,
    /// Title, at most 255 characters, no control characters (blank: none).
    #[oai(
        validator(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub title: Option<Text>,
    /// Up to 20 tags of 1–50 printable characters (trimmed; duplicates dropped).
    #[oai(
        validator(
            max_items = 20,
            min_length = 1,
            max_length = 50,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
        ),
        nullable
    )]
    pub tags: Option<Vec<Text>>,
    /// The short domain (a host of `GET /api/v1/domains`); the default domain when
    /// absent. `422 unknown_domain` for a host that is no domain here.
    #[oai(
        validator(min_length = 1, max_length = 253, pattern = r"^[A-Za-z0-9.-]+$"),
        nullable
    )]
    pub domain: Option<Text>,
    /// Other destinations and when they apply (at most 20, tried in order; the first whose
    /// conditions all match wins, `original_url` when none does).
    #[oai(validator(max_items = 20), nullable)]
    pub redirect_rules: Option<Vec<RuleBody>>,
    /// Append the request's query string to the destination's (both kept, the request's
    /// last). Default false.
    #[oai(nullable)]
    pub forward_query: Option<bool>,
    /// A password visitors must give (1–128 characters); stored only as an Argon2id hash
    /// and never shown.
    #[oai(
        validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ),
        nullable,
        write_only
    )]
    pub password: Option<Text>,
}

impl poem_openapi::types::Example for NewLinkBody {
    fn example() -> Self {
        NewLinkBody {
            original_url: "https://example.com/launch?utm_source=newsletter".into(),
            custom_alias: Some("launch".into()),
            expires_at: None,
            max_clicks: None,
            redirect_type: Some(RedirectStatus(hoplink::RedirectType::Found)),
            title: Some("Launch announcement".into()),
            tags: Some(vec!["marketing".into()]),
            domain: None,
            redirect_rules: Some(RuleBody::example()),
            forward_query: Some(true),
            password: None,
        }
    }
}

impl NewLinkBody {
    pub(super) fn into_request(self) -> NewLink {
        NewLink {
            original_url: self.original_url.0,
            custom_alias: self.custom_alias.map(Text::into_inner),
            expires_at: self.expires_at,
            max_clicks: self.max_clicks.map(unsigned),
            redirect_type: self.redirect_type.map(|r| r.0),
            title: self.title.map(Text::into_inner),
            tags: self
                .tags
                .map(|tags| tags.into_iter().map(Text::into_inner).collect()),
            domain: self.domain.map(Text::into_inner),
            redirect_rules: self.redirect_rules.map(into_rules),
            forward_query: self.forward_query,
            password: self.password.map(Text::into_inner),
        }
    }
}

/// A short link.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct LinkBody {
    /// Identifier.
    pub id: Uuid,
    /// The code after the host.
    pub short_code: String,
    /// The short domain's host.
    pub domain: String,
    /// `BASE_URL/short_code` on the default domain, `scheme://domain/short_code` on
    /// another.
    pub short_url: String,
    /// Where it redirects.
    pub original_url: String,
    /// Title.
    pub title: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Redirect status: 301, 302, 307 or 308.
    pub redirect_type: RedirectStatus,
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
    /// Blocked by an administrator: it answers 410 `link_blocked`; only an administrator
    /// can unblock it.
    pub blocked: bool,
    /// Why it was blocked.
    pub blocked_reason: Option<String>,
    /// Other destinations and when they apply, in order.
    pub redirect_rules: Vec<RuleBody>,
    /// Whether the request's query string is appended to the destination's.
    pub forward_query: bool,
    /// Whether visitors must give a password.
    pub password_protected: bool,
}

impl poem_openapi::types::Example for LinkBody {
    fn example() -> Self {
        let at = DateTime::parse_from_rfc3339("2026-11-22T09:30:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        LinkBody {
            id: Uuid::from_u128(0x0193_5a3c_7d1e_7c4a_9b2f_1e6d_8a4c_3b21),
            short_code: "launch".into(),
            domain: "sho.rt".into(),
            short_url: "https://sho.rt/launch".into(),
            original_url: "https://example.com/launch?utm_source=newsletter".into(),
            title: Some("Launch announcement".into()),
            tags: vec!["marketing".into()],
            redirect_type: RedirectStatus(hoplink::RedirectType::Found),
            created_at: at,
            updated_at: at,
            expires_at: None,
            max_clicks: None,
            click_count: 42,
            is_active: true,
            blocked: false,
            blocked_reason: None,
            redirect_rules: RuleBody::example(),
            forward_query: true,
            password_protected: false,
        }
    }
}

impl LinkBody {
    /// The answer for `link`.
    pub fn of(state: &AppState, link: Link) -> Self {
        LinkBody {
            short_url: state.shortener.link_url(&link),
            domain: state.shortener.host_of(&link).to_string(),
            password_protected: link.password_protected(),
            id: link.id,
            short_code: link.short_code,
            original_url: link.original_url,
            title: link.title,
            tags: link.tags,
            redirect_type: RedirectStatus(link.redirect_type),
            created_at: link.created_at,
            updated_at: link.updated_at,
            expires_at: link.expires_at,
            max_clicks: link.max_clicks,
            click_count: link.click_count,
            is_active: link.is_active,
            blocked: link.blocked,
            blocked_reason: link.blocked_reason,
            redirect_rules: link.redirect_rules.into_iter().map(RuleBody::of).collect(),
            forward_query: link.forward_query,
        }
    }
}

/// A page of links.
#[derive(Debug, Object)]
#[oai(example)]
pub struct LinkList {
    /// Newest first.
    pub items: Vec<LinkBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl LinkList {
    /// A page of links as answered.
    pub(super) fn of(state: &AppState, page: hoplink::Page<Link>) -> Self {
        LinkList {
            next_cursor: page.next_cursor.map(|c| c.encode()),
            items: page
                .items
                .into_iter()
                .map(|l| LinkBody::of(state, l))
                .collect(),
        }
    }
}

impl poem_openapi::types::Example for LinkList {
    fn example() -> Self {
        LinkList {
            items: vec![poem_openapi::types::Example::example()],
            next_cursor: Some("MTc2Mzc5NzgwMDAwMDAwMC4wMTkzNWEzYzdkMWU".into()),
        }
    }
}

/// A change to a link: absent fields stay, `null` clears a nullable field.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct PatchLinkBody {
    /// New destination (same rules as on creation).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub original_url: MaybeUndefined<Text>,
    /// New expiry, in the future; null removes it.
    #[oai(nullable)]
    pub expires_at: MaybeUndefined<DateTime<Utc>>,
    /// New click budget; null removes it.
    #[oai(
        validator(minimum(value = "1"), maximum(value = "1000000000000")),
        nullable
    )]
    pub max_clicks: MaybeUndefined<Int>,
    /// New redirect status.
    pub redirect_type: MaybeUndefined<RedirectStatus>,
    /// New title; null or blank removes it.
    #[oai(
        validator(max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub title: MaybeUndefined<Text>,
    /// New tags (replace the old ones).
    #[oai(validator(
        max_items = 20,
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub tags: MaybeUndefined<Vec<Text>>,
    /// Enable or disable.
    pub is_active: MaybeUndefined<bool>,
    /// New redirect rules, replacing the old ones; `[]` or null removes them.
    #[oai(validator(max_items = 20), nullable)]
    pub redirect_rules: MaybeUndefined<Vec<RuleBody>>,
    /// Start or stop forwarding the query string.
    pub forward_query: MaybeUndefined<bool>,
    /// A new password (1–128 characters); null removes it.
    #[oai(
        validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ),
        nullable,
        write_only
    )]
    pub password: MaybeUndefined<Text>,
}

impl poem_openapi::types::Example for PatchLinkBody {
    fn example() -> Self {
        PatchLinkBody {
            original_url: MaybeUndefined::Value("https://example.com/v2".into()),
            expires_at: MaybeUndefined::Null,
            max_clicks: MaybeUndefined::Undefined,
            redirect_type: MaybeUndefined::Undefined,
            title: MaybeUndefined::Undefined,
            tags: MaybeUndefined::Undefined,
            is_active: MaybeUndefined::Value(true),
            redirect_rules: MaybeUndefined::Undefined,
            forward_query: MaybeUndefined::Undefined,
            password: MaybeUndefined::Undefined,
        }
    }
}

pub(super) fn nullable<T, U>(v: MaybeUndefined<T>, f: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(f(v))),
    }
}

pub(super) fn present<T>(field: &'static str, v: MaybeUndefined<T>) -> hoplink::Result<Option<T>> {
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
            original_url: present("original_url", self.original_url)?.map(Text::into_inner),
            expires_at: nullable(self.expires_at, |t| t),
            max_clicks: nullable(self.max_clicks, unsigned),
            redirect_type: present("redirect_type", self.redirect_type)?.map(|r| r.0),
            title: nullable(self.title, Text::into_inner),
            tags: present("tags", self.tags)?
                .map(|tags| tags.into_iter().map(Text::into_inner).collect()),
            is_active: present("is_active", self.is_active)?,
            redirect_rules: nullable(self.redirect_rules, into_rules)
                .map(Option::unwrap_or_default),
            forward_query: present("forward_query", self.forward_query)?,
            password: nullable(self.password, Text::into_inner),
            ..LinkPatch::default()
        })
    }
}

/// Up to 1,000 new links.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct BulkBody {
    /// The links to create.
    #[oai(validator(max_items = 1000))]
    pub items: Vec<NewLinkBody>,
}

impl poem_openapi::types::Example for BulkBody {
    fn example() -> Self {
        BulkBody {
            items: vec![poem_openapi::types::Example::example()],
        }
    }
}

/// One bulk result: `ok` with the link, or `error` with the problem.
#[derive(Debug, Object)]
pub struct BulkResult {
    /// The created link.
    #[oai(skip_serializing_if_is_none)]
    pub ok: Option<LinkBody>,
    /// Why this item failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<crate::problem::Problem>,
}

/// One result per item, in order.
#[derive(Debug, Object)]
#[oai(example)]
pub struct BulkResults {
    /// Results in the order of the items.
    pub results: Vec<BulkResult>,
}

impl poem_openapi::types::Example for BulkResults {
    fn example() -> Self {
        BulkResults {
            results: vec![
                BulkResult {
                    ok: Some(poem_openapi::types::Example::example()),
                    error: None,
                },
                BulkResult {
                    ok: None,
                    error: Some(poem_openapi::types::Example::example()),
                },
            ],
        }
    }
}

#[derive(ApiResponse)]
enum CreatedLink {
    /// Created.
    #[oai(status = 201)]
    Created(Json<LinkBody>),
}

#[derive(ApiResponse)]
pub(super) enum OkLink {
    /// The link.
    #[oai(status = 200)]
    Ok(Json<LinkBody>),
}

#[derive(ApiResponse)]
pub(super) enum OkLinks {
    /// A page of links.
    #[oai(status = 200)]
    Ok(Json<LinkList>),
}

#[derive(ApiResponse)]
enum OkBulk {
    /// One result per item.
    #[oai(status = 200)]
    Ok(Json<BulkResults>),
}

#[derive(ApiResponse)]
pub(super) enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

pub(super) fn default_limit() -> Int {
    Int(i64::from(hoplink::DEFAULT_PAGE_SIZE))
}

pub struct UrlsApi;

#[OpenApi]
impl UrlsApi {
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
        state: Data<&Arc<AppState>>,
        auth: OptionalAuth,
        body: Json<NewLinkBody>,
    ) -> ApiResult<CreatedLink> {
        let principal = auth.principal();
        let link = state
            .shortener
            .shorten(body.0.into_request(), principal.as_ref())
            .await?;
        Ok(CreatedLink::Created(Json(LinkBody::of(&state, link))))
    }

    /// List your links
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/v1/urls",
        method = "get",
        operation_id = "list_links",
        tag = "Tag::Urls"
    )]
    async fn list_urls(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<Int>,
        /// `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<Text>>,
        /// Only links with this tag (exact).
        #[oai(validator(max_length = 50))]
        tag: Query<Option<Text>>,
        /// Only links whose URL, title or code contains this text (without regard to case).
        #[oai(validator(max_length = 200))]
        q: Query<Option<Text>>,
        /// Only links of this short domain (its host); every domain when absent.
        #[oai(validator(max_length = 253))]
        domain: Query<Option<Text>>,
        /// `newest` (default) or `clicks` (most clicked first). A cursor continues only
        /// the order it came from.
        sort: Query<Option<SortBody>>,
    ) -> ApiResult<OkLinks> {
        let page = state
            .shortener
            .list_links(
                &auth.principal(),
                ListOptions {
                    limit: Some(small(limit.0)),
                    cursor: cursor.0.map(Text::into_inner),
                    tag: tag.0.map(Text::into_inner),
                    query: q.0.map(Text::into_inner),
                    domain: domain.0.map(Text::into_inner),
                    sort: sort.0.unwrap_or_default().into(),
                },
            )
            .await?;
        Ok(OkLinks::Ok(Json(LinkList::of(&state, page))))
    }

    /// Create up to 1,000 links
    ///
    /// Each item is created or refused on its own; the answer has one result per item,
    /// in order.
    #[oai(
        path = "/api/v1/urls/bulk",
        method = "post",
        operation_id = "create_links_in_bulk",
        tag = "Tag::Urls"
    )]
    async fn bulk_create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: Json<BulkBody>,
    ) -> ApiResult<OkBulk> {
        let principal = auth.principal();
        let requests: Vec<NewLink> = body
            .0
            .items
            .into_iter()
            .map(NewLinkBody::into_request)
            .collect();
        // The shape of rules is the document's (one branch per condition type): like any
        // other shape, a break of it refuses the whole request, naming the item. An
        // address that has the document's shape but is none (`300.1.1.1`) is the item's
        // own error, like a URL's.
        for (i, request) in requests.iter().enumerate() {
            if let Some(rules) = &request.redirect_rules
                && let Err(hoplink::Error::Invalid {
                    field,
                    code,
                    reason,
                }) = hoplink::rules::check_rules(rules)
                && code != "invalid_ip"
            {
                return Err(hoplink::Error::Invalid {
                    field: format!("items[{i}].{field}").into(),
                    code,
                    reason: reason.replacen(&*field, &format!("items[{i}].{field}"), 1),
                }
                .into());
            }
        }
        let outcomes = state
            .shortener
            .shorten_many(requests, Some(&principal))
            .await?;
        let results = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(link) => BulkResult {
                    ok: Some(LinkBody::of(&state, link)),
                    error: None,
                },
                Err(e) => BulkResult {
                    ok: None,
                    error: Some(problem_of(&e)),
                },
            })
            .collect();
        Ok(OkBulk::Ok(Json(BulkResults { results })))
    }

    /// Get one of your links
    #[oai(
        path = "/api/v1/urls/:id",
        method = "get",
        operation_id = "get_link",
        tag = "Tag::Urls"
    )]
    async fn get_url(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> ApiResult<OkLink> {
        let link = state.shortener.get_link(&auth.principal(), id.0).await?;
        Ok(OkLink::Ok(Json(LinkBody::of(&state, link))))
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
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: Json<PatchLinkBody>,
    ) -> ApiResult<OkLink> {
        let patch = body.0.into_patch()?;
        let link = state
            .shortener
            .update_link(&auth.principal(), id.0, patch)
            .await?;
        Ok(OkLink::Ok(Json(LinkBody::of(&state, link))))
    }

    /// Delete one of your links
    ///
    /// Its code answers 404 from the very next redirect, and stays reserved.
    #[oai(
        path = "/api/v1/urls/:id",
        method = "delete",
        operation_id = "delete_link",
        tag = "Tag::Urls"
    )]
    async fn delete_url(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        state.shortener.delete_link(&auth.principal(), id.0).await?;
        Ok(NoContent::NoContent)
    }
}

/// The order of a link listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
#[oai(rename_all = "lowercase")]
pub enum SortBody {
    /// Newest first (default).
    #[default]
    Newest,
    /// Most clicked first.
    Clicks,
}

impl From<SortBody> for LinkSort {
    fn from(sort: SortBody) -> LinkSort {
        match sort {
            SortBody::Newest => LinkSort::Newest,
            SortBody::Clicks => LinkSort::Clicks,
        }
    }
}
