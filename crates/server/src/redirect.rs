//! `GET|HEAD /{short_code}`: the hot path. The connection loop ([`crate::serve`]) finds
//! the route and answers it with [`respond`] from hyper's request, before any framework
//! builds a request of its own. Its OpenAPI description is added to the document by
//! [`crate::spec`].

use crate::http::{add_rate_limit_headers, ip_text, resolve_client, too_many_requests};
use crate::problem::problem_of;
use crate::state::AppState;
use hoplink::{LimitScope, Visit};
use poem::Response;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::net::SocketAddr;

const PRIVATE_NO_CACHE: HeaderValue = HeaderValue::from_static("private, max-age=0");

/// `GET /` on a host: its domain's root redirect, the dashboard on the default domain.
pub(crate) async fn root(state: &AppState, host: Option<&str>) -> Response {
    match state.shortener.root_redirect(host).await {
        Ok(Some(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, location)
                .header(header::CACHE_CONTROL, PRIVATE_NO_CACHE)
                .finish(),
            Err(_) => problem_of(&hoplink::Error::backend("store", "unusable root redirect"))
                .into_response_with(&[]),
        },
        Ok(None) => problem_of(&hoplink::Error::NotFound { what: "page" }).into_response_with(&[]),
        Err(e) => problem_of(&e).into_response_with(&[]),
    }
}

/// The redirect itself: flood guard, resolve (which hands the click over), answer.
pub(crate) async fn respond(
    state: &AppState,
    method: &Method,
    path: &str,
    host: Option<&str>,
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
        host,
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
