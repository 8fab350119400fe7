//! The `hoplink` binary: configuration errors, the `openapi` subcommand, signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hoplink");

#[test]
fn a_bad_setting_stops_the_start_with_a_clear_message() {
    for (var, value, needle) in [
        ("RATE_LIMIT_ANON", "abc", "N/SECONDS"),
        ("ANALYTICS_BATCH_SIZE", "0", "whole number"),
        ("ANALYTICS_BATCH_SIZE", "1000000000", "whole number"),
        ("BIND", "nowhere", "BIND"),
        ("EVENT_BUS", "carrier-pigeon", "EVENT_BUS"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,banana", "CIDR"),
    ] {
        let out = Command::new(BIN).env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}={value} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(needle) || stderr.contains(&var.to_lowercase().replace('_', "-")),
            "{var}={value}: {stderr}"
        );
    }
    let out = Command::new(BIN)
        .env("JWT_SECRET", "short")
        .env("BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}

#[test]
fn openapi_subcommand_prints_the_document() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../openapi/openapi.json"
    ))
    .unwrap();
    assert!(
        printed == committed,
        "regenerate: cargo run -p hoplink-server -- openapi > openapi/openapi.json"
    );
}

#[test]
fn sigterm_stops_gracefully_with_exit_0() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let healthcheck = || {
        Command::new(BIN)
            .arg("healthcheck")
            .env("BIND", format!("0.0.0.0:{port}"))
            .output()
            .unwrap()
    };
    assert!(
        healthcheck().status.success(),
        "healthcheck of a running server"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    let down = healthcheck();
    assert!(!down.status.success(), "healthcheck of a stopped server");
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        logs.contains("\"stopped\"") || logs.contains("stopped"),
        "{logs}"
    );
    assert!(
        logs.lines().all(|l| l.starts_with('{')),
        "LOG_FORMAT=json gives JSON lines: {logs}"
    );
}
