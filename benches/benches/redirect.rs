//! The redirect end to end without the network: an HTTP/1.1 request written into one
//! end of an in-memory stream, the server's 302 read back from it. Everything a
//! redirect costs the server is in the figure (parsing, the route table, the flood
//! guard, resolving, the answer's headers, metrics, the click handed to the analytics
//! pipeline), and no socket is: `cargo bench -p hoplink-benches --bench redirect`.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use hoplink::NewLink;
use hoplink_server::config::Config;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const LINKS: usize = 1_000;

fn redirect(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // As `scripts/loadtest.sh` runs it: memory backends, analytics on, the flood guard on
    // with a quota no run reaches.
    let config = Config::from_args([
        "--bind",
        "127.0.0.1:0",
        "--rate-limit-anon",
        "off",
        "--rate-limit-auth",
        "off",
        "--rate-limit-redirect",
        "1000000000/60",
    ])
    .expect("config");
    let (server, codes) = rt.block_on(async {
        let server = hoplink_server::start(config).await.expect("server");
        let mut codes = Vec::with_capacity(LINKS);
        for i in 0..LINKS {
            let link = server
                .shortener
                .shorten(NewLink::new(format!("https://example.com/{i}")), None)
                .await
                .expect("link");
            codes.push(format!("/{}", link.short_code));
        }
        (Arc::new(server), Arc::new(codes))
    });
    let peer: SocketAddr = "203.0.113.7:40000".parse().expect("address");

    c.bench_function("redirect/end_to_end_in_memory", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (server, codes) = (server.clone(), codes.clone());
            async move {
                let (client, server_side) = tokio::io::duplex(64 * 1024);
                server.serve_stream(server_side, peer);
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(client))
                        .await
                        .expect("handshake");
                tokio::spawn(connection);
                let started = Instant::now();
                for i in 0..iters as usize {
                    let request = Request::get(codes[i.wrapping_mul(7919) % codes.len()].as_str())
                        .header(header::HOST, "localhost")
                        .header(header::USER_AGENT, UA)
                        .header(header::REFERER, "https://news.example.com/")
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    sender.ready().await.expect("connection");
                    let response = sender.send_request(request).await.expect("response");
                    assert_eq!(response.status(), StatusCode::FOUND);
                }
                started.elapsed()
            }
        })
    });
}

criterion_group!(benches, redirect);
criterion_main!(benches);
