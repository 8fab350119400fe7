//! Moderation: every owner's links, blocking, the host blocklist, and abuse reports
//! (filed by anyone at `/api/v1/reports`, handled by administrators).

use super::input::{Int, Text};
use super::urls::{LinkBody, LinkList, NoContent, OkLink, OkLinks, default_limit};
use super::{AdminAuth, ApiResult, OptionalAuth, Tag, small};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::{BlockedHost, Link, ListOptions, Report, ReportReason, ReportStatus};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Block or unblock a link.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ModerateLinkBody {
    /// Blocked links answer 410 `link_blocked`; their owners can't unblock them.
    pub blocked: bool,
    /// Why, shown to the owner (at most 1,000 characters).
    #[oai(
        validator(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub blocked_reason: Option<Text>,
}

impl poem_openapi::types::Example for ModerateLinkBody {
    fn example() -> Self {
        ModerateLinkBody {
            blocked: true,
            blocked_reason: Some("phishing page reported and confirmed".into()),
        }
    }
}

/// A blocklist entry.
#[derive(Debug, Object)]
#[oai(example)]
pub struct BlockedHostBody {
    /// Identifier.
    pub id: Uuid,
    /// The host; it covers its subdomains.
    pub pattern: String,
    /// Why.
    pub reason: Option<String>,
    /// When added.
    pub created_at: DateTime<Utc>,
}

impl From<BlockedHost> for BlockedHostBody {
    fn from(h: BlockedHost) -> Self {
        BlockedHostBody {
            id: h.id,
            pattern: h.pattern,
            reason: h.reason,
            created_at: h.created_at,
        }
    }
}

impl poem_openapi::types::Example for BlockedHostBody {
    fn example() -> Self {
        BlockedHostBody {
            id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0003),
            pattern: "evil.example".into(),
            reason: Some("phishing kits".into()),
            created_at: example_time(),
        }
    }
}

/// The blocklist entries of the API (those of `BLOCKLIST_FILE` are not listed).
#[derive(Debug, Object)]
#[oai(example)]
pub struct BlocklistBody {
    /// Newest first.
    pub items: Vec<BlockedHostBody>,
}

impl poem_openapi::types::Example for BlocklistBody {
    fn example() -> Self {
        BlocklistBody {
            items: vec![poem_openapi::types::Example::example()],
        }
    }
}

/// A new blocklist entry.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewBlockedHostBody {
    /// A host (`evil.example`, or `*.evil.example`): it covers its subdomains.
    #[oai(validator(
        min_length = 1,
        max_length = 255,
        pattern = r"^(\*\.)?[A-Za-z0-9._-]+$"
    ))]
    pub pattern: Text,
    /// Why.
    #[oai(
        validator(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub reason: Option<Text>,
}

impl poem_openapi::types::Example for NewBlockedHostBody {
    fn example() -> Self {
        NewBlockedHostBody {
            pattern: "evil.example".into(),
            reason: Some("phishing kits".into()),
        }
    }
}

/// Why a link is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ReasonBody {
    /// Imitates a site to steal credentials.
    Phishing,
    /// Delivers malicious software.
    Malware,
    /// Unsolicited advertising.
    Spam,
    /// Anything else.
    Other,
}

impl From<ReasonBody> for ReportReason {
    fn from(r: ReasonBody) -> Self {
        match r {
            ReasonBody::Phishing => ReportReason::Phishing,
            ReasonBody::Malware => ReportReason::Malware,
            ReasonBody::Spam => ReportReason::Spam,
            ReasonBody::Other => ReportReason::Other,
        }
    }
}

impl From<ReportReason> for ReasonBody {
    fn from(r: ReportReason) -> Self {
        match r {
            ReportReason::Phishing => ReasonBody::Phishing,
            ReportReason::Malware => ReasonBody::Malware,
            ReportReason::Spam => ReasonBody::Spam,
            ReportReason::Other => ReasonBody::Other,
        }
    }
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum StatusBody {
    /// Waiting for an administrator.
    Open,
    /// Acted on.
    Resolved,
    /// Found groundless.
    Dismissed,
}

impl From<StatusBody> for ReportStatus {
    fn from(s: StatusBody) -> Self {
        match s {
            StatusBody::Open => ReportStatus::Open,
            StatusBody::Resolved => ReportStatus::Resolved,
            StatusBody::Dismissed => ReportStatus::Dismissed,
        }
    }
}

impl From<ReportStatus> for StatusBody {
    fn from(s: ReportStatus) -> Self {
        match s {
            ReportStatus::Open => StatusBody::Open,
            ReportStatus::Resolved => StatusBody::Resolved,
            ReportStatus::Dismissed => StatusBody::Dismissed,
        }
    }
}

/// How a report can be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ClosingBody {
    /// Acted on.
    Resolved,
    /// Found groundless.
    Dismissed,
}

/// An abuse report about a short link.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewReportBody {
    /// The short URL, as the visitor saw it.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub short_url: Text,
    /// Why.
    pub reason: ReasonBody,
    /// What else administrators should know (at most 1,000 characters).
    #[oai(
        validator(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub details: Option<Text>,
}

impl poem_openapi::types::Example for NewReportBody {
    fn example() -> Self {
        NewReportBody {
            short_url: "https://sho.rt/launch".into(),
            reason: ReasonBody::Phishing,
            details: Some("asks for my bank password".into()),
        }
    }
}

/// The report was filed.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ReportFiledBody {
    /// Its identifier.
    pub id: Uuid,
}

impl poem_openapi::types::Example for ReportFiledBody {
    fn example() -> Self {
        ReportFiledBody {
            id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0004),
        }
    }
}

/// A report with its link.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ReportBody {
    /// Identifier.
    pub id: Uuid,
    /// The reported link.
    pub link: LinkBody,
    /// Why.
    pub reason: ReasonBody,
    /// What the reporter added.
    pub details: Option<String>,
    /// Where it stands.
    pub status: StatusBody,
    /// When filed.
    pub created_at: DateTime<Utc>,
}

impl ReportBody {
    fn of(state: &AppState, report: Report, link: Link) -> Self {
        ReportBody {
            id: report.id,
            link: LinkBody::of(state, link),
            reason: report.reason.into(),
            details: report.details,
            status: report.status.into(),
            created_at: report.created_at,
        }
    }
}

impl poem_openapi::types::Example for ReportBody {
    fn example() -> Self {
        ReportBody {
            id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0004),
            link: poem_openapi::types::Example::example(),
            reason: ReasonBody::Phishing,
            details: Some("asks for my bank password".into()),
            status: StatusBody::Open,
            created_at: example_time(),
        }
    }
}

/// A page of reports.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ReportList {
    /// Newest first.
    pub items: Vec<ReportBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl poem_openapi::types::Example for ReportList {
    fn example() -> Self {
        ReportList {
            items: vec![poem_openapi::types::Example::example()],
            next_cursor: None,
        }
    }
}

/// Close a report.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CloseReportBody {
    /// `resolved` or `dismissed`.
    pub status: ClosingBody,
}

impl poem_openapi::types::Example for CloseReportBody {
    fn example() -> Self {
        CloseReportBody {
            status: ClosingBody::Resolved,
        }
    }
}

#[derive(ApiResponse)]
enum OkBlocklist {
    /// The blocklist.
    #[oai(status = 200)]
    Ok(Json<BlocklistBody>),
}

#[derive(ApiResponse)]
enum CreatedBlockedHost {
    /// Added: covered links answer 410 from now on, on every instance.
    #[oai(status = 201)]
    Created(Json<BlockedHostBody>),
}

#[derive(ApiResponse)]
enum AcceptedReport {
    /// Filed for an administrator.
    #[oai(status = 202)]
    Accepted(Json<ReportFiledBody>),
}

#[derive(ApiResponse)]
enum OkReports {
    /// A page of reports.
    #[oai(status = 200)]
    Ok(Json<ReportList>),
}

#[derive(ApiResponse)]
enum OkReport {
    /// The report.
    #[oai(status = 200)]
    Ok(Json<ReportBody>),
}

fn default_status() -> StatusBody {
    StatusBody::Open
}

pub struct AdminApi;

#[OpenApi]
impl AdminApi {
    /// Every owner's links (administrators)
    ///
    /// Anonymous links included, newest first.
    #[oai(
        path = "/api/v1/admin/links",
        method = "get",
        operation_id = "admin_list_links",
        tag = "Tag::Admin"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn links(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        /// Only links whose URL, title or code contains this text.
        #[oai(validator(max_length = 200))]
        q: Query<Option<Text>>,
        /// Only links of this short domain.
        #[oai(validator(max_length = 253))]
        domain: Query<Option<Text>>,
        /// Only blocked (`true`) or unblocked (`false`) links.
        blocked: Query<Option<bool>>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<Int>,
        /// `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<Text>>,
    ) -> ApiResult<OkLinks> {
        let options = ListOptions {
            limit: Some(small(limit.0)),
            cursor: cursor.0.map(Text::into_inner),
            tag: None,
            query: q.0.map(Text::into_inner),
            domain: domain.0.map(Text::into_inner),
            sort: hoplink::LinkSort::Newest,
        };
        let page = state
            .shortener
            .admin_links(&auth.principal(), options, blocked.0)
            .await?;
        Ok(OkLinks::Ok(Json(LinkList::of(&state, page))))
    }

    /// Block or unblock a link (administrators)
    ///
    /// The very next redirect on every instance answers 410 `link_blocked`.
    #[oai(
        path = "/api/v1/admin/links/:id",
        method = "patch",
        operation_id = "moderate_link",
        tag = "Tag::Admin"
    )]
    async fn moderate(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        id: Path<Uuid>,
        body: Json<ModerateLinkBody>,
    ) -> ApiResult<OkLink> {
        let body = body.0;
        let link = state
            .shortener
            .block_link(
                &auth.principal(),
                id.0,
                body.blocked,
                body.blocked_reason.as_ref().map(|r| r.0.as_str()),
            )
            .await?;
        Ok(OkLink::Ok(Json(LinkBody::of(&state, link))))
    }

    /// The host blocklist (administrators)
    #[oai(
        path = "/api/v1/admin/blocklist",
        method = "get",
        operation_id = "list_blocklist",
        tag = "Tag::Admin"
    )]
    async fn blocklist(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
    ) -> ApiResult<OkBlocklist> {
        let hosts = state.shortener.blocklist(&auth.principal()).await?;
        Ok(OkBlocklist::Ok(Json(BlocklistBody {
            items: hosts.into_iter().map(Into::into).collect(),
        })))
    }

    /// Block a host and its subdomains (administrators)
    ///
    /// New and edited links to it are refused (`422 blocked_url`); existing ones answer
    /// 410 `link_blocked` from now on, on every instance.
    #[oai(
        path = "/api/v1/admin/blocklist",
        method = "post",
        operation_id = "block_host",
        tag = "Tag::Admin"
    )]
    async fn block(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        body: Json<NewBlockedHostBody>,
    ) -> ApiResult<CreatedBlockedHost> {
        let body = body.0;
        let host = state
            .shortener
            .block_host(
                &auth.principal(),
                &body.pattern.0,
                body.reason.as_ref().map(|r| r.0.as_str()),
            )
            .await?;
        Ok(CreatedBlockedHost::Created(Json(host.into())))
    }

    /// Remove a blocklist entry (administrators)
    #[oai(
        path = "/api/v1/admin/blocklist/:id",
        method = "delete",
        operation_id = "unblock_host",
        tag = "Tag::Admin"
    )]
    async fn unblock(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        state
            .shortener
            .unblock_host(&auth.principal(), id.0)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Report an abusive short link
    ///
    /// Anyone may report; anonymous reports count against the anonymous rate limit.
    #[oai(
        path = "/api/v1/reports",
        method = "post",
        operation_id = "report_link",
        tag = "Tag::Admin"
    )]
    async fn report(
        &self,
        state: Data<&Arc<AppState>>,
        auth: OptionalAuth,
        body: Json<NewReportBody>,
    ) -> ApiResult<AcceptedReport> {
        let body = body.0;
        let report = state
            .shortener
            .report(
                auth.principal().as_ref(),
                &body.short_url.0,
                body.reason.into(),
                body.details.as_ref().map(|d| d.0.as_str()),
            )
            .await?;
        Ok(AcceptedReport::Accepted(Json(ReportFiledBody {
            id: report.id,
        })))
    }

    /// Abuse reports (administrators)
    #[oai(
        path = "/api/v1/admin/reports",
        method = "get",
        operation_id = "list_reports",
        tag = "Tag::Admin"
    )]
    async fn reports(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        /// Which reports.
        #[oai(default = "default_status")]
        status: Query<StatusBody>,
        /// Page size.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<Int>,
        /// `next_cursor` of the previous page.
        #[oai(validator(min_length = 1, max_length = 200, pattern = r"^[A-Za-z0-9_-]+$"))]
        cursor: Query<Option<Text>>,
    ) -> ApiResult<OkReports> {
        let page = state
            .shortener
            .reports(
                &auth.principal(),
                status.0.into(),
                small(limit.0),
                cursor.0.as_ref().map(|c| c.0.as_str()),
            )
            .await?;
        Ok(OkReports::Ok(Json(ReportList {
            next_cursor: page.next_cursor.map(|c| c.encode()),
            items: page
                .items
                .into_iter()
                .map(|(r, l)| ReportBody::of(&state, r, l))
                .collect(),
        })))
    }

    /// Close a report (administrators)
    #[oai(
        path = "/api/v1/admin/reports/:id",
        method = "patch",
        operation_id = "close_report",
        tag = "Tag::Admin"
    )]
    async fn close(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        id: Path<Uuid>,
        body: Json<CloseReportBody>,
    ) -> ApiResult<OkReport> {
        let status = match body.0.status {
            ClosingBody::Resolved => ReportStatus::Resolved,
            ClosingBody::Dismissed => ReportStatus::Dismissed,
        };
        let (report, link) = state
            .shortener
            .set_report_status(&auth.principal(), id.0, status)
            .await?;
        let link = link.ok_or(hoplink::Error::NotFound { what: "link" })?;
        Ok(OkReport::Ok(Json(ReportBody::of(&state, report, link))))
    }
}
