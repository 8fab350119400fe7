//! The service around the routes: rate limits, trusted proxies, request ids, health, metrics, body limits, start-up checks, two instances.

use super::*;

#[tokio::test]
async fn rate_limits_send_headers_and_429() {
    let app = app_with(&[
        "--rate-limit-anon",
        "3/60",
        "--rate-limit-redirect",
        "4/60",
        "--rate-limit-register",
        "2/3600",
    ])
    .await;
    let mut last = None;
    for remaining in ["2", "1", "0"] {
        let resp = app
            .req(Method::POST, "/api/v1/urls")
            .json(&json!({"original_url": "https://example.com/r"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["ratelimit-limit"], "3");
        assert_eq!(resp.headers()["ratelimit-remaining"], remaining);
        assert!(resp.headers().contains_key("ratelimit-reset"));
        last = Some(decode(resp).await.1);
    }
    let refused = app.req(Method::GET, "/api/v1/qr/abc").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    let (_, p) = decode(refused).await;
    assert_eq!(p["code"], "rate_limited");

    let code = last.unwrap()["short_code"].as_str().unwrap().to_string();
    for _ in 0..4 {
        assert_eq!(app.visit(&code, CHROME).await.status(), StatusCode::FOUND);
    }
    let flood = app.visit(&code, CHROME).await;
    assert_eq!(flood.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(flood.headers().contains_key("retry-after"));

    for _ in 0..2 {
        let (s, _) = app.json(Method::POST, "/api/v1/auth/register", None, json!({"email": format!("{}@example.com", uuid::Uuid::new_v4().simple()), "password": "password123"})).await;
        assert_eq!(s, StatusCode::CREATED, "registration has its own limit");
    }
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "late@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let health = app.req(Method::GET, "/api/v1/health").send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "health is never rate limited"
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let trusted = app_with(&[
        "--rate-limit-anon",
        "2/60",
        "--trusted-proxies",
        "127.0.0.1/32",
    ])
    .await;
    let from = |app: &App, ip: &str| {
        app.req(Method::GET, "/api/v1/qr/missing")
            .header("x-forwarded-for", format!("{ip}, 127.0.0.1"))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            from(&trusted, "198.51.100.1").await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        from(&trusted, "198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        from(&trusted, "198.51.100.2").await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "another client"
    );
    trusted.server.stop().await.unwrap();

    let untrusted = app_with(&["--rate-limit-anon", "2/60"]).await;
    for ip in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            from(&untrusted, ip).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        from(&untrusted, "198.51.100.3").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the header is ignored: one client"
    );
    untrusted.server.stop().await.unwrap();
}

#[tokio::test]
async fn request_ids_health_and_metrics() {
    let app = app_with(&["--metrics-token", "m3trics"]).await;
    // Right after a start the shared cache's invalidation subscriber may still be
    // connecting (health says `degraded` until it is): give it a moment on a busy machine.
    let mut health = Value::Null;
    for _ in 0..100 {
        let echoed = app
            .req(Method::GET, "/api/v1/health")
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap();
        assert_eq!(echoed.headers()["x-request-id"], "abc-123");
        let (s, body) = decode(echoed).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        health = body;
        if health["status"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health["status"], "ok", "{health}");
    // Every configuration names these, the in-memory one included.
    for component in ["store", "cache", "bus", "rate_limiter", "id_allocator"] {
        assert_eq!(
            health["components"][component]["status"], "ok",
            "{component}"
        );
    }
    for path in [
        "/missing-code",
        "/api/v1/urls",
        "/openapi.json",
        "/robots.txt",
        "/a/b/c",
    ] {
        let resp = app.req(Method::GET, path).send().await.unwrap();
        assert_eq!(
            resp.headers()["x-request-id"].len(),
            32,
            "{path}: generated id"
        );
    }
    let link = app
        .shorten(None, json!({"original_url": "https://example.com/m"}))
        .await;
    app.visit(link["short_code"].as_str().unwrap(), CHROME)
        .await;
    let (s, _) = decode(app.req(Method::GET, "/metrics").send().await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let metrics = app
        .req(Method::GET, "/metrics")
        .bearer_auth("m3trics")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for needle in [
        "hoplink_http_requests_total{route=\"/{short_code}\",status=\"302\"} 1",
        "hoplink_http_requests_total{route=\"/api/v1/urls\",status=\"201\"} 1",
        "hoplink_redirect_duration_seconds_count 2",
        "hoplink_cache_misses_total",
        "hoplink_click_events_buffered_total 1",
        "hoplink_click_events_dropped_total 0",
        "hoplink_rate_limited_total 0",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    if backend_has("redis") {
        assert!(
            text.contains("hoplink_rate_limit_fallbacks_total 0"),
            "{text}"
        );
    }
    if backend_has("kafka") {
        assert!(
            text.contains("hoplink_kafka_delivery_failures_total 0"),
            "{text}"
        );
    }
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn chunked_bodies_are_limited_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = app().await;
    let mut stream = tokio::net::TcpStream::connect(app.server.addr)
        .await
        .unwrap();
    let (mut read, mut write) = stream.split();
    let writer = async {
        let head = "POST /api/v1/urls HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = write.write_all(head.as_bytes()).await;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..80 {
            if write
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .is_err()
                || write.write_all(&chunk).await.is_err()
                || write.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = write.write_all(b"0\r\n\r\n").await;
    };
    let reader = async {
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = read.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&response).to_string()
    };
    let (_, response) = tokio::join!(writer, reader);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("application/problem+json")
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn backend_settings_are_checked_at_start() {
    let no_redis = Config::from_args(["--bind", "127.0.0.1:0", "--event-bus", "redis"]).unwrap();
    let err = hoplink_server::start(no_redis)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("EVENT_BUS=redis needs REDIS_URL"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("redis://127.0.0.1:{port}");
    let config =
        Config::from_args(["--bind", "127.0.0.1:0", "--redis-url", unreachable.as_str()]).unwrap();
    let err = hoplink_server::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
    assert!(Config::from_args(["--rate-limit-failure", "sometimes"]).is_err());
    let no_brokers = Config::from_args(["--bind", "127.0.0.1:0", "--event-bus", "kafka"]).unwrap();
    let err = hoplink_server::start(no_brokers)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("EVENT_BUS=kafka needs KAFKA_BROKERS"),
        "{err}"
    );
    assert!(Config::from_args(["--kafka-partitions", "0"]).is_err());
}

/// Two instances sharing PostgreSQL and Redis behave as one service (runs when
/// `E2E_BACKEND` names both).

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_behave_as_one() {
    if !(backend_has("postgres") && backend_has("redis")) {
        eprintln!("skipped: E2E_BACKEND=postgres+redis runs the two-instance test");
        return;
    }
    let args = backend_args(&[
        "--jwt-secret",
        "two instances share this secret",
        "--rate-limit-anon",
        "10/3600",
        "--rate-limit-redirect",
        "50/3600",
    ])
    .await;
    let (a, b) = (start_app(&args).await, start_app(&args).await);
    let token = a.user("two@example.com").await;

    // Concurrent creates on both instances: all codes distinct.
    let mut creates = Vec::new();
    for n in 0..200 {
        let app = if n % 2 == 0 { &a } else { &b };
        let request = app
            .req(Method::POST, "/api/v1/urls")
            .bearer_auth(&token)
            .json(&json!({"original_url": format!("https://example.com/{n}")}));
        creates.push(tokio::spawn(async move {
            decode(request.send().await.unwrap()).await
        }));
    }
    let mut codes = std::collections::HashSet::new();
    for c in creates {
        let (status, link) = c.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{link}");
        codes.insert(link["short_code"].as_str().unwrap().to_string());
    }
    assert_eq!(codes.len(), 200, "distinct codes from both instances");

    // Created on a, redirects on b; an edit on a is seen by b's very next redirect.
    let link = a
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/v1"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    let id = link["id"].as_str().unwrap();
    for _ in 0..3 {
        let r = b.visit(code, FIREFOX).await;
        assert_eq!(r.headers()["location"], "https://example.com/v1");
    }
    for version in 2..5 {
        let url = format!("https://example.com/v{version}");
        let (s, _) = a
            .json(
                Method::PATCH,
                &format!("/api/v1/urls/{id}"),
                Some(&token),
                json!({"original_url": url}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let r = b.visit(code, FIREFOX).await;
        assert_eq!(
            r.headers()["location"],
            url.as_str(),
            "b sees the edit at once"
        );
    }
    let r = a.visit(code, FIREFOX).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let s = b
        .req(Method::DELETE, &format!("/api/v1/urls/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        a.visit(code, FIREFOX).await.status(),
        StatusCode::NOT_FOUND,
        "a sees the delete at once"
    );

    // The anonymous limit holds over the sum of both instances (exact: one Redis script).
    let mut created = 0;
    for n in 0..20 {
        let app = if n % 2 == 0 { &a } else { &b };
        let (s, _) = app
            .json(
                Method::POST,
                "/api/v1/urls",
                None,
                json!({"original_url": "https://example.com/anon"}),
            )
            .await;
        assert!(
            s == StatusCode::CREATED || s == StatusCode::TOO_MANY_REQUESTS,
            "{s}"
        );
        created += usize::from(s == StatusCode::CREATED);
    }
    assert_eq!(created, 10, "10/3600 shared by both instances");

    // The redirect flood guard decides locally and reconciles every 100 ms: with the
    // requests spread over time it holds within one sync interval's traffic.
    let target = a
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/flood"}),
        )
        .await;
    let code = target["short_code"].as_str().unwrap();
    let mut redirected = 0;
    for _ in 0..10 {
        for app in [&a, &b] {
            for _ in 0..5 {
                redirected +=
                    usize::from(app.visit(code, FIREFOX).await.status() == StatusCode::FOUND);
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // The 8 redirects above (3 + 3 on b, 2 on a) count against the same client's quota.
    let allowed = redirected + 8;
    assert!(
        (50..=55).contains(&allowed),
        "{allowed} redirects allowed, quota 50"
    );
    a.server.stop().await.unwrap();
    b.server.stop().await.unwrap();
}
