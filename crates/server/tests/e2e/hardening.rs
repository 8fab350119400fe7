//! What an attacker tried: codes taken over after a delete, NUL bytes, unbounded click
//! values, bulk requests past the rate limit, internal destinations, the connection
//! layer's own answers, oversized pages, token answers cached, two tabs refreshing.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_deleted_code_is_never_given_again_and_case_does_not_make_a_new_code() {
    let app = app().await;
    let token = app.user("owner@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/poster", "custom_alias": "CaseTest"}),
        )
        .await;
    for alias in ["casetest", "CASETEST"] {
        let (s, p) = app
            .json(
                Method::POST,
                "/api/v1/urls",
                None,
                json!({"original_url": "https://evil.example/", "custom_alias": alias}),
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::CONFLICT, Some("alias_taken")),
            "{alias}"
        );
    }
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
            Some(&token),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.visit("CaseTest", CHROME).await.status(),
        StatusCode::NOT_FOUND
    );
    for alias in ["CaseTest", "casetest"] {
        let (s, p) = app
            .json(
                Method::POST,
                "/api/v1/urls",
                None,
                json!({"original_url": "https://evil.example/", "custom_alias": alias}),
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::CONFLICT, Some("alias_taken")),
            "the printed short URL {alias} never leads elsewhere"
        );
    }
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn nul_bytes_are_refused_or_find_nothing() {
    let app = app().await;
    let token = app.user("nul@example.com").await;
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "\u{0}", "password": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for query in ["q=%00", "tag=%00", "q=a%00b"] {
        let (s, p) = app
            .get(&format!("/api/v1/urls?{query}"), Some(&token))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {p}");
    }
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            Some(&token),
            json!({"original_url": "https://example.com/", "title": "a\u{0}b"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.visit("a%00b", CHROME).await.status(),
        StatusCode::NOT_FOUND
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_click_stores_a_bounded_referrer_and_summaries_stay_small() {
    let app = app().await;
    let token = app.user("referrers@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/r"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    for i in 0..15 {
        let referrer = format!("https://site{i}.example.com/{}", "p".repeat(97 * 1024));
        let resp = app
            .req(Method::GET, &format!("/{code}"))
            .header("user-agent", CHROME)
            .header("referer", referrer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
    }
    let mut summary = Value::Null;
    for _ in 0..100 {
        summary = app
            .get(
                &format!("/api/v1/analytics/{code}/summary?days=1"),
                Some(&token),
            )
            .await
            .1;
        if summary["total_clicks"] == 15 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary["total_clicks"], 15, "{summary}");
    let referrers = summary["top_referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 11, "ten hosts and `other`: {summary}");
    assert_eq!(referrers[10], json!({"value": "other", "count": 5}));
    assert!(summary.to_string().len() < 4096, "the summary stays small");
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn each_link_of_a_bulk_request_counts_against_the_rate_limit() {
    let app = app_with(&["--rate-limit-auth", "10/3600"]).await;
    let token = app.user("bulk@example.com").await;
    let items = |n: usize| json!({"items": (0..n).map(|i| json!({"original_url": format!("https://example.com/{i}")})).collect::<Vec<_>>()});
    let resp = app
        .req(Method::POST, "/api/v1/urls/bulk")
        .bearer_auth(&token)
        .json(&items(8))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["ratelimit-remaining"], "2");
    let resp = app
        .req(Method::POST, "/api/v1/urls/bulk")
        .bearer_auth(&token)
        .json(&items(5))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "5 links do not fit in 2"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let (_, page) = app.get("/api/v1/urls?limit=100", Some(&token)).await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        8,
        "the refused bulk created nothing"
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn internal_destinations_are_refused() {
    let app = app().await;
    for url in [
        "http://[64:ff9b:1::169.254.169.254]/",
        "http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data/",
        "http://redis.default.svc/",
        "http://api.prod.svc.cluster.local/",
        "http://db.internal/",
        "http://printer.local/",
    ] {
        let (s, p) = app
            .json(
                Method::POST,
                "/api/v1/urls",
                None,
                json!({"original_url": url}),
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_url")),
            "{url}"
        );
    }
    app.server.stop().await.unwrap();
}

/// Sends raw bytes on a fresh connection and reads the whole answer.
async fn raw(app: &App, request: &[u8]) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_connection_layer_answers_with_problem_documents_too() {
    let app = app().await;
    let huge_header = format!(
        "GET /abc HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    for (request, status, code) in [
        (
            &b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"[..],
            "400",
            "bad_request",
        ),
        (b"BLAH\x01 / HTTP/1.1\r\n\r\n", "400", "bad_request"),
        (huge_header.as_bytes(), "431", "header_fields_too_large"),
    ] {
        let answer = raw(&app, request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer:.200}"
        );
        let lower = answer.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/problem+json"),
            "{answer:.300}"
        );
        assert!(lower.contains("x-request-id: "), "{answer:.300}");
        assert!(
            answer.ends_with(&format!(r#""code":"{code}"}}"#)),
            "{answer:.300}"
        );
    }
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn pages_are_compressed_redirects_never() {
    let app = app().await;
    let plain = app.req(Method::GET, "/docs").send().await.unwrap();
    let plain_len = plain.bytes().await.unwrap().len();
    for (encoding, decode) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")] {
        let resp = app
            .req(Method::GET, "/docs")
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-encoding"], decode, "{encoding}");
        let body = resp.bytes().await.unwrap();
        assert!(
            body.len() * 3 < plain_len,
            "{encoding}: {} of {plain_len}",
            body.len()
        );
    }
    let spec = app
        .req(Method::GET, "/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(spec.headers()["content-encoding"], "gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&spec.bytes().await.unwrap()[..]),
        &mut text,
    )
    .unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_ok(),
        "the spec, gzipped"
    );
    let link = app
        .shorten(None, json!({"original_url": "https://example.com/z"}))
        .await;
    let redirect = app
        .req(
            Method::GET,
            &format!("/{}", link["short_code"].as_str().unwrap()),
        )
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert!(!redirect.headers().contains_key("content-encoding"));
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn token_answers_are_not_cached_and_two_tabs_may_refresh_at_once() {
    let app = app().await;
    app.user("tabs@example.com").await;
    let login = app
        .req(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": "tabs@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    let tokens: Value = login.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let tab = || {
        app.req(Method::POST, "/api/v1/auth/refresh")
            .json(&json!({"refresh_token": refresh}))
            .send()
    };
    let (a, b) = tokio::join!(tab(), tab());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a.headers()["cache-control"], "no-store");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "both tabs hold the same successor"
    );
    for pair in [&a, &b] {
        let (s, _) = app
            .get("/api/v1/auth/me", pair["access_token"].as_str())
            .await;
        assert_eq!(s, StatusCode::OK, "both tabs stay signed in");
    }
    app.server.stop().await.unwrap();
}
