//! `hoplink import --owner EMAIL FILE` against PostgreSQL (`TEST_DATABASE_URL`): a file
//! with a bad row imports the rest and says which line failed; a second run creates
//! nothing; an unknown owner stops it with a clear message. Without the database it
//! prints a notice and passes, unless `CI` is set.

mod common;

use common::{BIN, client, fresh_schema, instance_env, spawn, token};
use reqwest::StatusCode;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_command_fills_an_account_from_a_file() {
    let Some(database_url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but TEST_DATABASE_URL is missing"
        );
        eprintln!("skipped: set TEST_DATABASE_URL to run the import command test");
        return;
    };
    let url = fresh_schema(&database_url).await;
    let env = instance_env(&[("DATABASE_URL", url.clone())]);
    let server = spawn(&env).await;
    let client = client();
    let token = token(&client, &server.base).await;

    let mut file = String::from("Long URL,Short code,Domain,Title,Tags\n");
    for i in 0..1200 {
        file.push_str(&format!(
            "https://example.com/imported/{i},imp-{i},,Row {i},cli\n"
        ));
    }
    file.push_str("ftp://example.com/nope,imp-bad,,,\n");
    let dir = std::env::temp_dir().join(format!("hoplink-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("links.csv");
    std::fs::write(&path, file).unwrap();

    let run = |owner: &str| {
        Command::new(BIN)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["import", "--owner", owner])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run("scale@example.com");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed row: exit 1\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("created 1200, skipped 0, failed 1"),
        "{stdout}"
    );
    assert!(stderr.contains("line 1202: invalid_url"), "{stderr}");

    let resp = client
        .get(format!("{}/imp-1199", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FOUND,
        "the server sees the imported links"
    );
    assert_eq!(
        resp.headers()["location"],
        "https://example.com/imported/1199"
    );
    let listed: serde_json::Value = client
        .get(format!(
            "{}/api/v1/urls?tag=cli&q=imported/1199",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["title"], "Row 1199");

    let again = run("scale@example.com");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("created 0, skipped 1200, failed 1"),
        "{stdout}"
    );

    let nobody = run("nobody@example.com");
    assert_eq!(nobody.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("nobody@example.com"));
    std::fs::remove_dir_all(&dir).ok();
}
