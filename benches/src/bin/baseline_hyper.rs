//! The load test's yardstick: a bare hyper server answering `302` from a `HashMap`.
//!
//! `baseline-hyper <bind> <codes-file>`: each line of the file is `code url`. The load
//! script runs it beside `hoplink` so the redirect route's overhead is a measured ratio.

mod yardstick;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (bind, table) = yardstick::args_and_table("baseline-hyper")?;
    let table = Arc::new(table);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("baseline-hyper on {bind} with {} codes", table.len());
    loop {
        let (stream, _) = listener.accept().await?;
        let table = table.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let table = table.clone();
                async move {
                    let code = req.uri().path().trim_start_matches('/');
                    let resp = match table.get(code) {
                        Some(url) => Response::builder()
                            .status(StatusCode::FOUND)
                            .header("location", url.as_str())
                            .body(Empty::<Bytes>::new()),
                        None => Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Empty::<Bytes>::new()),
                    };
                    Ok::<_, Infallible>(resp.unwrap_or_default())
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
