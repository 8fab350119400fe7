//! CORS for browser clients of the API on other origins (`CORS_ORIGINS`). With no
//! origins configured (the default) no cross-origin access is granted and nothing here
//! costs more than an emptiness check.

use crate::routes::{Handler, Route};
use poem::Response;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// Request headers a browser may send cross-origin.
const ALLOWED_HEADERS: &str = "authorization, content-type, x-api-key, x-request-id";
/// Response headers a browser script may read.
const EXPOSED_HEADERS: &str =
    "x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, location";

/// The request's `Origin` when it is one of `allowed` (`*` allows any).
pub fn allowed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    if allowed.is_empty() {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) for
/// an API route from an allowed origin; `None` for anything else.
pub fn preflight<B>(
    route: &Route,
    origin: Option<&HeaderValue>,
    req: &hyper::Request<B>,
) -> Option<Response> {
    let origin = origin?;
    if req.method() != Method::OPTIONS || !matches!(route.handler, Handler::Api) {
        return None;
    }
    let wanted = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    let wanted = Method::from_bytes(wanted.as_bytes()).ok()?;
    if !route.allows(&wanted) {
        return None;
    }
    let mut resp = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, route.allow_header())
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .finish();
    add_headers(&mut resp, origin.clone());
    Some(resp)
}

/// Grants `origin` access to an API answer.
pub fn add_headers(resp: &mut Response, origin: HeaderValue) {
    let headers = resp.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}
