//! Scale-out: three `hoplink` processes on loopback sharing PostgreSQL, Redis and a Kafka
//! broker behave as one service. Needs `TEST_DATABASE_URL`, `TEST_REDIS_URL` and
//! `TEST_KAFKA_BROKERS` (`.ci/run` provides all three); without them it prints a notice
//! and passes, unless `CI` is set. Prints what it measured.

mod common;

use common::{FIREFOX, Tally, client, fresh_schema, instance_env, spawn, token, total_clicks};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;
use tokio::task::JoinSet;

struct Backends {
    database_url: String,
    redis_url: String,
    kafka_brokers: String,
}

fn backends() -> Option<Backends> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("TEST_DATABASE_URL"),
        get("TEST_REDIS_URL"),
        get("TEST_KAFKA_BROKERS"),
    ) {
        (Some(database_url), Some(redis_url), Some(kafka_brokers)) => Some(Backends {
            database_url,
            redis_url,
            kafka_brokers,
        }),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI is set: the scale-out suite needs TEST_DATABASE_URL, TEST_REDIS_URL and TEST_KAFKA_BROKERS"
            )
        }
        _ => {
            eprintln!(
                "skipped: the scale-out suite needs TEST_DATABASE_URL, TEST_REDIS_URL and TEST_KAFKA_BROKERS"
            );
            None
        }
    }
}

/// The environment every instance shares: one schema, one key prefix, one topic.
async fn shared_env(b: &Backends, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let run = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let mut settings = vec![
        ("DATABASE_URL", fresh_schema(&b.database_url).await),
        ("REDIS_URL", b.redis_url.clone()),
        ("REDIS_PREFIX", format!("hoplink-scale-{run}:")),
        ("EVENT_BUS", "kafka".into()),
        ("KAFKA_BROKERS", b.kafka_brokers.clone()),
        ("KAFKA_TOPIC", format!("hoplink-scale-{run}")),
        ("KAFKA_PARTITIONS", "6".into()),
    ];
    settings.extend(extra.iter().cloned());
    instance_env(&settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behave_as_one_service() {
    let Some(backends) = backends() else { return };
    let env = shared_env(&backends, &[("RATE_LIMIT_ANON", "15/3600".into())]).await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(spawn(&env).await);
    }
    let bases: Arc<Vec<String>> = Arc::new(instances.iter().map(|i| i.base.clone()).collect());
    let client = client();
    let token = Arc::new(token(&client, &bases[0]).await);

    // 3 × 1,000 concurrent creates, 64 in flight: every code distinct.
    let mut creates = JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    for n in 0..3000 {
        let (client, bases, token, limit) =
            (client.clone(), bases.clone(), token.clone(), limit.clone());
        creates.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let r = client
                .post(format!("{}/api/v1/urls", bases[n % 3]))
                .bearer_auth(&*token)
                .json(&json!({"original_url": format!("https://example.com/{n}")}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body["short_code"].as_str().map(str::to_string))
        });
    }
    let mut codes = HashSet::new();
    let mut tally = Tally::default();
    while let Some(done) = creates.join_next().await {
        let (status, code) = done.unwrap();
        tally.add(Some(status));
        codes.extend(code);
    }
    println!(
        "creates: sent 3000, 201: {}, distinct codes: {}",
        tally.count(201),
        codes.len()
    );
    assert_eq!(tally.count(201), 3000);
    assert_eq!(codes.len(), 3000, "3,000 distinct codes");

    // Created on one, redirects on the others; edits and deletes are seen at once.
    let r = client
        .post(format!("{}/api/v1/urls", bases[0]))
        .bearer_auth(&*token)
        .json(&json!({"original_url": "https://example.com/v1"}))
        .send()
        .await
        .unwrap();
    let link: Value = r.json().await.unwrap();
    let (code, id) = (
        link["short_code"].as_str().unwrap().to_string(),
        link["id"].as_str().unwrap().to_string(),
    );
    let visit = |base: &str| {
        client
            .get(format!("{base}/{code}"))
            .header("user-agent", FIREFOX)
            .send()
    };
    for base in bases.iter() {
        let r = visit(base).await.unwrap();
        assert_eq!(r.headers()["location"], "https://example.com/v1");
    }
    for version in 2..5 {
        let url = format!("https://example.com/v{version}");
        let editor = &bases[version % 3];
        let r = client
            .patch(format!("{editor}/api/v1/urls/{id}"))
            .bearer_auth(&*token)
            .json(&json!({"original_url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        for base in bases.iter() {
            let r = visit(base).await.unwrap();
            assert_eq!(
                r.headers()["location"],
                url.as_str(),
                "{base} sees the edit at once"
            );
        }
    }
    let r = client
        .delete(format!("{}/api/v1/urls/{id}", bases[1]))
        .bearer_auth(&*token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for base in bases.iter() {
        assert_eq!(visit(base).await.unwrap().status(), StatusCode::NOT_FOUND);
    }
    println!("edits and a delete: seen by the very next redirect on all 3 instances");

    // The anonymous limit holds over the sum of the instances.
    let mut anon = Tally::default();
    for n in 0..45 {
        let r = client
            .post(format!("{}/api/v1/urls", bases[n % 3]))
            .json(&json!({"original_url": "https://example.com/anon"}))
            .send()
            .await
            .unwrap();
        anon.add(Some(r.status()));
    }
    println!(
        "anonymous creates: sent 45 over 3 instances with a limit of 15: 201: {}, 429: {}",
        anon.count(201),
        anon.count(429)
    );
    assert_eq!(anon.count(201), 15);
    assert_eq!(anon.count(429), 30);

    // Clicks spread over every instance are counted exactly once.
    let mut targets = Vec::new();
    for n in 0..10 {
        let r = client
            .post(format!("{}/api/v1/urls", bases[n % 3]))
            .bearer_auth(&*token)
            .json(&json!({"original_url": format!("https://example.com/clicks/{n}")}))
            .send()
            .await
            .unwrap();
        let link: Value = r.json().await.unwrap();
        targets.push(link["short_code"].as_str().unwrap().to_string());
    }
    let targets = Arc::new(targets);
    let mut clicks = JoinSet::new();
    for n in 0..3000 {
        let (client, bases, targets, limit) = (
            client.clone(),
            bases.clone(),
            targets.clone(),
            limit.clone(),
        );
        clicks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            client
                .get(format!("{}/{}", bases[n % 3], targets[n % 10]))
                .header("user-agent", FIREFOX)
                .send()
                .await
                .ok()
                .map(|r| r.status())
        });
    }
    let mut redirects = Tally::default();
    while let Some(done) = clicks.join_next().await {
        redirects.add(done.unwrap());
    }
    assert_eq!(redirects.count(302), 3000, "{redirects:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut counted = 0;
    while tokio::time::Instant::now() < deadline {
        counted = total_clicks(&client, &bases[2], &token, &targets).await;
        if counted >= 3000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A moment more, so that a late double count would show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    counted = counted.max(total_clicks(&client, &bases[2], &token, &targets).await);
    println!("clicks: expected 3000 (over 3 instances), counted {counted}");
    if counted != 3000 {
        for base in bases.iter() {
            let text = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && (l.contains("click") || l.contains("kafka")))
            {
                println!("{base} {line}");
            }
        }
    }
    assert_eq!(counted, 3000, "every click exactly once");

    // Killing an instance mid-load loses no acknowledged write; the others keep serving.
    let mut load = JoinSet::new();
    for n in 0..1500 {
        let (client, bases, token, limit) =
            (client.clone(), bases.clone(), token.clone(), limit.clone());
        load.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let instance = n % 3;
            let r = client
                .post(format!("{}/api/v1/urls", bases[instance]))
                .bearer_auth(&*token)
                .json(&json!({"original_url": format!("https://example.com/kill/{n}")}))
                .send()
                .await;
            let Ok(r) = r else {
                return (instance, None, None);
            };
            let status = r.status();
            let id = r
                .json::<Value>()
                .await
                .ok()
                .and_then(|b| b["id"].as_str().map(str::to_string));
            (instance, Some(status), id)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut victim = instances.pop().unwrap();
    victim.child.start_kill().unwrap();
    let _ = victim.child.wait().await;
    let mut by_instance: Vec<Tally> = (0..3).map(|_| Tally::default()).collect();
    let mut acknowledged = Vec::new();
    while let Some(done) = load.join_next().await {
        let (instance, status, id) = done.unwrap();
        by_instance[instance].add(status);
        if status == Some(StatusCode::CREATED) {
            acknowledged.push(id.expect("a created link has an id"));
        }
    }
    for (i, tally) in by_instance.iter().enumerate() {
        println!(
            "kill test, instance {i}: sent {}, 201: {}, no answer: {}",
            tally.total(),
            tally.count(201),
            tally.count(0)
        );
    }
    for survivor in &by_instance[..2] {
        assert_eq!(
            survivor.count(201),
            survivor.total(),
            "the surviving instances answer every request"
        );
    }
    let mut missing = 0;
    for id in &acknowledged {
        let r = client
            .get(format!("{}/api/v1/urls/{id}", bases[0]))
            .bearer_auth(&*token)
            .send()
            .await
            .unwrap();
        missing += usize::from(r.status() != StatusCode::OK);
    }
    println!(
        "kill test: {} creates acknowledged, {missing} of them missing afterwards",
        acknowledged.len()
    );
    assert_eq!(missing, 0, "no acknowledged write is lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_under_load_loses_no_click() {
    let Some(backends) = backends() else { return };
    let env = shared_env(&backends, &[]).await;
    let mut instances = vec![spawn(&env).await, spawn(&env).await];
    let bases: Vec<String> = instances.iter().map(|i| i.base.clone()).collect();
    let client = client();
    let token = token(&client, &bases[0]).await;
    let r = client
        .post(format!("{}/api/v1/urls", bases[0]))
        .bearer_auth(&token)
        .json(&json!({"original_url": "https://example.com/restart"}))
        .send()
        .await
        .unwrap();
    let link: Value = r.json().await.unwrap();
    let code = link["short_code"].as_str().unwrap().to_string();

    // Redirect load on both; instance 1 gets SIGTERM part-way and comes back.
    let load = {
        let (client, bases, code) = (client.clone(), bases.clone(), code.clone());
        tokio::spawn(async move {
            let mut answered = Tally::default();
            for n in 0..2000 {
                let r = client
                    .get(format!("{}/{code}", bases[n % 2]))
                    .header("user-agent", FIREFOX)
                    .send()
                    .await;
                answered.add(r.ok().map(|r| r.status()));
                if n % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut leaving = instances.pop().unwrap();
    let pid = leaving.child.id().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = leaving.child.wait().await.unwrap();
    assert!(exit.success(), "a graceful stop exits 0: {exit}");
    let answered = load.await.unwrap();
    let redirected = answered.count(302) as u64;
    // The restarted instance joins the group again.
    instances.push(spawn(&env).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut counted = 0;
    while tokio::time::Instant::now() < deadline {
        counted = total_clicks(&client, &bases[0], &token, std::slice::from_ref(&code)).await;
        if counted >= redirected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "graceful restart: sent 2000 redirects, answered {:?}; clicks expected {redirected}, counted {counted}",
        answered.0
    );
    assert_eq!(
        counted, redirected,
        "every answered redirect is counted once"
    );
}
