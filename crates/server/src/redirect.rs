//! `GET|HEAD /{short_code}`: the hot path. The connection loop ([`crate::serve`]) answers
//! it from hyper's request with [`answer`], before poem builds a request of its own
//! (the framework's conversion and layers cost about a sixth of the throughput); a
//! redirect request with a body, or one reaching [`crate::app`] through an embedding
//! program, goes through [`RedirectEndpoint`] instead. Both share [`respond`]. Its
//! OpenAPI description is added to the document by [`crate::spec`].

use crate::http::{
    REQUEST_ID, add_rate_limit_headers, ip_text, new_request_id, resolve_client, too_many_requests,
    valid_request_id,
};
use crate::metrics::REDIRECT_ROUTE;
use crate::problem::problem_of;
use crate::state::AppState;
use hoplink::{LimitScope, Visit};
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Answers redirects inside poem's application.
pub struct RedirectEndpoint {
    pub(crate) state: Arc<AppState>,
}

const PRIVATE_NO_CACHE: HeaderValue = HeaderValue::from_static("private, max-age=0");

impl Endpoint for RedirectEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let peer = req.remote_addr().as_socket_addr().copied();
        Ok(respond(
            &self.state,
            req.method(),
            req.uri().path(),
            req.headers(),
            peer,
        )
        .await)
    }
}

/// Whether [`answer`] takes a request: `GET` or `HEAD` of one path segment that is no
/// route of its own, without a body (a body goes through poem, which limits its size).
pub(crate) fn takes<B>(req: &poem::http::Request<B>) -> bool {
    let path = req.uri().path();
    let method = req.method();
    let headers = req.headers();
    (method == Method::GET || method == Method::HEAD)
        && is_code_path(path)
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|len| len.as_bytes() == b"0")
}

/// A path of one segment that is not one of the server's own routes.
pub(crate) fn is_code_path(path: &str) -> bool {
    path.len() > 1
        && !path[1..].contains('/')
        && !matches!(path, "/openapi.json" | "/docs" | "/metrics")
}

/// A redirect straight from hyper's request, with what [`crate::http::Observe`] adds to
/// every answer: the request id, metrics and the debug log line.
pub(crate) async fn answer<B>(
    state: &AppState,
    req: &poem::http::Request<B>,
    peer: SocketAddr,
) -> Response {
    let started = Instant::now();
    let headers = req.headers();
    let request_id = match headers.get(REQUEST_ID) {
        Some(v) if valid_request_id(v) => v.clone(),
        _ => new_request_id(),
    };
    let (method, path) = (req.method(), req.uri().path());
    let span = tracing::debug_span!("request", request_id = request_id.to_str().unwrap_or(""), %method, path);
    let mut resp = respond(state, method, path, headers, Some(peer))
        .instrument(span.clone())
        .await;
    let status = resp.status();
    resp.headers_mut().insert(REQUEST_ID, request_id);
    state.metrics.record(REDIRECT_ROUTE, status.as_u16());
    let took = started.elapsed();
    state.metrics.observe_redirect(took);
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            micros = took.as_micros() as u64,
            "answered"
        )
    });
    resp
}

/// The redirect itself: flood guard, resolve (which hands the click over), answer.
async fn respond(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Response {
    let code = path.trim_start_matches('/');
    let trusted = &state.config.trusted_proxies;
    let ip = peer.map(|p| resolve_client(p.ip(), headers, trusted));
    let decision = match ip {
        Some(ip) => match state
            .shortener
            .check_rate_limit(LimitScope::Redirect, ip_text(ip).as_str())
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "redirect flood guard unavailable; allowing");
                None
            }
        },
        None => None,
    };
    if let Some(d) = &decision
        && !d.allowed
    {
        state.metrics.rate_limited();
        return too_many_requests(d);
    }
    let text = |name: &header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let country = match &state.config.country_header {
        Some(name)
            if ip.is_some()
                && peer.is_some_and(|a| trusted.iter().any(|n| n.contains(&a.ip()))) =>
        {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok())
        }
        _ => None,
    };
    let visit = Visit {
        client_ip: ip,
        user_agent: text(&header::USER_AGENT),
        referrer: text(&header::REFERER),
        country,
        count: method != Method::HEAD,
    };
    let mut resp = match state.shortener.resolve(code, &visit).await {
        Ok(redirect) => {
            let status = StatusCode::from_u16(redirect.redirect_type().status())
                .unwrap_or(StatusCode::FOUND);
            match HeaderValue::from_str(redirect.location()) {
                Ok(location) => {
                    let mut resp = Response::builder()
                        .status(status)
                        .header(header::LOCATION, location)
                        .finish();
                    if !redirect.redirect_type().is_permanent() {
                        resp.headers_mut()
                            .insert(header::CACHE_CONTROL, PRIVATE_NO_CACHE);
                    }
                    resp
                }
                Err(_) => {
                    tracing::error!(code, "stored URL is not a valid Location header");
                    problem_of(&hoplink::Error::backend("store", "unusable stored URL"))
                        .into_response_with(&[])
                }
            }
        }
        Err(e) => problem_of(&e).into_response_with(&[]),
    };
    if let Some(d) = &decision {
        add_rate_limit_headers(&mut resp, d);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> poem::http::Request<()> {
        let mut req = poem::http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn the_fast_path_takes_bodyless_reads_of_one_segment_only() {
        assert!(takes(&request(Method::GET, "/abc1234", &[])));
        assert!(takes(&request(Method::HEAD, "/my-alias", &[])));
        assert!(takes(&request(
            Method::GET,
            "/abc1234",
            &[("content-length", "0")]
        )));
        for path in [
            "/",
            "/metrics",
            "/docs",
            "/openapi.json",
            "/api/v1/health",
            "/a/b",
        ] {
            assert!(!takes(&request(Method::GET, path, &[])), "{path}");
        }
        assert!(!takes(&request(Method::POST, "/abc1234", &[])));
        assert!(!takes(&request(Method::DELETE, "/abc1234", &[])));
        // A body goes through poem, which limits its size.
        assert!(!takes(&request(
            Method::GET,
            "/abc1234",
            &[("content-length", "10")]
        )));
        assert!(!takes(&request(
            Method::GET,
            "/abc1234",
            &[("transfer-encoding", "chunked")]
        )));
    }
}
