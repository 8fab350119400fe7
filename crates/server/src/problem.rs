//! RFC 9457 problem documents, and the one place where domain errors become statuses.

use hoplink::{Error, GoneReason};
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use std::time::Duration;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document with a machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct Problem {
    /// URI naming the kind of problem (`urn:hoplink:problem:<code>`).
    #[oai(rename = "type")]
    pub ty: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// Machine-readable code, e.g. `alias_taken`, `invalid_url`, `rate_limited`.
    pub code: String,
    /// The offending request field, for validation problems.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of `status` with `code`.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            ty: format!("urn:hoplink:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            field: None,
        }
    }
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Problem {
            field: Some("custom_alias".into()),
            ..Problem::new(
                StatusCode::CONFLICT,
                "alias_taken",
                "short code \"launch\" is already taken",
            )
        }
    }
}

impl Problem {
    /// A plain response carrying this problem (outside poem-openapi's typed responses).
    pub fn into_response_with(self, extra: &[(&'static str, String)]) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({
            "type": self.ty, "title": self.title, "status": self.status,
            "detail": self.detail, "code": self.code,
        });
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, PROBLEM_JSON);
        for (name, value) in extra {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(body.to_string())
    }
}

/// Every error answer of the API, each a problem document.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed request: bad JSON, wrong types, bad parameters.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing or invalid credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Not found, or not yours.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Already taken (`alias_taken`, `email_taken`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Body too large.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// Body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Validation failed; `field` names the field.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Rate limited; retry after `Retry-After` seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Unexpected failure.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A backend is unavailable; try again.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

/// `WWW-Authenticate` of every 401.
pub const WWW_AUTHENTICATE: &str = r#"Bearer realm="hoplink""#;

/// Seconds for `Retry-After`, rounded up, at least 1.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ApiError {
    /// The error for a problem, by its status.
    pub fn from_problem(problem: Problem) -> Self {
        match problem.status {
            400 => ApiError::BadRequest(Json(problem)),
            401 => ApiError::Unauthorized(Json(problem), WWW_AUTHENTICATE.into()),
            404 => ApiError::NotFound(Json(problem)),
            409 => ApiError::Conflict(Json(problem)),
            413 => ApiError::PayloadTooLarge(Json(problem)),
            415 => ApiError::UnsupportedMediaType(Json(problem)),
            422 => ApiError::Unprocessable(Json(problem)),
            429 => ApiError::TooManyRequests(Json(problem), 1),
            503 => ApiError::Unavailable(Json(problem)),
            _ => ApiError::Internal(Json(problem)),
        }
    }
}

/// Maps a domain error to its problem document (the one mapping of the server).
pub fn problem_of(error: &Error) -> Problem {
    match error {
        Error::NotFound { what } => Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        ),
        Error::Gone { reason } => {
            let detail = match reason {
                GoneReason::Expired => "the link has expired",
                GoneReason::Disabled => "the link is disabled",
                GoneReason::ClickLimitReached => "the link reached its click limit",
            };
            Problem::new(StatusCode::GONE, reason.as_str(), detail)
        }
        Error::Conflict { code, message } => {
            Problem::new(StatusCode::CONFLICT, code, message.clone())
        }
        Error::Invalid {
            field,
            code,
            reason,
        } => Problem {
            field: Some(field.to_string()),
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code,
                format!("{field} {reason}"),
            )
        },
        Error::RateLimited { retry_after } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests; retry after {} s",
                ceil_secs(*retry_after)
            ),
        ),
        Error::Unauthorized { .. } => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid or expired credentials",
        ),
        Error::Backend {
            retryable: true,
            backend,
            ..
        } => {
            tracing::warn!(%error, "backend unavailable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend_unavailable",
                format!("the {backend} backend is unavailable; try again"),
            )
        }
        other => {
            tracing::error!(error = %other, "request failed");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let problem = problem_of(&error);
        match error {
            Error::RateLimited { retry_after } => {
                ApiError::TooManyRequests(Json(problem), ceil_secs(retry_after))
            }
            _ => ApiError::from_problem(problem),
        }
    }
}

/// Turns any error poem or poem-openapi raised (bad JSON, wrong content type, missing
/// credentials, unknown route) into a problem document.
pub fn problem_response_of_poem_error(error: poem::Error) -> Response {
    if error.is::<poem_openapi::error::AuthorizationError>() {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "credentials required: Authorization: Bearer <token> or X-API-Key",
        )
        .into_response_with(&[("WWW-Authenticate", WWW_AUTHENTICATE.into())]);
    }
    let status = error.status();
    let message = error.to_string();
    let resp = error.into_response();
    // Typed errors (ApiError) arrive here already rendered as problem documents.
    if resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
    {
        return resp;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        _ => "internal_error",
    };
    let detail = if status.is_server_error() {
        tracing::error!(error = %message, "request failed");
        "internal error".to_string()
    } else {
        match status {
            StatusCode::NOT_FOUND => "no such route".to_string(),
            StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
            _ => message,
        }
    };
    let extra = if status == StatusCode::UNAUTHORIZED {
        vec![("WWW-Authenticate", WWW_AUTHENTICATE.to_string())]
    } else {
        Vec::new()
    };
    Problem::new(status, code, detail).into_response_with(&extra)
}

/// A header value from a number.
pub fn header_num(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_response_with(&[])
    }
}
