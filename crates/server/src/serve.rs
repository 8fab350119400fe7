//! The connection loop: hyper serves each connection (HTTP/1.1, or HTTP/2 with prior
//! knowledge). Every request is recognised once, by the route table, and observed once
//! here (request id, metrics, log line): redirects and pages are answered straight from
//! hyper's request, API operations become poem requests for the poem-openapi service.
//!
//! Why not `poem::Server`: on the redirect path poem's per-request work (its own
//! request and response types, the endpoint layers) cost as much as all of hoplink's
//! own, measured by `scripts/loadtest.sh`'s bare-poem yardstick. The API keeps poem.

use crate::cors;
use crate::http::{REQUEST_ID, new_request_id, valid_request_id};
use crate::problem::Problem;
use crate::redirect;
use crate::routes::{self, Handler, ROUTES, Route};
use crate::state::AppState;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::endpoint::BoxEndpoint;
use poem::http::{StatusCode, header};
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

/// What one connection needs to answer its requests.
#[derive(Clone)]
struct Connection {
    app: Arc<BoxEndpoint<'static, Response>>,
    state: Arc<AppState>,
    local: SocketAddr,
    peer: SocketAddr,
}

type Answer = hyper::Response<BoxBody<Bytes, std::io::Error>>;

impl Connection {
    async fn answer(self, mut req: hyper::Request<Incoming>) -> Result<Answer, Infallible> {
        let started = Instant::now();
        let state = &*self.state;
        let index = routes::find(req.uri().path());
        let route = index.map(|i| &ROUTES[i]);
        let request_id = match req.headers().get(REQUEST_ID) {
            Some(v) if valid_request_id(v) => v.clone(),
            _ => new_request_id(),
        };
        let is_redirect = index == Some(routes::REDIRECT);
        let span = if is_redirect {
            tracing::debug_span!("request", request_id = request_id.to_str().unwrap_or(""), method = %req.method(), path = req.uri().path())
        } else {
            tracing::info_span!("request", request_id = request_id.to_str().unwrap_or(""), method = %req.method(), path = req.uri().path())
        };
        let origin = cors::allowed_origin(&state.config.cors_origins, req.headers());
        let mut resp = match route {
            None => Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such page or short link",
            )
            .into_response_with(&[]),
            Some(route) if !route.allows(req.method()) => {
                match cors::preflight(route, origin.as_ref(), &req) {
                    Some(resp) => resp,
                    None => method_not_allowed(route),
                }
            }
            Some(route) => match route.handler {
                Handler::Redirect => {
                    redirect::respond(
                        state,
                        req.method(),
                        req.uri().path(),
                        req.headers(),
                        Some(self.peer),
                    )
                    .instrument(span.clone())
                    .await
                }
                Handler::Page(page) => page(state),
                Handler::Api => {
                    req.headers_mut().insert(REQUEST_ID, request_id.clone());
                    let mut req = poem::Request::from((
                        req,
                        LocalAddr(Addr::SocketAddr(self.local)),
                        RemoteAddr(Addr::SocketAddr(self.peer)),
                        poem::http::uri::Scheme::HTTP,
                    ));
                    req.extensions_mut().insert(Matched(route));
                    self.app.get_response(req).instrument(span.clone()).await
                }
            },
        };
        if let (Some(origin), Some(route)) = (origin, route)
            && matches!(route.handler, Handler::Api)
        {
            cors::add_headers(&mut resp, origin);
        }
        let status = resp.status();
        resp.headers_mut().insert(REQUEST_ID, request_id);
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
        Ok(resp.into())
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

/// Serves until `stop` fires, then stops accepting and lets open connections finish
/// their requests for at most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: BoxEndpoint<'static, Response>,
    state: Arc<AppState>,
    mut stop: oneshot::Receiver<()>,
    grace: Duration,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let app = Arc::new(app);
    let builder = auto::Builder::new(TokioExecutor::new());
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
        let connection = Connection {
            app: app.clone(),
            state: state.clone(),
            local,
            peer,
        };
        let service = hyper::service::service_fn(move |req| connection.clone().answer(req));
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let served = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(served).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
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
