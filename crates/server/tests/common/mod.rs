//! Helpers of the suites that run `hoplink` processes.
#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_hoplink");
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `hoplink` process.
pub struct Instance {
    pub base: String,
    pub child: Child,
}

pub async fn spawn(env: &[(String, String)]) -> Instance {
    let port = free_port();
    let child = Command::new(BIN)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("hoplink starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await
            && r.status() == StatusCode::OK
        {
            return Instance { base, child };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on port {port} did not become healthy");
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

pub async fn token(client: &Client, base: &str) -> String {
    let credentials = json!({"email": "scale@example.com", "password": "password123"});
    let r = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// Tallies answers by status.
#[derive(Default, Debug)]
pub struct Tally(pub HashMap<u16, usize>);

impl Tally {
    pub fn add(&mut self, status: Option<StatusCode>) {
        *self.0.entry(status.map_or(0, |s| s.as_u16())).or_default() += 1;
    }
    pub fn count(&self, status: u16) -> usize {
        self.0.get(&status).copied().unwrap_or(0)
    }
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

pub async fn total_clicks(client: &Client, base: &str, token: &str, codes: &[String]) -> u64 {
    let mut total = 0;
    for code in codes {
        let r = client
            .get(format!("{base}/api/v1/analytics/{code}/summary?days=1"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        total += body["total_clicks"].as_u64().unwrap_or(0);
    }
    total
}

/// The click pipeline's counters (`hoplink_click_events_*`, `hoplink_kafka_*`) and the
/// health document of each instance, one line each: what a failed delivery assertion
/// prints.
pub async fn pipeline_report(client: &Client, bases: &[String]) -> String {
    let mut report = String::new();
    for base in bases {
        let metrics = match client.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => format!("no metrics: {e}"),
        };
        let counters: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("hoplink_click_events_") || l.starts_with("hoplink_kafka_"))
            .collect();
        let health = match client.get(format!("{base}/api/v1/health")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => format!("no health: {e}"),
        };
        report.push_str(&format!(
            "\n{base}: {} | health {health}",
            counters.join(", ")
        ));
    }
    report
}

/// Polls `GET /api/v1/health` until its `status` is `want` (or the patience runs out).
pub async fn wait_health(client: &Client, base: &str, want: &str, patience: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await
            && let Ok(body) = r.json::<Value>().await
            && body["status"] == want
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether a TCP port on loopback accepts connections.
pub async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// A backend process of the test's own, on a spare loopback port, so that it can be
/// stopped, frozen and started again.
pub struct OwnProcess {
    pub port: u16,
    program: String,
    args: Vec<String>,
    child: Option<Child>,
}

impl OwnProcess {
    /// `redis-server` without persistence.
    pub async fn redis() -> Option<OwnProcess> {
        let port = free_port();
        let args = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        Self::start_new(
            "redis-server",
            args.iter().map(|a| a.to_string()).collect(),
            port,
        )
        .await
    }

    /// Tansu (from `TANSU` or `~/.cargo/bin/tansu`) with memory storage.
    pub async fn tansu() -> Option<OwnProcess> {
        let binary = std::env::var("TANSU").ok().or_else(|| {
            let path = format!("{}/.cargo/bin/tansu", std::env::var("HOME").ok()?);
            std::path::Path::new(&path).exists().then_some(path)
        })?;
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let args = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ];
        Self::start_new(&binary, args.iter().map(|a| a.to_string()).collect(), port).await
    }

    async fn start_new(program: &str, args: Vec<String>, port: u16) -> Option<OwnProcess> {
        let mut own = OwnProcess {
            port,
            program: program.to_string(),
            args,
            child: None,
        };
        own.start().await.then_some(own)
    }

    /// Starts it (again) on its port.
    pub async fn start(&mut self) -> bool {
        let Ok(child) = Command::new(&self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        else {
            return false;
        };
        self.child = Some(child);
        for _ in 0..100 {
            if port_open(self.port).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Kills it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Sends `STOP` (freeze: connections stay open, nothing answers) or `CONT`.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(|c| c.id()).expect("running");
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }
}

/// A PostgreSQL cluster of the test's own (initdb into a temporary folder, run as the
/// `postgres` user through `runuser`, so it needs root), on a spare port.
pub struct OwnPostgres {
    pub port: u16,
    dir: String,
    bin: String,
}

impl OwnPostgres {
    pub async fn start() -> Option<OwnPostgres> {
        let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
        let mut bins: Vec<String> = versions
            .filter_map(|v| v.ok())
            .map(|v| format!("{}/bin", v.path().display()))
            .filter(|b| std::path::Path::new(&format!("{b}/initdb")).exists())
            .collect();
        bins.sort();
        let bin = bins.pop()?;
        let dir = format!("/tmp/hoplink-pg-{}", uuid::Uuid::new_v4().simple());
        std::fs::create_dir_all(&dir).ok()?;
        let chown = Command::new("chown")
            .args(["postgres:postgres", &dir])
            .status()
            .await
            .ok()?;
        if !chown.success() {
            return None;
        }
        let initdb = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{bin}/initdb"),
                "-D",
                &format!("{dir}/data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .ok()?;
        if !initdb.success() {
            return None;
        }
        let own = OwnPostgres {
            port: free_port(),
            dir,
            bin,
        };
        own.resume().await.then_some(own)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl` on this cluster as the `postgres` user (blocking: also used from `Drop`).
    fn pg_ctl_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new("runuser");
        command
            .args(["-u", "postgres", "--", &format!("{}/pg_ctl", self.bin)])
            .args(["-D", &format!("{}/data", self.dir), "-w"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    async fn pg_ctl(&self, args: &[&str]) -> bool {
        Command::from(self.pg_ctl_command(args))
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// Starts the server (again).
    pub async fn resume(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port, self.dir
        );
        self.pg_ctl(&["-o", &options, "-l", &format!("{}/log", self.dir), "start"])
            .await
    }

    /// Stops it at once (`-m immediate`, like a crash).
    pub async fn stop(&self) -> bool {
        self.pg_ctl(&["-m", "immediate", "stop"]).await
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl_command(&["-m", "immediate", "stop"]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `database_url` pointed at a fresh schema of its own (created with the migrations).
pub async fn fresh_schema(database_url: &str) -> String {
    let schema = format!(
        "hoplink_e2e_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    hoplink_postgres::PgStore::connect_with(
        database_url,
        hoplink_postgres::PgSettings {
            schema: Some(schema.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("schema");
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}options[search_path]={schema}")
}

/// The settings every instance of a multi-process test shares, with `extra` added or
/// replacing a default.
pub fn instance_env(extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("JWT_SECRET", "fault tests share this secret"),
        ("BASE_URL", "https://sho.rt"),
        ("ANALYTICS_FLUSH_MS", "200"),
        ("RATE_LIMIT_ANON", "off"),
        ("RATE_LIMIT_AUTH", "off"),
        ("RATE_LIMIT_REGISTER", "off"),
        ("RATE_LIMIT_LOGIN", "off"),
        ("RATE_LIMIT_REDIRECT", "off"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "error"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.clone()));
    }
    env
}

/// Creates `n` links on `base`; returns their codes and ids.
pub async fn create_links(
    client: &Client,
    base: &str,
    token: &str,
    n: usize,
) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for i in 0..n {
        let r = client
            .post(format!("{base}/api/v1/urls"))
            .bearer_auth(token)
            .json(&json!({"original_url": format!("https://example.com/fault/{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        links.push((
            body["short_code"].as_str().unwrap().to_string(),
            body["id"].as_str().unwrap().to_string(),
        ));
    }
    links
}

/// Sends `rounds` redirects for each code to each base, one after another; tallies answers.
pub async fn redirect_rounds(
    client: &Client,
    bases: &[String],
    codes: &[String],
    rounds: usize,
) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..rounds {
        for base in bases {
            for code in codes {
                let r = client
                    .get(format!("{base}/{code}"))
                    .header("user-agent", FIREFOX)
                    .send()
                    .await;
                tally.add(r.ok().map(|r| r.status()));
            }
        }
    }
    tally
}
