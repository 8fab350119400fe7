//! The connection loop: hyper serves each connection (HTTP/1.1, or HTTP/2 with prior
//! knowledge); short-code redirects are answered from hyper's request by
//! [`redirect::answer`], everything else becomes a poem request for [`crate::app`].
//!
//! Why not `poem::Server`: on the redirect path poem's per-request work (its own
//! request and response types, the endpoint layers) cost as much as all of hoplink's
//! own, measured by `scripts/loadtest.sh`'s bare-poem yardstick. The API keeps poem.

use crate::redirect;
use crate::state::AppState;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use poem::endpoint::BoxEndpoint;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What one connection needs to answer its requests.
#[derive(Clone)]
struct Connection {
    app: Arc<BoxEndpoint<'static, poem::Response>>,
    state: Arc<AppState>,
    local: SocketAddr,
    peer: SocketAddr,
}

type Answer = hyper::Response<BoxBody<Bytes, std::io::Error>>;

impl Connection {
    async fn answer(self, req: hyper::Request<Incoming>) -> Result<Answer, Infallible> {
        if redirect::takes(&req) {
            return Ok(redirect::answer(&self.state, &req, self.peer).await.into());
        }
        let req = poem::Request::from((
            req,
            LocalAddr(Addr::SocketAddr(self.local)),
            RemoteAddr(Addr::SocketAddr(self.peer)),
            poem::http::uri::Scheme::HTTP,
        ));
        Ok(self.app.get_response(req).await.into())
    }
}

/// Serves until `stop` fires, then stops accepting and lets open connections finish
/// their requests for at most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: BoxEndpoint<'static, poem::Response>,
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
