//! The document as contract: the committed spec, refusals that name the field, CORS, 405.

use super::*;

#[tokio::test]
async fn served_spec_equals_the_committed_one() {
    let app = app().await;
    let served = app
        .req(Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../openapi/openapi.json"
    ))
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: regenerate it with `cargo run -p hoplink-server -- openapi > openapi/openapi.json`"
    );
    let spec: Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/api/v1/urls",
        "/api/v1/urls/{id}",
        "/api/v1/urls/bulk",
        "/api/v1/analytics/{short_code}/summary",
        "/api/v1/qr",
        "/api/v1/qr/{short_code}",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{id}",
        "/api/v1/health",
        "/metrics",
        "/{short_code}",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} documented");
    }
    assert!(spec["components"]["securitySchemes"]["BearerAuth"].is_object());
    assert!(spec["components"]["securitySchemes"]["ApiKeyAuth"].is_object());
    assert_eq!(
        hoplink_server::spec::disagreements(&spec),
        Vec::<String>::new(),
        "the document and the route table agree"
    );
    let robots = app.req(Method::GET, "/robots.txt").send().await.unwrap();
    assert_eq!(robots.status(), StatusCode::OK);
    assert_eq!(robots.text().await.unwrap(), "User-agent: *\nDisallow: /\n");
    let docs = app.req(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("/{short_code}"),
        "the docs UI shows the redirect route too"
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_never_yields_5xx() {
    let app = app().await;
    let token = app.user("bad@example.com").await;
    let huge_number = "9".repeat(3 * 1024 * 1024);
    let big_body = format!(
        r#"{{"original_url": "https://e.com/{}"}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let nil = uuid::Uuid::nil();
    let patch_nil = format!("/api/v1/urls/{nil}");
    let huge_clicks =
        format!(r#"{{"original_url": "https://e.com", "max_clicks": {huge_number}}}"#);
    // (method, path, content type, body, status, the problem's field and code)
    type Case<'a> = (
        Method,
        &'a str,
        &'a str,
        &'a str,
        StatusCode,
        Option<(&'a str, &'a str)>,
    );
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            "{not json",
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "max_clicks": "many"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("max_clicks", "invalid_type")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "max_clicks": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("max_clicks", "invalid_field")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            &huge_clicks,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "max_clicks": 1e30}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("max_clicks", "invalid_field")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "custom_alias": 12345}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("custom_alias", "invalid_type")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "redirect_type": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("redirect_type", "invalid_field")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"original_url": "https://e.com", "owner": "me"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("owner", "unknown_field")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            r#"{"custom_alias": "abc"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("original_url", "missing_field")),
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            "[]",
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "text/plain",
            "https://e.com",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            Method::POST,
            "/api/v1/urls",
            "application/json",
            &big_body,
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            Method::POST,
            "/api/v1/urls/bulk",
            "application/json",
            r#"{"items": [{"original_url": "https://e.com"}, {"original_url": "https://e.com", "max_clicks": 0}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("items[1].max_clicks", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls/not-a-uuid",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("id", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls?limit=abc",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("limit", "invalid_type")),
        ),
        (
            Method::GET,
            "/api/v1/urls?limit=99999999999999",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("limit", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls?limit=-1",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("limit", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls?limit=0",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("limit", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls?cursor=%25%25%25",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("cursor", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/urls?cursor=zzzz",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("cursor", "invalid_cursor")),
        ),
        (
            Method::PATCH,
            &patch_nil,
            "application/json",
            r#"{"is_active": "yes"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("is_active", "invalid_type")),
        ),
        (
            Method::GET,
            "/api/v1/nowhere",
            "application/json",
            "",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PUT,
            "/api/v1/urls",
            "application/json",
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
        (
            Method::GET,
            "/api/v1/analytics/abc/summary?days=-1",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("days", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/analytics/abc/summary?days=1275",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("days", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/qr/abc?size=999999999999",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("size", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/qr/abc?size=-1",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("size", "invalid_field")),
        ),
        (
            Method::GET,
            "/api/v1/qr/abc?format=",
            "application/json",
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(("format", "invalid_field")),
        ),
    ];
    for (i, (method, path, ct, body, status, problem)) in cases.into_iter().enumerate() {
        let resp = app
            .req(method.clone(), path)
            .header("content-type", ct)
            .bearer_auth(&token)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let (got, p) = decode(resp).await;
        assert_eq!(got, status, "case {i} ({method} {path}): {p}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "case {i}"
        );
        assert!(
            p.to_string().len() < 1024,
            "case {i}: answers echo little: {p}"
        );
        if let Some((field, code)) = problem {
            assert_eq!(
                (p["field"].as_str(), p["code"].as_str()),
                (Some(field), Some(code)),
                "case {i} ({method} {path}): {p}"
            );
        }
        assert!(
            !p["detail"].as_str().unwrap_or_default().contains("param"),
            "case {i}: no internal names: {p}"
        );
    }
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn cors_grants_configured_origins_only() {
    let app = app_with(&["--cors-origins", "https://app.example.com"]).await;
    let preflight = |origin: &'static str| {
        app.req(Method::OPTIONS, "/api/v1/urls")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let granted = preflight("https://app.example.com").await.unwrap();
    assert_eq!(granted.status(), StatusCode::NO_CONTENT);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header(&granted, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&granted, "access-control-allow-methods").as_deref(),
        Some("GET, POST")
    );
    assert!(
        header(&granted, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    // An actual request from the origin may read the answer and its headers.
    let answer = app
        .req(Method::GET, "/api/v1/health")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&answer, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert!(
        header(&answer, "access-control-expose-headers")
            .unwrap()
            .contains("x-request-id")
    );
    let other = app
        .req(Method::GET, "/api/v1/health")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    app.server.stop().await.unwrap();
    // Without CORS_ORIGINS nobody is granted anything.
    let closed = app_with(&[]).await;
    let resp = closed
        .req(Method::GET, "/api/v1/health")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    closed.server.stop().await.unwrap();
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_methods() {
    let app = app().await;
    for (method, path, allow) in [
        (Method::PUT, "/api/v1/urls", "GET, POST"),
        (
            Method::TRACE,
            "/api/v1/urls/0193a1b2-0000-7000-8000-000000000000",
            "GET, PATCH, DELETE",
        ),
        (Method::DELETE, "/docs", "GET, HEAD"),
        (Method::POST, "/openapi.json", "GET, HEAD"),
        (Method::PUT, "/metrics", "GET"),
        (Method::PUT, "/abc1234", "GET, HEAD, POST"),
        (Method::POST, "/abc1234+", "GET, HEAD"),
        (Method::OPTIONS, "/api/v1/health", "GET"),
    ] {
        let resp = app.req(method.clone(), path).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let (_, p) = decode(resp).await;
        assert_eq!(p["code"], "method_not_allowed");
    }
    app.server.stop().await.unwrap();
}
