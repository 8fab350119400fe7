//! One client can't lock everyone out: thousands of idle connections from one loopback
//! address while another address is still served at once, and silent connections closed
//! after the header timeout, but never a busy keep-alive one. Bounded to seconds,
//! loopback only.

use hoplink_server::config::Config;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().unwrap())?;
    socket.connect(to).await
}

/// `GET path` on a fresh connection from `from`; the whole answer.
async fn get(from: &str, to: SocketAddr, path: &str) -> String {
    let mut stream = connect_from(from, to).await.expect("connects");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// One answer on a keep-alive connection: its head and its `Content-Length` of body.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "closed mid-answer"
        );
        answer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    answer.extend_from_slice(&body);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_one_address_do_not_lock_others_out() {
    let config = Config::from_args([
        "--bind",
        "127.0.0.1:0",
        "--max-connections",
        "3000",
        "--max-connections-per-ip",
        "1000",
        "--header-read-timeout",
        "3",
    ])
    .unwrap();
    let server = hoplink_server::start(config).await.unwrap();
    let addr = server.addr;

    // 2,500 connections from 127.0.0.1 that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..2500 {
        idle.push(connect_from("127.0.0.1", addr).await.expect("connects"));
    }
    // Those past the address's share are told why and closed at once.
    let mut refused = 0;
    for stream in idle.iter_mut().skip(1000) {
        let mut answer = Vec::new();
        if tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer))
            .await
            .is_ok()
        {
            let text = String::from_utf8_lossy(&answer);
            assert!(text.starts_with("HTTP/1.1 429"), "{text}");
            assert!(text.contains("too_many_connections"), "{text}");
            refused += 1;
        }
    }
    assert_eq!(
        refused, 1500,
        "every connection past the share of 1,000 is refused"
    );

    // Another address is served at once.
    let started = Instant::now();
    let status = get("127.0.0.2", addr, "/api/v1/health").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "served in {:?}",
        started.elapsed()
    );
    let text = get("127.0.0.3", addr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"));
    assert!(
        text.contains(r#"hoplink_connections_refused_total{reason="client_share"} 1500"#),
        "{text}"
    );

    // A half-sent header and an idle keep-alive connection are closed like silent ones.
    let mut half = connect_from("127.0.0.4", addr).await.unwrap();
    half.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut kept = connect_from("127.0.0.5", addr).await.unwrap();
    kept.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let deadline = Duration::from_secs(8);
    let closed = |mut s: TcpStream| async move {
        let mut rest = Vec::new();
        tokio::time::timeout(deadline, s.read_to_end(&mut rest))
            .await
            .is_ok()
    };
    assert!(
        closed(half).await,
        "a half-sent header is closed after the timeout"
    );
    assert!(
        closed(kept).await,
        "an idle keep-alive connection is closed after the timeout"
    );
    let mut silent_closed = 0;
    for stream in idle.into_iter().take(1000) {
        if closed(stream).await {
            silent_closed += 1;
        }
    }
    assert_eq!(
        silent_closed, 1000,
        "silent connections are closed after the timeout"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_served_without_the_network_answers_like_a_socket() {
    let config = Config::from_args(["--bind", "127.0.0.1:0"]).unwrap();
    let server = hoplink_server::start(config).await.unwrap();
    let link = server
        .shortener
        .shorten(hoplink::NewLink::new("https://example.com/in-memory"), None)
        .await
        .unwrap();
    let (mut client, served) = tokio::io::duplex(16 * 1024);
    server.serve_stream(served, "203.0.113.9:4000".parse().unwrap());
    client
        .write_all(
            format!(
                "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                link.short_code
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 302"), "{answer}");
    assert!(
        answer.contains("location: https://example.com/in-memory\r\n"),
        "{answer}"
    );
    // The peer given is the client the flood guard counts.
    assert!(answer.contains("ratelimit-remaining:"), "{answer}");
    // The click reaches the analytics like any other.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shortener.stats().clicks_buffered < 1 {
        assert!(
            Instant::now() < deadline,
            "the click never reached the buffer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_keep_alive_connection_outlives_the_header_timeout_and_closes_after_its_last_request()
 {
    let config =
        Config::from_args(["--bind", "127.0.0.1:0", "--header-read-timeout", "2"]).unwrap();
    let server = hoplink_server::start(config).await.unwrap();
    let mut stream = connect_from("127.0.0.1", server.addr).await.unwrap();
    // Twelve requests half a second apart: six seconds on one connection, three times
    // the timeout, each head in well within it.
    for i in 0..12 {
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        let answer = tokio::time::timeout(Duration::from_secs(2), read_answer(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("request {i} answered"));
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Then silence: closed about one timeout after the last answer, not before.
    let idle_from = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), stream.read_to_end(&mut rest))
        .await
        .expect("closed within 6 s of going idle")
        .unwrap();
    let idle = idle_from.elapsed() + Duration::from_millis(500);
    assert!(
        idle >= Duration::from_millis(1900),
        "closed {idle:?} after the last answer, before the timeout"
    );
    server.stop().await.unwrap();
}
