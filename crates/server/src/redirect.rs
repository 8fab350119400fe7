//! `GET|HEAD /{short_code}`: the hot path; `POST /{short_code}` (a password form) and
//! `GET|HEAD /{short_code}+` (the preview) beside it. The connection loop ([`crate::serve`]) finds
//! the route and answers it with [`respond`] from hyper's request, before any framework
//! builds a request of its own. Its OpenAPI description is added to the document by
//! [`crate::spec`].

use crate::html;
use crate::http::{
    add_rate_limit_headers, ip_text, rate_limit_values, resolve_client, too_many_requests,
};
use crate::problem::problem_of;
use crate::redirect_headers::{Caching, PRIVATE_NO_CACHE, RedirectHeaders};
use crate::serve::Answer;
use crate::state::AppState;
use hoplink::{LimitScope, RateLimitDecision, Visit};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use poem::Response;
use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::net::{IpAddr, SocketAddr};

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

/// What the redirect knows of a request, before the visit is built from it.
pub(crate) struct Incoming<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The headers every visit reads, found in [`Seen::of`]'s one pass.
    pub seen: Seen<'a>,
    pub peer: Option<SocketAddr>,
}

/// The request headers every visit reads: the first value of each that is text.
#[derive(Default)]
pub(crate) struct Seen<'a> {
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

impl<'a> Seen<'a> {
    /// One pass over `headers`. A look-up per header hashes its name and probes the map
    /// (callgrind: about a hundred instructions each, five per redirect); a request
    /// carries a dozen headers or so, and comparing a standard name is a byte compare.
    pub(crate) fn of(headers: &'a HeaderMap) -> Seen<'a> {
        let mut seen = Seen::default();
        for (name, value) in headers {
            let slot = if name == header::HOST {
                &mut seen.host
            } else if name == header::USER_AGENT {
                &mut seen.user_agent
            } else if name == header::REFERER {
                &mut seen.referer
            } else if name == header::ACCEPT_LANGUAGE {
                &mut seen.accept_language
            } else if name == header::AUTHORIZATION {
                &mut seen.authorization
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = value.to_str().ok();
            }
        }
        seen
    }
}

/// What the flood guard decided for a request's client.
struct Guard {
    ip: Option<IpAddr>,
    decision: Option<RateLimitDecision>,
}

impl Guard {
    /// `resp` with the guard's rate-limit headers.
    fn finish(&self, mut resp: Response) -> Response {
        if let Some(d) = &self.decision {
            add_rate_limit_headers(&mut resp, d);
        }
        resp
    }
}

/// The flood guard: the client's address and its decision, or the refusal (an HTML
/// page when the path answers pages).
async fn guard(state: &AppState, req: &Incoming<'_>, pages: bool) -> Result<Guard, Response> {
    let trusted = &state.config.trusted_proxies;
    let ip = req
        .peer
        .map(|p| resolve_client(p.ip(), req.headers, trusted));
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
    match &decision {
        Some(d) if !d.allowed => {
            state.metrics.rate_limited();
            if pages {
                let mut resp = html_error(&hoplink::Error::RateLimited {
                    retry_after: d.retry_after.unwrap_or_default(),
                });
                add_rate_limit_headers(&mut resp, d);
                Err(resp)
            } else {
                Err(too_many_requests(d))
            }
        }
        _ => Ok(Guard { ip, decision }),
    }
}

/// The visit of a request from the guarded client.
fn visit_of<'a>(
    state: &'a AppState,
    req: &Incoming<'a>,
    ip: Option<IpAddr>,
    password: Option<&'a str>,
) -> Visit<'a> {
    let headers = req.headers;
    let trusted = &state.config.trusted_proxies;
    let country = match &state.config.country_header {
        Some(name)
            if ip.is_some()
                && req
                    .peer
                    .is_some_and(|a| trusted.iter().any(|n| n.contains(&a.ip()))) =>
        {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok())
        }
        _ => None,
    };
    Visit {
        host: req.host,
        client_ip: ip,
        user_agent: req.seen.user_agent,
        referrer: req.seen.referer,
        country,
        count: req.method != Method::HEAD,
        accept_language: req.seen.accept_language,
        query: req.query,
        password,
    }
}

/// `GET|HEAD /{short_code}`: the redirect itself (the hot path), or for a
/// password-protected link the password form, or with `Authorization: Basic` the
/// redirect once the password is right.
///
/// The request's id goes into the answer's headers with the rest, taken from
/// `request_id`, when the link resolves.
pub(crate) async fn respond(
    state: &AppState,
    req: &Incoming<'_>,
    request_id: &mut Option<HeaderValue>,
) -> Answer {
    let code = req.path.trim_start_matches('/');
    let guard = match guard(state, req, false).await {
        Ok(guard) => guard,
        Err(refused) => return refused.into(),
    };
    let basic = req.seen.authorization.and_then(basic_password);
    let visit = visit_of(state, req, guard.ip, basic.as_deref());
    let resp = match state.shortener.resolve(code, &visit).await {
        Ok(redirect) => return guard.redirect(code, &redirect, request_id),
        Err(hoplink::Error::PasswordRequired) => html::password_form(StatusCode::OK, code, None),
        Err(hoplink::Error::Unauthorized { .. }) => {
            let mut resp = html::password_form(
                StatusCode::UNAUTHORIZED,
                code,
                Some("That password is not right."),
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, BASIC_CHALLENGE);
            resp
        }
        Err(e) => problem_of(&e).into_response_with(&[]),
    };
    guard.finish(resp).into()
}

/// `POST /{short_code}`: the password form's answer (`password`, form-encoded).
pub(crate) async fn submit(state: &AppState, req: &Incoming<'_>, body: FormBody) -> Answer {
    let code = req.path.trim_start_matches('/');
    let password = match body {
        FormBody::Form(password) => password,
        FormBody::TooLarge => {
            return html::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much",
                "The form sent more than a password.",
            )
            .into();
        }
        FormBody::NotAForm => {
            return html::message(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "Send the password as a form (application/x-www-form-urlencoded).",
            )
            .into();
        }
    };
    let guard = match guard(state, req, true).await {
        Ok(guard) => guard,
        Err(refused) => return refused.into(),
    };
    let visit = visit_of(state, req, guard.ip, Some(&password));
    let resp = match state.shortener.resolve(code, &visit).await {
        Ok(redirect) => return guard.redirect(code, &redirect, &mut None),
        Err(hoplink::Error::Unauthorized { .. } | hoplink::Error::PasswordRequired) => {
            html::password_form(
                StatusCode::UNAUTHORIZED,
                code,
                Some("That password is not right. Try again."),
            )
        }
        Err(e) => html_error(&e),
    };
    guard.finish(resp).into()
}

/// `GET|HEAD /{short_code}+`: where the link goes, without going there or counting.
pub(crate) async fn preview(state: &AppState, req: &Incoming<'_>) -> Response {
    let code = req.path.trim_start_matches('/').trim_end_matches('+');
    let guard = match guard(state, req, true).await {
        Ok(guard) => guard,
        Err(refused) => return refused,
    };
    let visit = visit_of(state, req, guard.ip, None);
    let resp = match state.shortener.preview(code, &visit).await {
        Ok(p) => html::preview(&p.short_code, p.title.as_deref(), p.destination.as_deref()),
        Err(e) => html_error(&e),
    };
    guard.finish(resp)
}

const BASIC_CHALLENGE: HeaderValue =
    HeaderValue::from_static("Basic realm=\"hoplink\", charset=\"UTF-8\"");

impl Guard {
    /// The answer to a link that resolved: its status, `Location`, its `Cache-Control`,
    /// the guard's `RateLimit-*` and, taken from `request_id`, `X-Request-Id`.
    fn redirect(
        &self,
        code: &str,
        redirect: &hoplink::Redirect,
        request_id: &mut Option<HeaderValue>,
    ) -> Answer {
        let status =
            StatusCode::from_u16(redirect.redirect_type().status()).unwrap_or(StatusCode::FOUND);
        let Ok(location) = HeaderValue::from_str(redirect.location()) else {
            tracing::error!(code, "stored URL is not a valid Location header");
            return self
                .finish(
                    problem_of(&hoplink::Error::backend("store", "unusable stored URL"))
                        .into_response_with(&[]),
                )
                .into();
        };
        let caching = if redirect.is_private() {
            Caching::NoStore
        } else if redirect.redirect_type().is_permanent() {
            Caching::Default
        } else {
            Caching::Revalidate
        };
        let mut resp = Answer::new(BoxBody::new(Empty::new().map_err(|never| match never {})));
        *resp.status_mut() = status;
        *resp.headers_mut() = RedirectHeaders {
            location,
            caching,
            rate_limit: self.decision.as_ref().map(rate_limit_values),
            request_id: request_id.take(),
        }
        .into_map();
        resp
    }
}

/// An error of the pages visitors see, as a page.
fn html_error(e: &hoplink::Error) -> Response {
    match e {
        hoplink::Error::NotFound { .. } => html::message(
            StatusCode::NOT_FOUND,
            "No such link",
            "This short link does not exist. Check that it was copied whole.",
        ),
        hoplink::Error::Gone { reason } => html::message(
            StatusCode::GONE,
            "This link no longer works",
            match reason {
                hoplink::GoneReason::Expired => "It has expired.",
                hoplink::GoneReason::Disabled => "Its owner has turned it off.",
                hoplink::GoneReason::ClickLimitReached => "It has been used as often as it may be.",
                hoplink::GoneReason::Blocked => "It has been blocked for abuse.",
            },
        ),
        hoplink::Error::RateLimited { retry_after } => {
            let seconds = retry_after.as_secs().max(1);
            let mut resp = html::message(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!("Wait {} minutes before trying again.", seconds.div_ceil(60)),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            resp
        }
        _ => {
            let status = StatusCode::from_u16(problem_of(e).status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            html::message(status, "Something went wrong", "Try again in a moment.")
        }
    }
}

/// The password part of an `Authorization: Basic` value (any user part).
fn basic_password(authorization: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

/// The body of a password form as read by the connection loop.
pub(crate) enum FormBody {
    /// The `password` field (empty when absent).
    Form(String),
    /// Over [`MAX_FORM_BYTES`].
    TooLarge,
    /// Not `application/x-www-form-urlencoded`.
    NotAForm,
}

/// Largest password form read.
pub(crate) const MAX_FORM_BYTES: usize = 4096;

impl FormBody {
    /// The form of `bytes` sent with `content_type`.
    pub(crate) fn parse(content_type: Option<&str>, bytes: &[u8]) -> FormBody {
        let is_form = content_type.is_some_and(|t| {
            t.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        if !is_form {
            return FormBody::NotAForm;
        }
        let password = url::form_urlencoded::parse(bytes)
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        FormBody::Form(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_finds_what_a_look_up_per_header_found() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("accept", "*/*"),
            ("user-agent", "curl/8.5"),
            ("host", "go.example"),
            ("referer", "https://news.example/item"),
            ("x-custom", "1"),
            ("accept-language", "fr-CH, fr;q=0.9"),
            ("authorization", "Basic OnNlY3JldA=="),
            ("user-agent", "a second value"),
        ] {
            headers.append(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let seen = Seen::of(&headers);
        let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(seen.host, get(header::HOST));
        assert_eq!(seen.user_agent, Some("curl/8.5"));
        assert_eq!(seen.user_agent, get(header::USER_AGENT));
        assert_eq!(seen.referer, get(header::REFERER));
        assert_eq!(seen.accept_language, get(header::ACCEPT_LANGUAGE));
        assert_eq!(seen.authorization, get(header::AUTHORIZATION));
        assert_eq!(
            seen.authorization.and_then(basic_password).as_deref(),
            Some("secret")
        );

        // Absent headers, and a value that isn't text, are none.
        let mut bare = HeaderMap::new();
        bare.insert(
            header::USER_AGENT,
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        let seen = Seen::of(&bare);
        assert!(seen.host.is_none() && seen.referer.is_none() && seen.authorization.is_none());
        assert!(seen.user_agent.is_none());
    }
}
