//! The connection loop: hyper serves each connection (HTTP/1.1, or HTTP/2 with prior
//! knowledge). Every request is recognised once, by the route table, and observed once
//! here (request id, metrics, log line): redirects and pages are answered straight from
//! hyper's request, API operations become poem requests for the poem-openapi service.
//!
//! Why not `poem::Server`: on the redirect path poem's per-request work (its own
//! request and response types, the endpoint layers) cost as much as all of hoplink's
//! own, measured by `scripts/loadtest.sh`'s bare-poem yardstick. The API keeps poem.

use crate::compress;
use crate::conn::{Gate, ProblemIo, Refusal, open_files_limit};
use crate::cors;
use crate::dashboard;
use crate::head_timer::HeadTimer;
use crate::http::{REQUEST_ID, new_request_id, valid_request_id};
use crate::problem::Problem;
use crate::redirect;
use crate::routes::{self, Handler, ROUTES, Route};
use crate::state::AppState;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::endpoint::BoxEndpoint;
use poem::http::{Method, StatusCode, header};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, Response};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::Instrument;

/// The route a request matched, for the API layer (its scope, its template).
#[derive(Clone, Copy)]
pub(crate) struct Matched(pub &'static Route);

/// What one connection needs to answer its requests. Each request holds the connection
/// through an `Arc` of its own: cloning the shared app and state per request instead
/// would have every core write their reference counts, one cache line passed between
/// cores on every request.
struct Connection {
    app: Arc<BoxEndpoint<'static, Response>>,
    state: Arc<AppState>,
    local: SocketAddr,
    peer: SocketAddr,
}

/// A response as hyper sends it. The redirect builds its own directly: going through
/// poem's `Response` and its conversion cost about 240 instructions a redirect.
pub(crate) type Answer = hyper::Response<BoxBody<Bytes, std::io::Error>>;

impl Connection {
    async fn answer(
        self: Arc<Self>,
        mut req: hyper::Request<Incoming>,
    ) -> Result<Answer, Infallible> {
        let started = Instant::now();
        let state = &*self.state;
        let index = routes::find(req.uri().path());
        let route = index.map(|i| &ROUTES[i]);
        // Taken by the redirect, which sets it with the rest of its headers.
        let mut request_id = Some(match req.headers().get(REQUEST_ID) {
            Some(v) if valid_request_id(v) => v.clone(),
            _ => new_request_id(),
        });
        let is_redirect = index == Some(routes::REDIRECT) && req.method() != Method::POST;
        let span = if is_redirect {
            tracing::debug_span!("request", request_id = id_text(&request_id), method = %req.method(), path = req.uri().path())
        } else {
            tracing::info_span!("request", request_id = id_text(&request_id), method = %req.method(), path = req.uri().path())
        };
        let origin = cors::allowed_origin(&state.config.cors_origins, req.headers());
        // Redirects are never compressed, so they skip the look at Accept-Encoding.
        let encoding = match route.map(|r| r.handler) {
            Some(Handler::Page(_) | Handler::Dashboard) => compress::negotiate(req.headers(), true),
            Some(Handler::Api) => compress::negotiate(req.headers(), false),
            _ => None,
        };
        let mut resp: Answer = match route {
            None => Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such page or short link",
            )
            .into_response_with(&[])
            .into(),
            Some(route) if !route.allows(req.method()) => {
                match cors::preflight(route, origin.as_ref(), &req) {
                    Some(resp) => resp,
                    None => method_not_allowed(route),
                }
                .into()
            }
            Some(route) => match route.handler {
                Handler::Redirect if req.method() == Method::POST => {
                    let (parts, body) = req.into_parts();
                    let form = read_form(&parts.headers, body).await;
                    let incoming = incoming(&parts, self.peer);
                    redirect::submit(state, &incoming, form)
                        .instrument(span.clone())
                        .await
                }
                Handler::Redirect => {
                    let (parts, _) = req.into_parts();
                    let incoming = incoming(&parts, self.peer);
                    // Not wrapped in a span that is off (the redirect's is, at the default
                    // level): the wrapper and the moves of this future into it cost
                    // about 250 instructions a redirect under callgrind.
                    if span.is_disabled() {
                        redirect::respond(state, &incoming, &mut request_id).await
                    } else {
                        redirect::respond(state, &incoming, &mut request_id)
                            .instrument(span.clone())
                            .await
                    }
                }
                Handler::Preview => {
                    let (parts, _) = req.into_parts();
                    redirect::preview(state, &incoming(&parts, self.peer))
                        .instrument(span.clone())
                        .await
                        .into()
                }
                Handler::Root => redirect::root(state, host_of(&req)).await.into(),
                Handler::Page(page) => match encoding {
                    Some(encoding) => {
                        compress::page(page(state), route.path, encoding, &state.compressed_pages)
                            .await
                    }
                    None => page(state),
                }
                .into(),
                Handler::Dashboard => {
                    dashboard::answer(req.uri().path(), req.headers(), encoding).into()
                }
                Handler::Api => {
                    if let Some(id) = &request_id {
                        req.headers_mut().insert(REQUEST_ID, id.clone());
                    }
                    let mut req = poem::Request::from((
                        req,
                        LocalAddr(Addr::SocketAddr(self.local)),
                        RemoteAddr(Addr::SocketAddr(self.peer)),
                        poem::http::uri::Scheme::HTTP,
                    ));
                    req.extensions_mut().insert(Matched(route));
                    let resp = self.app.get_response(req).instrument(span.clone()).await;
                    let mut resp = match encoding {
                        Some(encoding) => compress::response(resp, encoding).await,
                        None => resp,
                    };
                    if let Some(origin) = origin {
                        cors::add_headers(&mut resp, origin);
                    }
                    resp.into()
                }
            },
        };
        let status = resp.status();
        if let Some(id) = request_id {
            resp.headers_mut().insert(REQUEST_ID, id);
        }
        state.metrics.record(index, status.as_u16());
        let took = started.elapsed();
        let micros = took.as_micros() as u64;
        if is_redirect {
            state.metrics.observe_redirect(took);
            span.in_scope(|| tracing::debug!(status = status.as_u16(), micros, "answered"));
        } else if status.is_server_error() {
            span.in_scope(|| tracing::error!(status = status.as_u16(), micros, "answered"));
        } else {
            span.in_scope(|| tracing::info!(status = status.as_u16(), micros, "answered"));
        }
        Ok(resp)
    }
}

/// A request id as text for a span (evaluated only when the span is enabled, which the
/// redirect's is not at the default level).
fn id_text(request_id: &Option<poem::http::HeaderValue>) -> &str {
    request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The host a request is for: `Host` (HTTP/1.1) or the URI's authority (HTTP/2).
fn host_of<B>(req: &hyper::Request<B>) -> Option<&str> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    host_in(host, req.uri())
}

/// `host`, the `Host` header's text, or else the URI's authority.
fn host_in<'a>(host: Option<&'a str>, uri: &'a poem::http::Uri) -> Option<&'a str> {
    host.or_else(|| uri.authority().map(|a| a.as_str()))
}

/// What the redirect handlers need of a request.
fn incoming(parts: &poem::http::request::Parts, peer: SocketAddr) -> redirect::Incoming<'_> {
    let seen = redirect::Seen::of(&parts.headers);
    redirect::Incoming {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        host: host_in(seen.host, &parts.uri),
        headers: &parts.headers,
        seen,
        peer: Some(peer),
    }
}

/// A password form's body, read up to [`redirect::MAX_FORM_BYTES`].
async fn read_form(headers: &poem::http::HeaderMap, body: Incoming) -> redirect::FormBody {
    use http_body_util::BodyExt;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match http_body_util::Limited::new(body, redirect::MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(collected) => redirect::FormBody::parse(content_type, &collected.to_bytes()),
        Err(_) => redirect::FormBody::TooLarge,
    }
}

/// 405 with the route's methods in `Allow` (RFC 9110).
fn method_not_allowed(route: &Route) -> Response {
    let allow = route.allow_header();
    let mut resp = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} answers {allow}", route.path),
    )
    .into_response_with(&[]);
    if let Ok(value) = allow.parse() {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    resp
}

/// `wanted` connections, or fewer when the process may not open that many files (with
/// room for the listener, backends and logs).
fn connection_cap(wanted: u32) -> usize {
    const RESERVE: u64 = 256;
    let wanted = u64::from(wanted);
    match open_files_limit() {
        Some(limit) if limit < wanted + RESERVE => {
            let cap = limit.saturating_sub(RESERVE).max(1);
            tracing::warn!(
                wanted,
                cap,
                open_files_limit = limit,
                "MAX_CONNECTIONS is above what this process may open; raise `ulimit -n`"
            );
            cap as usize
        }
        _ => wanted as usize,
    }
}

/// Tells a refused client why, briefly, and closes.
async fn refuse(mut stream: tokio::net::TcpStream, refusal: Refusal) {
    use tokio::io::AsyncWriteExt;
    let answer = refusal.answer();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) with the configured timeouts; see
/// [`for_connection`].
fn http_builder(config: &crate::config::Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .header_read_timeout(Duration::from_secs(config.header_read_timeout));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(config.header_read_timeout))
        .keep_alive_timeout(Duration::from_secs(config.header_read_timeout));
    builder
}

/// `shared`, with the HTTP/1 header-read deadline kept by a timer of the connection's
/// own ([`HeadTimer`]).
fn for_connection(shared: &auto::Builder<TokioExecutor>) -> auto::Builder<TokioExecutor> {
    let mut builder = shared.clone();
    builder.http1().timer(HeadTimer::default());
    builder
}

/// Serves one connection over `stream` as if it came from `peer`, in a task of its
/// own, past the listener and its connection limits.
pub(crate) fn serve_stream<S>(
    app: Arc<BoxEndpoint<'static, Response>>,
    state: Arc<AppState>,
    local: SocketAddr,
    peer: SocketAddr,
    stream: S,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let builder = for_connection(&http_builder(&state.config));
    let connection = Arc::new(Connection {
        app,
        state,
        local,
        peer,
    });
    let service = hyper::service::service_fn(move |req| connection.clone().answer(req));
    tokio::spawn(async move {
        if let Err(e) = builder
            .serve_connection(TokioIo::new(stream), service)
            .await
        {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
    });
}

/// Serves until `stop` fires, then stops accepting and lets open connections finish
/// their requests for at most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<BoxEndpoint<'static, Response>>,
    state: Arc<AppState>,
    mut stop: oneshot::Receiver<()>,
    grace: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let config = &state.config;
    let builder = http_builder(config);
    let gate = Gate::new(
        connection_cap(config.max_connections),
        config.max_connections_per_ip,
    );
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the listener itself is fine.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let shared = config
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer.ip()));
        let ticket = match gate.admit(peer.ip(), shared, &state.metrics) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                tokio::spawn(refuse(stream, refusal));
                continue;
            }
        };
        let connection = Arc::new(Connection {
            app: app.clone(),
            state: state.clone(),
            local,
            peer,
        });
        let service = hyper::service::service_fn(move |req| connection.clone().answer(req));
        let (builder, watcher) = (for_connection(&builder), graceful.watcher());
        let first_bytes = Duration::from_secs(config.header_read_timeout);
        tokio::spawn(async move {
            // hyper waits for the first bytes (to tell HTTP/1 from HTTP/2) without a
            // timeout of its own: a connection that says nothing is closed here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_bytes, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                drop(ticket);
                return;
            }
            let io = TokioIo::new(ProblemIo::new(stream));
            let served = builder.serve_connection(io, service);
            if let Err(e) = watcher.watch(served).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(ticket);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace_seconds = grace.as_secs(), "connections still open after the grace period; closing them");
        }
    }
    Ok(())
}
