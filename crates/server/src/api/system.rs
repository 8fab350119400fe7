//! Health and metrics.

use super::Tag;
use crate::problem::{Problem, WWW_AUTHENTICATE};
use crate::state::AppState;
use poem::Request;
use poem::http::StatusCode;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::collections::BTreeMap;
use std::sync::Arc;

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
#[oai(example)]
pub struct HealthBody {
    /// `ok`, `degraded` (an optional backend is down) or `unavailable`.
    pub status: String,
    /// Each backend by name: always `store`, `cache`, `bus`, `rate_limiter` and
    /// `id_allocator`.
    pub components: BTreeMap<String, ComponentBody>,
}

impl poem_openapi::types::Example for HealthBody {
    fn example() -> Self {
        let ok = |required| ComponentBody {
            status: "ok".into(),
            required,
            error: None,
        };
        HealthBody {
            status: "ok".into(),
            components: [
                ("store", ok(true)),
                ("cache", ok(false)),
                ("bus", ok(false)),
                ("rate_limiter", ok(false)),
                ("id_allocator", ok(true)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
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

pub struct SystemApi;

#[OpenApi]
impl SystemApi {
    /// Health of the service and each backend
    #[oai(
        path = "/api/v1/health",
        method = "get",
        operation_id = "health",
        tag = "Tag::System"
    )]
    async fn health(&self, state: Data<&Arc<AppState>>) -> HealthResponse {
        let report = state.shortener.health().await;
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
    async fn metrics(&self, state: Data<&Arc<AppState>>, req: &Request) -> MetricsResponse {
        if let Some(token) = &state.config.metrics_token {
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
                    WWW_AUTHENTICATE.into(),
                );
            }
        }
        MetricsResponse::Ok(PlainText(state.metrics.render(&state.shortener.stats())))
    }
}
