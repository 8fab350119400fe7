//! End-to-end: the server on an ephemeral loopback port, driven over real HTTP.

mod common;

use hoplink_server::config::Config;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const TWITTERBOT: &str = "Twitterbot/1.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

struct App {
    server: hoplink_server::Server,
    client: Client,
    base: String,
}

async fn app_with(extra: &[&str]) -> App {
    let args = backend_args(extra).await;
    start_app(&args).await
}

/// The test defaults, `extra`, and the backends `E2E_BACKEND` names (fresh ones).
async fn backend_args(extra: &[&str]) -> Vec<String> {
    let defaults = [
        ("--bind", "127.0.0.1:0"),
        ("--base-url", "https://sho.rt"),
        ("--analytics-flush-ms", "50"),
        ("--rate-limit-anon", "off"),
        ("--rate-limit-auth", "off"),
        ("--rate-limit-register", "off"),
        ("--rate-limit-login", "off"),
        ("--rate-limit-redirect", "off"),
    ];
    let mut args: Vec<String> = Vec::new();
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    if let Some(url) = postgres_url().await {
        args.extend(["--database-url".to_string(), url]);
    }
    if let Some((url, prefix)) = redis_settings() {
        args.extend([
            "--redis-url".to_string(),
            url,
            "--redis-prefix".to_string(),
            prefix,
        ]);
        if !backend_has("kafka") {
            args.extend(["--event-bus".to_string(), "redis".to_string()]);
        }
    }
    // With Kafka named, clicks go through Kafka (rather than Redis Streams).
    if backend_has("kafka") {
        let brokers = std::env::var("TEST_KAFKA_BROKERS")
            .expect("E2E_BACKEND with kafka needs TEST_KAFKA_BROKERS");
        let topic = format!("hoplink-e2e-{}", uuid::Uuid::new_v4().simple());
        args.extend(["--event-bus".to_string(), "kafka".to_string()]);
        args.extend(["--kafka-brokers".to_string(), brokers]);
        args.extend([
            "--kafka-topic".to_string(),
            topic,
            "--kafka-partitions".to_string(),
            "2".to_string(),
        ]);
    }
    args
}

async fn start_app(args: &[String]) -> App {
    let config = Config::from_args(args).expect("config");
    let server = hoplink_server::start(config).await.expect("server starts");
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = server.url();
    App {
        server,
        client,
        base,
    }
}

fn backend_has(name: &str) -> bool {
    std::env::var("E2E_BACKEND").is_ok_and(|b| b.split('+').any(|part| part == name))
}

/// With `E2E_BACKEND` naming `redis` (e.g. `postgres+redis`), every test runs with the
/// shared cache, rate limiter and event bus on Redis (`TEST_REDIS_URL`), under a key
/// prefix of its own.
fn redis_settings() -> Option<(String, String)> {
    if !backend_has("redis") {
        return None;
    }
    let url = std::env::var("TEST_REDIS_URL").expect("E2E_BACKEND with redis needs TEST_REDIS_URL");
    let prefix = format!(
        "hoplink-e2e-{}:",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    Some((url, prefix))
}

/// With `E2E_BACKEND` naming `postgres`, every test runs on PostgreSQL
/// (`TEST_DATABASE_URL`), in a fresh schema of its own.
async fn postgres_url() -> Option<String> {
    if !backend_has("postgres") {
        return None;
    }
    let url =
        std::env::var("TEST_DATABASE_URL").expect("E2E_BACKEND=postgres needs TEST_DATABASE_URL");
    Some(common::fresh_schema(&url).await)
}

async fn app() -> App {
    app_with(&[]).await
}

impl App {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        decode(resp).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut r = self.req(Method::GET, path);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        decode(r.send().await.unwrap()).await
    }

    /// Registers and logs in; returns the access token.
    async fn user(&self, email: &str) -> String {
        let (s, _) = self
            .json(
                Method::POST,
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, body) = self
            .json(
                Method::POST,
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn shorten(&self, token: Option<&str>, body: Value) -> Value {
        let (s, link) = self.json(Method::POST, "/api/v1/urls", token, body).await;
        assert_eq!(s, StatusCode::CREATED, "{link}");
        link
    }

    async fn visit(&self, code: &str, ua: &str) -> Response {
        self.req(Method::GET, &format!("/{code}"))
            .header("user-agent", ua)
            .send()
            .await
            .unwrap()
    }
}

async fn decode(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let problem = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/problem+json"));
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_client_error() || status.is_server_error() {
        assert!(problem, "errors are problem documents: {status} {text}");
        assert_eq!(value["status"], status.as_u16(), "{text}");
        assert!(
            value["code"].is_string()
                && value["type"].is_string()
                && value["title"].is_string()
                && value["detail"].is_string(),
            "{text}"
        );
    }
    (status, value)
}

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
async fn redirect_semantics() {
    let app = app().await;
    let token = app.user("redirect@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/a"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    assert_eq!(link["short_url"], format!("https://sho.rt/{code}"));
    let resp = app.visit(code, CHROME).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "https://example.com/a");
    assert_eq!(resp.headers()["cache-control"], "private, max-age=0");
    let head = app
        .req(Method::HEAD, &format!("/{code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::FOUND);
    assert_eq!(head.headers()["location"], "https://example.com/a");

    let permanent = app
        .shorten(
            None,
            json!({"original_url": "https://example.com/p", "redirect_type": 301}),
        )
        .await;
    let resp = app
        .visit(permanent["short_code"].as_str().unwrap(), CHROME)
        .await;
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(resp.headers().get("cache-control").is_none());
    for status in [307u16, 308] {
        let l = app
            .shorten(
                None,
                json!({"original_url": "https://example.com/t", "redirect_type": status}),
            )
            .await;
        assert_eq!(
            app.visit(l["short_code"].as_str().unwrap(), CHROME)
                .await
                .status()
                .as_u16(),
            status
        );
    }
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            None,
            json!({"original_url": "https://example.com/", "redirect_type": 303}),
        )
        .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("redirect_type"))
    );

    let (s, p) = decode(app.visit("doesnotexist", CHROME).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Edits are visible on the very next redirect.
    let id = link["id"].as_str().unwrap();
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&token),
            json!({"original_url": "https://example.com/b"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.visit(code, CHROME).await.headers()["location"],
        "https://example.com/b"
    );
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&token),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = decode(app.visit(code, CHROME).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::GONE, Some("disabled"))
    );
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&token),
            json!({"is_active": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.visit(code, CHROME).await.status(), StatusCode::FOUND);
    let del = app
        .req(Method::DELETE, &format!("/api/v1/urls/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.visit(code, CHROME).await.status(),
        StatusCode::NOT_FOUND
    );

    // Click budget: exact, bots don't use it, HEAD doesn't either.
    let limited = app
        .shorten(
            None,
            json!({"original_url": "https://example.com/l", "max_clicks": 2}),
        )
        .await;
    let lc = limited["short_code"].as_str().unwrap();
    assert_eq!(app.visit(lc, TWITTERBOT).await.status(), StatusCode::FOUND);
    assert_eq!(
        app.req(Method::HEAD, &format!("/{lc}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FOUND
    );
    assert_eq!(app.visit(lc, CHROME).await.status(), StatusCode::FOUND);
    assert_eq!(app.visit(lc, FIREFOX).await.status(), StatusCode::FOUND);
    let (s, p) = decode(app.visit(lc, CHROME).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::GONE, Some("click_limit_reached"))
    );
    assert_eq!(
        app.req(Method::HEAD, &format!("/{lc}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::GONE
    );

    // Expiry.
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let expiring = app
        .shorten(
            None,
            json!({"original_url": "https://example.com/e", "expires_at": soon}),
        )
        .await;
    let ec = expiring["short_code"].as_str().unwrap();
    assert_eq!(app.visit(ec, CHROME).await.status(), StatusCode::FOUND);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (s, p) = decode(app.visit(ec, CHROME).await).await;
    assert_eq!((s, p["code"].as_str()), (StatusCode::GONE, Some("expired")));
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_with_prior_knowledge_serves_redirects_and_the_api() {
    let app = app().await;
    let link = app
        .shorten(None, json!({"original_url": "https://example.com/h2"}))
        .await;
    let code = link["short_code"].as_str().unwrap();
    let h2 = Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = h2
        .get(format!("{}/{code}", app.base))
        .header("x-request-id", "h2-probe")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(resp.headers()["location"], "https://example.com/h2");
    assert_eq!(resp.headers()["x-request-id"], "h2-probe");
    let health = h2
        .get(format!("{}/api/v1/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.version(), reqwest::Version::HTTP_2);
    assert_eq!(health.status(), StatusCode::OK);
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn creating_links_and_refusals() {
    let app = app().await;
    let link = app.shorten(None, json!({"original_url": "https://example.com/x", "custom_alias": "my-alias", "title": "T", "tags": ["a"]})).await;
    for field in [
        "id",
        "short_code",
        "short_url",
        "original_url",
        "title",
        "tags",
        "redirect_type",
        "created_at",
        "updated_at",
        "expires_at",
        "max_clicks",
        "click_count",
        "is_active",
    ] {
        assert!(link.get(field).is_some(), "Link has {field}: {link}");
    }
    assert_eq!(link["redirect_type"], 302);
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            None,
            json!({"original_url": "https://example.com/y", "custom_alias": "my-alias"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("alias_taken"))
    );
    for (body, code) in [
        (
            json!({"original_url": "javascript:alert(1)"}),
            "invalid_url",
        ),
        (json!({"original_url": "http://2130706433/"}), "invalid_url"),
        (
            json!({"original_url": "http://[::ffff:127.0.0.1]/"}),
            "invalid_url",
        ),
        (
            json!({"original_url": "https://sho.rt/loop"}),
            "invalid_url",
        ),
        (
            json!({"original_url": "https://example.com", "custom_alias": "api"}),
            "reserved_alias",
        ),
        (
            json!({"original_url": "https://example.com", "custom_alias": "docs"}),
            "reserved_alias",
        ),
        (
            json!({"original_url": "https://example.com", "custom_alias": "robots.txt"}),
            "invalid_field",
        ),
        (
            json!({"original_url": "https://example.com", "custom_alias": "a b"}),
            "invalid_field",
        ),
        (
            json!({"original_url": "https://example.com", "max_clicks": 0}),
            "invalid_field",
        ),
    ] {
        let (s, p) = app
            .json(Method::POST, "/api/v1/urls", None, body.clone())
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
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
        (Method::POST, "/abc1234", "GET, HEAD"),
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

#[tokio::test]
async fn accounts_refresh_rotation_and_reuse_detection() {
    let app = app().await;
    let (s, user) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "ada@example.com", "password": "password123", "full_name": "Ada"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "ADA@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "nope", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "x@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s1, wrong) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "wrong-password"}),
        )
        .await;
    let (s2, unknown) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "who@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        wrong, unknown,
        "the same answer for unknown email and wrong password"
    );

    let (s, pair) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pair["token_type"], "bearer");
    assert!(pair["expires_in"].as_u64().unwrap() > 0);
    let access = pair["access_token"].as_str().unwrap();
    let (s, me) = app.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );
    let anon = app
        .req(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anon.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (s, _) = app.get("/api/v1/auth/me", Some("not.a.jwt")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let old_refresh = pair["refresh_token"].as_str().unwrap();
    let (s, next) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let next_access = next["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(next_access)).await.0,
        StatusCode::OK
    );
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a dead token is refused");
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": next["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "reuse revoked the whole login");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(next_access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (_, third) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "password123"}),
        )
        .await;
    let resp = app
        .req(Method::POST, "/api/v1/auth/logout")
        .json(&json!({"refresh_token": third["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": third["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn api_keys_and_ownership() {
    let app = app().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (s, created) = app
        .json(
            Method::POST,
            "/api/v1/api-keys",
            Some(&alice),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_string();
    let (s, listed) = app.get("/api/v1/api-keys", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(
        listed["items"][0].get("key").is_none(),
        "the secret is shown once"
    );
    assert!(!listed.to_string().contains(&key));

    let with_key = |path: &str| {
        app.req(Method::GET, path)
            .header("x-api-key", key.clone())
            .send()
    };
    let link = {
        let resp = app
            .req(Method::POST, "/api/v1/urls")
            .header("x-api-key", &key)
            .json(&json!({"original_url": "https://example.com/k"}))
            .send()
            .await
            .unwrap();
        decode(resp).await.1
    };
    let (s, page) = decode(with_key("/api/v1/urls").await.unwrap()).await;
    assert_eq!(
        (s, page["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1),
        "the key acts as its owner"
    );
    let id = link["id"].as_str().unwrap();
    let code = link["short_code"].as_str().unwrap();

    assert_eq!(
        app.get(&format!("/api/v1/urls/{id}"), Some(&bob)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&bob),
            json!({"title": "mine"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/urls/{id}"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/analytics/{code}/summary"), Some(&bob))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let del = app
        .req(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let (s, _) = decode(with_key("/api/v1/urls").await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked at once");
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn listing_and_bulk() {
    let app = app().await;
    let token = app.user("list@example.com").await;
    for i in 0..25 {
        app.shorten(Some(&token), json!({"original_url": format!("https://example.com/{i}"), "tags": [if i % 5 == 0 { "five" } else { "other" }], "title": format!("Item {i}")})).await;
    }
    let (s, first) = app.get("/api/v1/urls", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    assert_eq!(first["items"][0]["title"], "Item 24");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/api/v1/urls?cursor={cursor}"), Some(&token))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 5);
    assert!(second["next_cursor"].is_null());
    let (_, tagged) = app
        .get("/api/v1/urls?tag=five&limit=100", Some(&token))
        .await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 5);
    let (_, found) = app.get("/api/v1/urls?q=item%2012", Some(&token)).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);

    let (s, bulk) = app
        .json(
            Method::POST,
            "/api/v1/urls/bulk",
            Some(&token),
            json!({"items": [
                {"original_url": "https://example.com/b1"},
                {"original_url": "ftp://example.com/"},
                {"original_url": "https://example.com/b3", "custom_alias": "bulk-a"},
                {"original_url": "https://example.com/b4", "custom_alias": "bulk-a"}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let results = bulk["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results[0]["ok"]["short_code"].is_string());
    assert_eq!(results[1]["error"]["code"], "invalid_url");
    assert_eq!(results[2]["ok"]["short_code"], "bulk-a");
    assert_eq!(results[3]["error"]["code"], "alias_taken");
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"original_url": "https://example.com/"}))
        .collect();
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/urls/bulk",
            Some(&token),
            json!({"items": too_many}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/urls/bulk",
            None,
            json!({"items": []}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn analytics_appear_within_seconds_with_bots_apart() {
    let app = app().await;
    let token = app.user("stats@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/s"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    for ua in [CHROME, FIREFOX, CHROME, TWITTERBOT, IPHONE] {
        app.req(Method::GET, &format!("/{code}"))
            .header("user-agent", ua)
            .header("referer", "https://news.example.org/x")
            .send()
            .await
            .unwrap();
    }
    app.req(Method::HEAD, &format!("/{code}"))
        .send()
        .await
        .unwrap();
    let mut summary = Value::Null;
    for _ in 0..100 {
        let (s, body) = app
            .get(&format!("/api/v1/analytics/{code}/summary"), Some(&token))
            .await;
        assert_eq!(s, StatusCode::OK);
        summary = body;
        if summary["total_clicks"] == 4 && summary["bot_clicks"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary["total_clicks"], 4, "{summary}");
    assert_eq!(summary["bot_clicks"], 1);
    assert_eq!(
        summary["unique_visitors"], 3,
        "same address, three browsers"
    );
    // Families, not versions or models: the iPhone runs iOS.
    let values = |name: &str| -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = summary[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["value"].as_str().unwrap().to_string(),
                    e["count"].as_u64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        values("operating_systems"),
        [
            ("Linux".into(), 1),
            ("Windows".into(), 2),
            ("iOS".into(), 1)
        ]
    );
    assert_eq!(
        values("devices"),
        [("desktop".into(), 3), ("mobile".into(), 1)]
    );
    let days = summary["clicks_by_day"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(
        days[29]["date"],
        chrono::Utc::now().date_naive().to_string()
    );
    assert_eq!(days[29]["clicks"], 4);
    assert_eq!(
        summary["top_referrers"][0],
        json!({"value": "news.example.org", "count": 4})
    );
    assert_eq!(
        summary["browsers"][0],
        json!({"value": "Chrome", "count": 2})
    );
    assert_eq!(summary["countries"][0]["value"], "unknown");
    let (_, week) = app
        .get(
            &format!("/api/v1/analytics/{code}/summary?days=7"),
            Some(&token),
        )
        .await;
    assert_eq!(week["clicks_by_day"].as_array().unwrap().len(), 7);
    for bad in ["0", "366"] {
        assert_eq!(
            app.get(
                &format!("/api/v1/analytics/{code}/summary?days={bad}"),
                Some(&token)
            )
            .await
            .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let (_, fresh) = app
        .get(
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(fresh["click_count"], 4, "click_count counts humans");
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn qr_codes() {
    let app = app().await;
    let link = app
        .shorten(None, json!({"original_url": "https://example.com/q"}))
        .await;
    let code = link["short_code"].as_str().unwrap();
    let png = app
        .req(Method::GET, &format!("/api/v1/qr/{code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(&png.bytes().await.unwrap()[1..4], b"PNG");
    let svg = app
        .req(
            Method::GET,
            &format!("/api/v1/qr/{code}?format=svg&size=128"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    for (query, status) in [("size=10", 422), ("size=4096", 422), ("format=gif", 422)] {
        let (s, _) = app.get(&format!("/api/v1/qr/{code}?{query}"), None).await;
        assert_eq!(s.as_u16(), status, "{query}");
    }
    assert_eq!(
        app.get("/api/v1/qr/unknown-code", None).await.0,
        StatusCode::NOT_FOUND
    );
    let post = app
        .req(Method::POST, "/api/v1/qr")
        .json(&json!({"url": "https://example.com/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            post.status(),
            post.headers()["content-type"].to_str().unwrap()
        ),
        (StatusCode::OK, "image/png")
    );
    let post = app
        .req(Method::POST, "/api/v1/qr")
        .json(&json!({"short_code": code, "format": "svg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.headers()["content-type"], "image/svg+xml");
    for body in [
        json!({}),
        json!({"url": "https://example.com/", "short_code": code}),
    ] {
        assert_eq!(
            app.json(Method::POST, "/api/v1/qr", None, body).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    app.server.stop().await.unwrap();
}

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
    let echoed = app
        .req(Method::GET, "/api/v1/health")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let (s, health) = decode(echoed).await;
    assert_eq!((s, health["status"].as_str()), (StatusCode::OK, Some("ok")));
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
async fn graceful_stop_flushes_every_click() {
    if backend_has("kafka") && !backend_has("postgres") {
        eprintln!("skipped: with Kafka the restart check needs a store that outlives the process");
        return;
    }
    let args = backend_args(&["--analytics-flush-ms", "60000"]).await;
    let app = start_app(&args).await;
    let token = app.user("flush@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/f"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap().to_string();
    for _ in 0..50 {
        assert_eq!(app.visit(&code, CHROME).await.status(), StatusCode::FOUND);
    }
    let shortener = app.server.shortener.clone();
    app.server.stop().await.unwrap();
    let owner = shortener.authenticate_bearer(&token).await.unwrap();
    let mut summary = shortener.analytics_summary(&owner, &code, 1).await.unwrap();
    if backend_has("kafka") {
        // The stop flushed every click into the topic; what this instance's worker had not
        // read yet is read by the group's next member: here, the restarted instance.
        let quick: Vec<String> = args
            .iter()
            .map(|a| {
                if a == "60000" {
                    "50".to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        let again = start_app(&quick).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while summary.total_clicks < 50 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            summary = again
                .server
                .shortener
                .analytics_summary(&owner, &code, 1)
                .await
                .unwrap();
        }
        again.server.stop().await.unwrap();
    }
    assert_eq!(summary.total_clicks, 50, "a graceful stop loses no click");
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
