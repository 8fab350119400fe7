//! `/api/v1/domains`: the short domains of the deployment.

use super::input::Text;
use super::urls::NoContent;
use super::{AdminAuth, ApiResult, Auth, Tag};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::{Domain, DomainPatch};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;

/// A short domain.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DomainBody {
    /// Lower-case host.
    pub host: String,
    /// Whether it is the default domain (`BASE_URL`'s host).
    pub is_default: bool,
    /// Where `GET /` goes (default domain without one: the dashboard).
    pub root_redirect: Option<String>,
    /// Where an unknown code goes instead of 404.
    pub not_found_redirect: Option<String>,
    /// Where an expired, disabled, blocked or used-up link goes instead of 410.
    pub gone_redirect: Option<String>,
    /// When added.
    pub created_at: DateTime<Utc>,
}

impl From<Domain> for DomainBody {
    fn from(d: Domain) -> Self {
        DomainBody {
            host: d.host,
            is_default: d.is_default,
            root_redirect: d.root_redirect,
            not_found_redirect: d.not_found_redirect,
            gone_redirect: d.gone_redirect,
            created_at: d.created_at,
        }
    }
}

impl poem_openapi::types::Example for DomainBody {
    fn example() -> Self {
        DomainBody {
            host: "go.example.com".into(),
            is_default: false,
            root_redirect: Some("https://example.com/".into()),
            not_found_redirect: Some("https://example.com/not-found".into()),
            gone_redirect: None,
            created_at: DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        }
    }
}

/// Every domain of the deployment.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DomainList {
    /// The default first.
    pub items: Vec<DomainBody>,
}

impl poem_openapi::types::Example for DomainList {
    fn example() -> Self {
        DomainList {
            items: vec![poem_openapi::types::Example::example()],
        }
    }
}

/// A new short domain.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewDomainBody {
    /// Lower-case DNS name of two labels or more (internationalised names in their
    /// `xn--` form), no port, no IP address, not `localhost`.
    #[oai(validator(
        min_length = 3,
        max_length = 253,
        pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
    ))]
    pub host: Text,
    /// Where `GET /` on this host goes.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub root_redirect: Option<Text>,
    /// Where an unknown code goes instead of 404.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub not_found_redirect: Option<Text>,
    /// Where an expired, disabled, blocked or used-up link goes instead of 410.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub gone_redirect: Option<Text>,
}

impl poem_openapi::types::Example for NewDomainBody {
    fn example() -> Self {
        NewDomainBody {
            host: "go.example.com".into(),
            root_redirect: Some("https://example.com/".into()),
            not_found_redirect: None,
            gone_redirect: None,
        }
    }
}

/// A change to a domain's redirects: absent fields stay, `null` clears one.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct PatchDomainBody {
    /// Where `GET /` goes.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub root_redirect: MaybeUndefined<Text>,
    /// Where an unknown code goes instead of 404.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub not_found_redirect: MaybeUndefined<Text>,
    /// Where a link that no longer redirects goes instead of 410.
    #[oai(validator(min_length = 1, max_length = 2048), nullable)]
    pub gone_redirect: MaybeUndefined<Text>,
}

impl poem_openapi::types::Example for PatchDomainBody {
    fn example() -> Self {
        PatchDomainBody {
            root_redirect: MaybeUndefined::Null,
            not_found_redirect: MaybeUndefined::Value("https://example.com/missing".into()),
            gone_redirect: MaybeUndefined::Undefined,
        }
    }
}

fn change(v: MaybeUndefined<Text>) -> Option<Option<String>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(t) => Some(Some(t.0)),
    }
}

#[derive(ApiResponse)]
enum OkDomains {
    /// Every domain, the default first.
    #[oai(status = 200)]
    Ok(Json<DomainList>),
}

#[derive(ApiResponse)]
enum CreatedDomain {
    /// Added.
    #[oai(status = 201)]
    Created(Json<DomainBody>),
}

#[derive(ApiResponse)]
enum OkDomain {
    /// The domain.
    #[oai(status = 200)]
    Ok(Json<DomainBody>),
}

pub struct DomainsApi;

#[OpenApi]
impl DomainsApi {
    /// Every short domain
    #[oai(
        path = "/api/v1/domains",
        method = "get",
        operation_id = "list_domains",
        tag = "Tag::Domains"
    )]
    async fn list(&self, state: Data<&Arc<AppState>>, _auth: Auth) -> ApiResult<OkDomains> {
        let domains = state.shortener.domains().await?;
        Ok(OkDomains::Ok(Json(DomainList {
            items: domains.into_iter().map(Into::into).collect(),
        })))
    }

    /// Add a short domain (administrators)
    ///
    /// Point the host's DNS at this service; from then on `Host: <host>` picks it.
    #[oai(
        path = "/api/v1/domains",
        method = "post",
        operation_id = "create_domain",
        tag = "Tag::Domains"
    )]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        body: Json<NewDomainBody>,
    ) -> ApiResult<CreatedDomain> {
        let body = body.0;
        let redirects = DomainPatch {
            root_redirect: body.root_redirect.map(|t| Some(t.0)),
            not_found_redirect: body.not_found_redirect.map(|t| Some(t.0)),
            gone_redirect: body.gone_redirect.map(|t| Some(t.0)),
        };
        let domain = state
            .shortener
            .add_domain(&auth.principal(), &body.host.0, redirects)
            .await?;
        Ok(CreatedDomain::Created(Json(domain.into())))
    }

    /// Change a domain's redirects (administrators)
    ///
    /// The default domain's too. Every instance uses the change from the next request.
    #[oai(
        path = "/api/v1/domains/:host",
        method = "patch",
        operation_id = "update_domain",
        tag = "Tag::Domains"
    )]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        /// The domain's host.
        #[oai(validator(min_length = 1, max_length = 253))]
        host: Path<Text>,
        body: Json<PatchDomainBody>,
    ) -> ApiResult<OkDomain> {
        let body = body.0;
        let patch = DomainPatch {
            root_redirect: change(body.root_redirect),
            not_found_redirect: change(body.not_found_redirect),
            gone_redirect: change(body.gone_redirect),
        };
        let domain = state
            .shortener
            .update_domain(&auth.principal(), &host.0.0, patch)
            .await?;
        Ok(OkDomain::Ok(Json(domain.into())))
    }

    /// Delete a domain no link uses (administrators)
    #[oai(
        path = "/api/v1/domains/:host",
        method = "delete",
        operation_id = "delete_domain",
        tag = "Tag::Domains"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AdminAuth,
        /// The domain's host.
        #[oai(validator(min_length = 1, max_length = 253))]
        host: Path<Text>,
    ) -> ApiResult<NoContent> {
        state
            .shortener
            .delete_domain(&auth.principal(), &host.0.0)
            .await?;
        Ok(NoContent::NoContent)
    }
}
