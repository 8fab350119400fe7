//! Fault tests: each starts a backend process of its own on a spare loopback port, runs
//! two `hoplink` processes on it, and stops, kills or freezes the backend under load.
//! Each prints what it measured. They need the backends' programs (`redis-server`,
//! PostgreSQL's `initdb` and `pg_ctl` run as root through `runuser`, Tansu) and, for the
//! Redis and Kafka tests, `TEST_DATABASE_URL`; without them they print a notice and pass,
//! unless `CI` is set.

mod common;

use common::{
    Instance, OwnPostgres, OwnProcess, client, create_links, fresh_schema, instance_env,
    pipeline_report, redirect_rounds, spawn, token, total_clicks, wait_health,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set: the fault tests need {what}");
    }
    eprintln!("skipped: the fault tests need {what}");
}

/// Two instances on one environment, a user of the first, and links of theirs.
struct Pair {
    a: Instance,
    b: Instance,
    /// Both instances' base URLs, for redirect rounds.
    bases: Vec<String>,
    client: Client,
    token: String,
    /// `(short_code, id)` of each link.
    links: Vec<(String, String)>,
    codes: Vec<String>,
}

async fn pair_with_links(env: &[(String, String)], links: usize) -> Pair {
    let (a, b) = (spawn(env).await, spawn(env).await);
    let bases = vec![a.base.clone(), b.base.clone()];
    let client = client();
    let token = token(&client, &a.base).await;
    let links = create_links(&client, &a.base, &token, links).await;
    let codes = links.iter().map(|(c, _)| c.clone()).collect();
    Pair {
        a,
        b,
        bases,
        client,
        token,
        links,
        codes,
    }
}

fn database_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        missing("TEST_DATABASE_URL");
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_redirect_load() {
    let Some(database_url) = database_url() else {
        return;
    };
    let Some(mut redis) = OwnProcess::redis().await else {
        return missing("redis-server");
    };
    let env = instance_env(&[
        ("DATABASE_URL", fresh_schema(&database_url).await),
        ("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port)),
    ]);
    let Pair {
        a,
        b,
        bases,
        client,
        token,
        links,
        codes,
    } = pair_with_links(&env, 10).await;
    let warm = redirect_rounds(&client, &bases, &codes, 1).await;
    assert_eq!(warm.count(302), 20);

    redis.kill().await;
    let started = Instant::now();
    let during = redirect_rounds(&client, &bases, &codes, 50).await;
    println!(
        "redis killed: {} redirects of cached links in {:?}, answered {:?}",
        during.total(),
        started.elapsed(),
        during.0
    );
    assert_eq!(
        during.count(302),
        during.total(),
        "no failure for cached links"
    );
    assert!(
        wait_health(&client, &a.base, "degraded", Duration::from_secs(5)).await,
        "health reports degraded"
    );

    assert!(redis.start().await, "redis-server restarts");
    for base in &bases {
        assert!(
            wait_health(&client, base, "ok", Duration::from_secs(20)).await,
            "{base} recovers by itself"
        );
    }
    let (code, id) = &links[0];
    let r = client
        .patch(format!("{}/api/v1/urls/{id}", a.base))
        .bearer_auth(&token)
        .json(&json!({"original_url": "https://example.com/after"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(format!("{}/{code}", b.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "https://example.com/after",
        "invalidation works again"
    );
    println!("redis restarted: both instances healthy again, edits seen at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load() {
    let Some(postgres) = OwnPostgres::start().await else {
        return missing("a PostgreSQL of its own (initdb, pg_ctl, runuser as root)");
    };
    let env = instance_env(&[("DATABASE_URL", postgres.url())]);
    let Pair {
        a,
        b,
        bases,
        client,
        token,
        codes,
        ..
    } = pair_with_links(&env, 10).await;
    redirect_rounds(&client, &bases, &codes, 1).await;

    assert!(postgres.stop().await, "PostgreSQL stops");
    let during = redirect_rounds(&client, &bases, &codes, 50).await;
    println!(
        "postgres stopped: {} redirects of cached links, answered {:?}",
        during.total(),
        during.0
    );
    assert_eq!(
        during.count(302),
        during.total(),
        "cached links still redirect"
    );
    let mut slowest = Duration::ZERO;
    for base in &bases {
        for _ in 0..5 {
            let started = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/urls"))
                .bearer_auth(&token)
                .json(&json!({"original_url": "https://example.com/while-down"}))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("an answer, not a hang");
            slowest = slowest.max(started.elapsed());
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/problem+json")
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["status"], 503);
        }
    }
    println!("postgres stopped: 10 writes answered 503 problem+json, the slowest in {slowest:?}");
    assert!(
        slowest < Duration::from_secs(15),
        "bounded by the pool's timeouts"
    );
    let r = client
        .get(format!("{}/api/v1/health", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "health: the store is required"
    );

    assert!(postgres.resume().await, "PostgreSQL starts again");
    for base in &bases {
        assert!(
            wait_health(&client, base, "ok", Duration::from_secs(30)).await,
            "{base} recovers by itself"
        );
    }
    create_links(&client, &b.base, &token, 3).await;
    println!("postgres restarted: both instances healthy again, writes succeed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_frozen_under_redirect_load() {
    let Some(database_url) = database_url() else {
        return;
    };
    let Some(broker) = OwnProcess::tansu().await else {
        return missing("tansu (TANSU or ~/.cargo/bin/tansu)");
    };
    let env = instance_env(&[
        ("DATABASE_URL", fresh_schema(&database_url).await),
        ("EVENT_BUS", "kafka".into()),
        ("KAFKA_BROKERS", format!("127.0.0.1:{}", broker.port)),
    ]);
    let Pair {
        a,
        b: _b, // bound, not `_`: dropping an instance stops it, and it serves `bases`
        bases,
        client,
        token,
        codes,
        ..
    } = pair_with_links(&env, 5).await;

    broker.signal("STOP").await;
    let started = Instant::now();
    let during = redirect_rounds(&client, &bases, &codes, 100).await;
    println!(
        "broker frozen: {} redirects in {:?}, answered {:?}",
        during.total(),
        started.elapsed(),
        during.0
    );
    assert_eq!(during.count(302), during.total(), "redirects unaffected");
    assert!(
        wait_health(&client, &a.base, "degraded", Duration::from_secs(10)).await,
        "health reports the bus down"
    );

    broker.signal("CONT").await;
    let expected = during.count(302) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut counted = 0;
    while tokio::time::Instant::now() < deadline {
        counted = total_clicks(&client, &a.base, &token, &codes).await;
        if counted >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("broker thawed: clicks expected {expected}, counted {counted}");
    if counted != expected {
        let report = pipeline_report(&client, &bases).await;
        panic!(
            "every click delivered once the broker is back: expected {expected}, counted {counted}{report}"
        );
    }
}
