//! RFC 9457 problem documents, and the one place where domain errors become statuses.

use crate::api::diagnose::{self, Violation};
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
    /// Known, but not allowed (administrators only).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
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
            403 => ApiError::Forbidden(Json(problem)),
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
                GoneReason::Blocked => "the link is blocked for abuse",
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
        Error::Forbidden { .. } => {
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "administrators only")
        }
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

/// What the API layer knows of a request poem refused: enough to say precisely why.
pub struct Refused<'a> {
    /// The served OpenAPI document.
    pub document: &'a serde_json::Value,
    /// The route's template (`/api/v1/urls/{id}`).
    pub template: &'a str,
    /// The method.
    pub method: &'a poem::http::Method,
    /// The query string.
    pub query: &'a str,
    /// The body as received.
    pub body: &'a [u8],
}

impl Refused<'_> {
    fn operation(&self) -> Option<&serde_json::Value> {
        self.document
            .get("paths")?
            .get(self.template)?
            .get(self.method.as_str().to_ascii_lowercase())
    }

    /// Why the parameter `name` was refused, from its schema and the value sent.
    fn parameter(&self, name: &str, location: &str) -> Option<Violation> {
        let parameter = self
            .operation()?
            .get("parameters")?
            .as_array()?
            .iter()
            .find(|p| p["name"] == name && p["in"] == location)?;
        let raw = match location {
            "query" => url::form_urlencoded::parse(self.query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())?,
            _ => return None,
        };
        let schema = &parameter["schema"];
        let value = match schema.get("type").and_then(serde_json::Value::as_str) {
            Some("integer") => match raw.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::from(raw),
            },
            _ => serde_json::Value::from(raw),
        };
        diagnose::walk(self.document, schema, &value, name)
    }
}

fn violation_problem(v: Violation) -> Problem {
    let status = StatusCode::from_u16(v.status).unwrap_or(StatusCode::BAD_REQUEST);
    let detail = match &v.field {
        Some(field) => format!("{field} {}", v.reason),
        None => v.reason.clone(),
    };
    Problem {
        field: v.field,
        ..Problem::new(status, v.code, detail)
    }
}

fn invalid_parameter(name: &str) -> Problem {
    Problem {
        field: Some(name.to_string()),
        ..Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{name} is not a valid value"),
        )
    }
}

/// Turns any error poem or poem-openapi raised (bad JSON, a value breaking a rule, a
/// wrong content type, missing credentials) into a problem document. Echoed input is
/// bounded and internal names never show.
pub fn problem_response_of_poem_error(
    error: poem::Error,
    refused: Option<&Refused<'_>>,
) -> Response {
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
        ParseRequestPayloadError,
    };
    if error.is::<AuthorizationError>() {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "credentials required: Authorization: Bearer <token> or X-API-Key",
        )
        .into_response_with(&[("WWW-Authenticate", WWW_AUTHENTICATE.into())]);
    }
    if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        let found =
            refused.and_then(|r| diagnose::body(r.document, r.template, r.method.as_str(), r.body));
        return match found {
            Some(v) => violation_problem(v),
            None => Problem::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "the body does not fit the operation's schema ({})",
                    hoplink::excerpt(&e.reason)
                ),
            ),
        }
        .into_response();
    }
    if let Some(e) = error.downcast_ref::<ParseParamError>() {
        let found = refused.and_then(|r| r.parameter(e.name, "query"));
        return found
            .map(violation_problem)
            .unwrap_or_else(|| invalid_parameter(e.name))
            .into_response();
    }
    if let Some(e) = error.downcast_ref::<ParsePathError>() {
        // poem names path parameters by position (`param0`); the template names them.
        let name = e
            .name
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| {
                refused.and_then(|r| {
                    r.template
                        .split('/')
                        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                        .nth(n)
                })
            })
            .unwrap_or(e.name);
        return invalid_parameter(name).into_response();
    }
    if let Some(e) = error.downcast_ref::<ContentTypeError>() {
        let detail = match e {
            ContentTypeError::ExpectContentType => "send the body as application/json".to_string(),
            ContentTypeError::NotSupported { content_type } => format!(
                "{} is not supported; send application/json",
                hoplink::excerpt(content_type)
            ),
        };
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
        .into_response();
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
            _ => hoplink::excerpt(&message),
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
