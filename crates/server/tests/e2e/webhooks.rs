//! Webhooks over HTTP against a receiver on loopback: signatures checked by an
//! independent implementation (Python's `hmac`), a retry after a 500, disabling after 20
//! failures, nothing about other users' links, exactly one delivery with two instances,
//! and a pending delivery that outlives its instance.

use super::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "--jwt-secret=webhook tests share this secret, long enough";

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An HTTP receiver on loopback answering each request with the next of `statuses`
/// (the last one repeats).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Receiver {
        Self::on(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            statuses,
        )
    }

    fn on(listener: tokio::net::TcpListener, statuses: &[u16]) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let statuses = statuses.to_vec();
        let seen = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break (0, 0);
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0usize);
                        break (i + 4, length);
                    }
                };
                if head_end == 0 {
                    continue;
                }
                while data.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&data[head_end..]).to_string();
                let status = {
                    let mut all = seen.lock().unwrap();
                    all.push(Received { headers, body });
                    statuses[(all.len() - 1).min(statuses.len() - 1)]
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        Receiver { url, got, task }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `want` holds of what arrived (15 s at most).
    async fn wait_for(&self, what: &str, want: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        self.wait_up_to(300, what, want).await
    }

    /// Waits until `want` holds, `rounds` × 50 ms at most.
    async fn wait_up_to(
        &self,
        rounds: usize,
        what: &str,
        want: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        for _ in 0..rounds {
            let got = self.received();
            if want(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver never got {what}: {:#?}", self.received());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The signature Python's `hmac` computes for a delivery.
fn python_signature(secret: &str, received: &Received) -> String {
    let script = "import base64, hashlib, hmac, sys\n\
        secret, msg_id, ts = sys.argv[1:4]\n\
        key = base64.b64decode(secret.split('_', 1)[1])\n\
        body = sys.stdin.buffer.read()\n\
        mac = hmac.new(key, msg_id.encode() + b'.' + ts.encode() + b'.' + body, hashlib.sha256)\n\
        print('v1,' + base64.b64encode(mac.digest()).decode())";
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            secret,
            received.header("webhook-id"),
            received.header("webhook-timestamp"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(received.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn webhook(app: &App, token: &str, url: &str, events: &[&str]) -> Value {
    let (s, hook) = app
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(token),
            json!({"url": url, "events": events, "description": "test receiver"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    hook
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_and_only_about_the_owners_links() {
    let app = app_with(&["--webhook-allow-private", "true"]).await;
    let owner = app.user("hooked@example.com").await;
    let other = app.user("unhooked@example.com").await;
    let receiver = Receiver::start(&[500, 204]).await;
    let hook = webhook(
        &app,
        &owner,
        &receiver.url,
        &["link.created", "link.clicked", "link.deleted"],
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["enabled"], true);
    let (_, listed) = app.get("/api/v1/webhooks", Some(&owner)).await;
    assert_eq!(listed["items"][0]["id"], hook["id"]);
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    let (_, theirs) = app.get("/api/v1/webhooks", Some(&other)).await;
    assert_eq!(theirs["items"], json!([]));

    let started = std::time::Instant::now();
    let link = app
        .shorten(
            Some(&owner),
            json!({"original_url": "https://example.com/hooked", "custom_alias": "hooked"}),
        )
        .await;
    // The first attempt gets a 500; the retry comes within 10 s and gets a 204.
    let got = receiver.wait_for("a retry", |r| r.len() >= 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(got[0].body, got[1].body, "a retry sends the same event");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    for delivery in &got {
        assert_eq!(
            delivery.header("webhook-signature"),
            python_signature(secret, delivery)
        );
        let ts: i64 = delivery.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    }
    let event = got[0].json();
    assert_eq!(event["type"], "link.created");
    assert_eq!(event["id"].as_str(), Some(got[0].header("webhook-id")));
    assert_eq!(event["data"]["short_code"], "hooked");
    assert_eq!(event["data"]["short_url"], "https://sho.rt/hooked");
    assert!(event["data"].get("owner_id").is_none());

    // Someone else's link: nothing.
    app.shorten(
        Some(&other),
        json!({"original_url": "https://example.com/not-theirs"}),
    )
    .await;
    // A click: the link and the click.
    let resp = app.visit("hooked", CHROME).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let got = receiver
        .wait_for("link.clicked", |r| {
            r.iter().any(|d| d.json()["type"] == "link.clicked")
        })
        .await;
    let clicked = got
        .iter()
        .find(|d| d.json()["type"] == "link.clicked")
        .unwrap();
    assert_eq!(
        clicked.header("webhook-signature"),
        python_signature(secret, clicked)
    );
    let data = &clicked.json()["data"];
    assert_eq!(data["link"]["id"], link["id"]);
    assert_eq!(data["click"]["browser"], "Chrome");
    assert_eq!(data["click"]["bot"], false);
    let (s, _) = app
        .req(
            Method::DELETE,
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
        )
        .bearer_auth(&owner)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(s, StatusCode::NO_CONTENT);
    let got = receiver
        .wait_for("link.deleted", |r| {
            r.iter().any(|d| d.json()["type"] == "link.deleted")
        })
        .await;
    assert!(
        got.iter().all(|d| !d.body.contains("not-theirs")),
        "nothing about other users' links"
    );
    assert_eq!(got.len(), 4, "created twice (a retry), clicked, deleted");

    // The log, newest first; another user can't see it.
    // The receiver has the last delivery a moment before the server has logged it.
    let id = hook["id"].as_str().unwrap();
    let mut log = Value::Null;
    for _ in 0..50 {
        let (s, got) = app
            .get(&format!("/api/v1/webhooks/{id}/deliveries"), Some(&owner))
            .await;
        assert_eq!(s, StatusCode::OK);
        log = got;
        if log["items"].as_array().is_some_and(|i| i.len() >= 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{log}");
    let last = &items[3];
    assert_eq!(
        (last["attempt"].as_u64(), last["status_code"].as_u64()),
        (Some(1), Some(500))
    );
    assert!(last["error"].is_string());
    assert_eq!(items[2]["attempt"], 2);
    assert_eq!(items[2]["error"], Value::Null);
    let (s, _) = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), Some(&other))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Changes and deletion.
    let (s, changed) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&owner),
            json!({"events": ["link.updated"], "description": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(changed["events"], json!(["link.updated"]));
    assert_eq!(changed["description"], Value::Null);
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&other),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, problem) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&owner),
            json!({"url": null}),
        )
        .await;
    assert_eq!(
        (s, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url"))
    );
    let resp = app
        .req(Method::DELETE, &format!("/api/v1/webhooks/{id}"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, listed) = app.get("/api/v1/webhooks", Some(&owner)).await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_failures_in_a_row_disable_a_webhook() {
    let app = app_with(&["--webhook-allow-private", "true"]).await;
    let owner = app.user("failing@example.com").await;
    let receiver = Receiver::start(&[500]).await;
    let hook = webhook(&app, &owner, &receiver.url, &["link.created"]).await;
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"original_url": format!("https://example.com/fail/{i}")}))
        .collect();
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/urls/bulk",
            Some(&owner),
            json!({ "items": items }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    receiver.wait_for("20 attempts", |r| r.len() >= 20).await;
    let mut listed = Value::Null;
    for _ in 0..100 {
        (_, listed) = app.get("/api/v1/webhooks", Some(&owner)).await;
        if listed["items"][0]["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed["items"][0]["enabled"], false, "{listed}");
    // Disabled: new events are not queued, pending retries not sent.
    let before = receiver.received().len();
    app.shorten(
        Some(&owner),
        json!({"original_url": "https://example.com/after"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        receiver.received().len(),
        before,
        "nothing goes to a disabled webhook"
    );
    // Enabled again, it hears about new events.
    let id = hook["id"].as_str().unwrap();
    let (s, on) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(&owner),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!((s, on["enabled"].as_bool()), (StatusCode::OK, Some(true)));
    app.shorten(
        Some(&owner),
        json!({"original_url": "https://example.com/again"}),
    )
    .await;
    receiver
        .wait_for("a delivery after enabling", |r| r.len() > before)
        .await;
}

#[tokio::test]
async fn receivers_on_private_addresses_need_the_operators_consent() {
    let app = app().await;
    let owner = app.user("careful@example.com").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "ftp://example.com/hook",
        "http://localhost/hook",
    ] {
        let (s, problem) = app
            .json(
                Method::POST,
                "/api/v1/webhooks",
                Some(&owner),
                json!({"url": url, "events": ["link.created"]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(problem["field"], "url");
    }
    let (s, problem) = app
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(&owner),
            json!({"url": "https://hooks.example.com/x", "events": []}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/webhooks",
            Some(&owner),
            json!({"url": "https://hooks.example.com/x", "events": ["link.exploded"]}),
        )
        .await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
        "{s}"
    );
    let (s, _) = app.get("/api/v1/webhooks", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_graceful_shutdown_delivers_what_is_pending() {
    if backend_has("kafka") && !backend_has("postgres") {
        eprintln!("skipped: with Kafka the restart check needs a store that outlives the process");
        return;
    }
    let args = backend_args(&["--webhook-allow-private", "true", SECRET]).await;
    let app = start_app(&args).await;
    let owner = app.user("leaving@example.com").await;
    let receiver = Receiver::start(&[204]).await;
    webhook(&app, &owner, &receiver.url, &["link.clicked"]).await;
    let link = app
        .shorten(
            Some(&owner),
            json!({"original_url": "https://example.com/last-click"}),
        )
        .await;
    let resp = app
        .visit(link["short_code"].as_str().unwrap(), FIREFOX)
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    // Stopped at once: the click is still on its way through the pipeline.
    app.server.stop().await.unwrap();
    if backend_has("kafka") {
        // The stop flushed the click into the topic; what this instance's worker had not
        // read is read by the group's next member, here the restarted instance, which
        // records it and delivers its event.
        let again = start_app(&args).await;
        let got = receiver
            .wait_for("the click after the restart", |r| !r.is_empty())
            .await;
        assert_eq!(got[0].json()["data"]["click"]["browser"], "Firefox");
        again.server.stop().await.unwrap();
        assert_eq!(receiver.received().len(), 1, "delivered once");
        return;
    }
    let got = receiver.received();
    assert_eq!(
        got.len(),
        1,
        "the click was delivered before the stop returned"
    );
    assert_eq!(got[0].json()["data"]["click"]["browser"], "Firefox");
}

/// Two instances sharing PostgreSQL (and Redis Streams when configured): every event
/// delivered once; and a delivery that failed on an instance that then stopped is made
/// by the next instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_shared_backends_each_event_is_delivered_once_and_survives_a_restart() {
    if !backend_has("postgres") {
        eprintln!("skipped: needs E2E_BACKEND with postgres (instances share the store)");
        return;
    }
    let args = backend_args(&["--webhook-allow-private", "true", SECRET]).await;
    let a = start_app(&args).await;
    let b = start_app(&args).await;
    let owner = a.user("twice@example.com").await;
    let receiver = Receiver::start(&[204]).await;
    webhook(&a, &owner, &receiver.url, &["link.created", "link.clicked"]).await;
    // Both instances read their webhook list every 2 s at most.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut codes = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let link = app
            .shorten(
                Some(&owner),
                json!({"original_url": format!("https://example.com/twice/{i}")}),
            )
            .await;
        codes.push(link["short_code"].as_str().unwrap().to_string());
    }
    for (i, code) in codes.iter().enumerate() {
        let app = if i % 2 == 0 { &b } else { &a };
        assert_eq!(app.visit(code, CHROME).await.status(), StatusCode::FOUND);
    }
    // Clicks reach the webhooks through the click bus: with Kafka, each instance's
    // consumer joins the group first, and with the whole suite running at once on 2
    // cores that has taken longer than 15 s.
    let got = receiver
        .wait_up_to(1200, "20 events", |r| r.len() >= 20)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_now = receiver.received();
    assert_eq!(got_now.len(), got.len(), "no second delivery");
    let mut ids: Vec<&str> = got_now.iter().map(|d| d.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each event once");

    // The receiver goes away; a link's delivery fails and waits for its retry.
    drop(receiver);
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down_addr = down.local_addr().unwrap();
    drop(down);
    let owner_b = b.user("restarted@example.com").await;
    webhook(
        &b,
        &owner_b,
        &format!("http://{down_addr}/hook"),
        &["link.created"],
    )
    .await;
    b.shorten(
        Some(&owner_b),
        json!({"original_url": "https://example.com/pending"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.server.stop().await.unwrap();
    b.server.stop().await.unwrap();
    // A new instance on the same store, and the receiver back: the retry arrives.
    let receiver = Receiver::on(
        tokio::net::TcpListener::bind(down_addr).await.unwrap(),
        &[204],
    );
    let c = start_app(&args).await;
    // Its retry comes due about 5 s after the failure; a claim that an instance made
    // just before it stopped holds the job for the 30 s lease. A busy machine adds more.
    let got = receiver
        .wait_up_to(1200, "the pending delivery", |r| !r.is_empty())
        .await;
    assert!(got[0].body.contains("https://example.com/pending"));
    c.server.stop().await.unwrap();
}
