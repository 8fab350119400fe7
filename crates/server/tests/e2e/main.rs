//! End-to-end: the server on an ephemeral loopback port, driven over real HTTP.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod analytics;
mod domains;
mod hardening;
mod links;
mod smart;
mod spec;
mod system;
mod transfer;
mod webhooks;

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
