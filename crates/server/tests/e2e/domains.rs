//! Several short domains and moderation: the same alias on two domains, `Host`-based
//! redirects, fallbacks, `?domain=`, the admin role, blocked links, the blocklist (from
//! the API and from a file reloaded on SIGHUP), reports, and two instances seeing every
//! change at once.

use super::*;

const ADMIN: &str = "admin@example.com";

async fn admin_app(extra: &[&str]) -> App {
    let mut args = vec!["--admin-emails", ADMIN];
    args.extend_from_slice(extra);
    app_with(&args).await
}

/// `GET /{code}` with a `Host` header.
async fn visit_on(app: &App, host: &str, code: &str) -> Response {
    app.req(Method::GET, &format!("/{code}"))
        .header("host", host)
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap()
}

fn location(resp: &Response) -> &str {
    resp.headers()["location"].to_str().unwrap()
}

async fn add_domain(app: &App, admin: &str, host: &str, extra: Value) -> Value {
    let mut body = json!({"host": host});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (s, domain) = app
        .json(Method::POST, "/api/v1/domains", Some(admin), body)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{domain}");
    domain
}

#[tokio::test]
async fn the_same_alias_on_two_domains_goes_to_two_places() {
    let app = admin_app(&[]).await;
    let admin = app.user(ADMIN).await;
    let user = app.user("user@example.com").await;
    let (_, me) = app.get("/api/v1/auth/me", Some(&admin)).await;
    assert_eq!(me["role"], "admin");
    let (_, me) = app.get("/api/v1/auth/me", Some(&user)).await;
    assert_eq!(me["role"], "user");

    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/domains",
            Some(&user),
            json!({"host": "go.example.com"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let domain = add_domain(&app, &admin, "go.example.com", json!({})).await;
    assert_eq!(domain["is_default"], false);
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/domains",
            Some(&admin),
            json!({"host": "go.example.com"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("domain_exists"))
    );
    for bad in [
        "Go.Example.com",
        "localhost",
        "1.2.3.4",
        "go.example.com:8080",
        "sho",
    ] {
        let (s, _) = app
            .json(
                Method::POST,
                "/api/v1/domains",
                Some(&admin),
                json!({"host": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (_, domains) = app.get("/api/v1/domains", Some(&user)).await;
    let hosts: Vec<&str> = domains["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["sho.rt", "go.example.com"], "the default first");
    assert_eq!(domains["items"][0]["is_default"], true);

    let default_link = app
        .shorten(
            Some(&user),
            json!({"original_url": "https://example.com/default", "custom_alias": "launch"}),
        )
        .await;
    assert_eq!(default_link["domain"], "sho.rt");
    assert_eq!(default_link["short_url"], "https://sho.rt/launch");
    let other = app
        .shorten(
            Some(&user),
            json!({"original_url": "https://example.org/other", "custom_alias": "launch", "domain": "go.example.com"}),
        )
        .await;
    assert_eq!(other["domain"], "go.example.com");
    assert_eq!(other["short_url"], "https://go.example.com/launch");
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            None,
            json!({"original_url": "https://example.com/", "domain": "nowhere.example"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_domain"))
    );

    for (host, to) in [
        ("sho.rt", "https://example.com/default"),
        ("SHO.RT:443", "https://example.com/default"),
        ("go.example.com", "https://example.org/other"),
        ("Go.Example.COM:8080", "https://example.org/other"),
        ("unknown.example", "https://example.com/default"),
    ] {
        let resp = visit_on(&app, host, "launch").await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{host}");
        assert_eq!(location(&resp), to, "{host}");
    }

    // The own-host rule covers every domain.
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            None,
            json!({"original_url": "https://go.example.com/launch"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_url"))
    );

    // ?domain= picks the link on routes that name it by code, and filters the list.
    for _ in 0..3 {
        visit_on(&app, "go.example.com", "launch").await;
    }
    let mut summary = Value::Null;
    for _ in 0..100 {
        summary = app
            .get(
                "/api/v1/analytics/launch/summary?days=1&domain=go.example.com",
                Some(&user),
            )
            .await
            .1;
        if summary["total_clicks"] == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary["total_clicks"], 5, "{summary}");
    let (_, on_default) = app
        .get("/api/v1/analytics/launch/summary?days=1", Some(&user))
        .await;
    assert_eq!(on_default["total_clicks"], 3, "the default domain's link");
    let svg = app
        .req(
            Method::GET,
            "/api/v1/qr/launch?format=svg&domain=go.example.com",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), StatusCode::OK);
    let (_, listed) = app
        .get("/api/v1/urls?domain=go.example.com", Some(&user))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], other["id"]);
    let (_, all) = app.get("/api/v1/urls", Some(&user)).await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        2,
        "every domain without ?domain="
    );

    // Deleting: never the default, not while links use it.
    for (host, code) in [
        ("sho.rt", "domain_in_use"),
        ("go.example.com", "domain_in_use"),
    ] {
        let (s, p) = app
            .json(
                Method::DELETE,
                &format!("/api/v1/domains/{host}"),
                Some(&admin),
                Value::Null,
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::CONFLICT, Some(code)),
            "{host}"
        );
    }
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/urls/{}", other["id"].as_str().unwrap()),
            Some(&user),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .json(
            Method::DELETE,
            "/api/v1/domains/go.example.com",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let resp = visit_on(&app, "go.example.com", "launch").await;
    assert_eq!(
        location(&resp),
        "https://example.com/default",
        "an unknown host is the default domain again"
    );
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn fallbacks_of_each_domain() {
    let app = admin_app(&[]).await;
    let admin = app.user(ADMIN).await;
    add_domain(
        &app,
        &admin,
        "go.example.com",
        json!({
            "root_redirect": "https://example.com/home",
            "not_found_redirect": "https://example.com/missing",
            "gone_redirect": "https://example.com/gone",
        }),
    )
    .await;
    add_domain(&app, &admin, "bare.example.com", json!({})).await;
    let root = |host: &'static str| app.req(Method::GET, "/").header("host", host).send();
    let home = root("go.example.com").await.unwrap();
    assert_eq!(
        (home.status(), location(&home)),
        (StatusCode::FOUND, "https://example.com/home")
    );
    let dashboard = root("sho.rt").await.unwrap();
    assert_eq!(
        (dashboard.status(), location(&dashboard)),
        (StatusCode::FOUND, "/app/")
    );
    assert_eq!(
        root("bare.example.com").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let missing = visit_on(&app, "go.example.com", "nothing-here").await;
    assert_eq!(
        (missing.status(), location(&missing)),
        (StatusCode::FOUND, "https://example.com/missing")
    );
    assert_eq!(
        visit_on(&app, "bare.example.com", "nothing-here")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // A path that can't be a code is no unknown link: no fallback.
    assert_eq!(
        visit_on(&app, "go.example.com", &"x".repeat(65))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let link = app
        .shorten(
            Some(&admin),
            json!({"original_url": "https://example.org/x", "domain": "go.example.com"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
            Some(&admin),
            json!({"is_active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let gone = visit_on(&app, "go.example.com", code).await;
    assert_eq!(
        (gone.status(), location(&gone)),
        (StatusCode::FOUND, "https://example.com/gone")
    );

    // The default domain's redirects can be set too, and cleared with null.
    let (s, d) = app
        .json(
            Method::PATCH,
            "/api/v1/domains/sho.rt",
            Some(&admin),
            json!({"root_redirect": "https://example.com/welcome"}),
        )
        .await;
    assert_eq!(
        (s, d["is_default"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{d}"
    );
    let welcome = root("sho.rt").await.unwrap();
    assert_eq!(location(&welcome), "https://example.com/welcome");
    let (s, d) = app
        .json(
            Method::PATCH,
            "/api/v1/domains/sho.rt",
            Some(&admin),
            json!({"root_redirect": null}),
        )
        .await;
    assert_eq!((s, &d["root_redirect"]), (StatusCode::OK, &Value::Null));
    assert_eq!(location(&root("sho.rt").await.unwrap()), "/app/");
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn blocking_links_and_hosts() {
    let app = admin_app(&[]).await;
    let admin = app.user(ADMIN).await;
    let owner = app.user("owner@example.com").await;
    let link = app
        .shorten(
            Some(&owner),
            json!({"original_url": "https://phish.example/login", "title": "Totally your bank"}),
        )
        .await;
    let id = link["id"].as_str().unwrap();
    let code = link["short_code"].as_str().unwrap();
    let anon = app
        .shorten(None, json!({"original_url": "https://evil.example/x"}))
        .await;

    // Every owner's links, searched and filtered.
    let (s, p) = app.get("/api/v1/admin/links?q=bank", Some(&owner)).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (_, found) = app.get("/api/v1/admin/links?q=bank", Some(&admin)).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, everything) = app.get("/api/v1/admin/links?limit=100", Some(&admin)).await;
    assert!(
        everything["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == anon["id"]),
        "anonymous links included"
    );

    // Blocking a link: 410 link_blocked at once; the owner reads it, can't unblock it.
    let (s, blocked) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/admin/links/{id}"),
            Some(&admin),
            json!({"blocked": true, "blocked_reason": "phishing"}),
        )
        .await;
    assert_eq!((s, &blocked["blocked"]), (StatusCode::OK, &json!(true)));
    let (s, p) = decode(app.visit(code, CHROME).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::GONE, Some("link_blocked"))
    );
    let (_, own) = app.get(&format!("/api/v1/urls/{id}"), Some(&owner)).await;
    assert_eq!(
        (&own["blocked"], &own["blocked_reason"]),
        (&json!(true), &json!("phishing"))
    );
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&owner),
            json!({"blocked": false}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "owners can't unblock");
    let (_, only_blocked) = app
        .get("/api/v1/admin/links?blocked=true", Some(&admin))
        .await;
    assert_eq!(only_blocked["items"].as_array().unwrap().len(), 1);

    // The blocklist: existing links to the host (and its subdomains) answer 410 at once,
    // new ones are refused; removing the pattern lets them through again.
    let subdomain = app
        .shorten(None, json!({"original_url": "https://www.evil.example/y"}))
        .await;
    let (s, entry) = app
        .json(
            Method::POST,
            "/api/v1/admin/blocklist",
            Some(&admin),
            json!({"pattern": "evil.example", "reason": "malware"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{entry}");
    for covered in [&anon, &subdomain] {
        let (s, p) = decode(
            app.visit(covered["short_code"].as_str().unwrap(), CHROME)
                .await,
        )
        .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::GONE, Some("link_blocked"))
        );
    }
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            None,
            json!({"original_url": "https://cdn.evil.example/z"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("blocked_url"))
    );
    let (_, list) = app.get("/api/v1/admin/blocklist", Some(&admin)).await;
    assert_eq!(list["items"][0]["pattern"], "evil.example");
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/admin/blocklist/{}", entry["id"].as_str().unwrap()),
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.visit(anon["short_code"].as_str().unwrap(), CHROME)
            .await
            .status(),
        StatusCode::FOUND
    );

    // Reports: anyone files one, administrators work through them.
    let short_url = link["short_url"].as_str().unwrap();
    let (s, filed) = app
        .json(
            Method::POST,
            "/api/v1/reports",
            None,
            json!({"short_url": short_url, "reason": "phishing", "details": "asks for my password"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{filed}");
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/reports",
            None,
            json!({"short_url": "https://sho.rt/no-such-code", "reason": "spam"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The right code on a host that is none of ours, or no URL at all, names no link.
    let elsewhere = format!(
        "https://evil.example/{}",
        link["short_code"].as_str().unwrap()
    );
    for other in [elsewhere.as_str(), "launch", "not a url"] {
        let (s, _) = app
            .json(
                Method::POST,
                "/api/v1/reports",
                None,
                json!({"short_url": other, "reason": "spam"}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{other}");
    }
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/reports",
            None,
            json!({"short_url": short_url, "reason": "rude"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "reasons are an enum");
    let (s, _) = app.get("/api/v1/admin/reports", Some(&owner)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, open) = app.get("/api/v1/admin/reports", Some(&admin)).await;
    let items = open["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (&items[0]["id"], &items[0]["link"]["id"]),
        (&filed["id"], &link["id"])
    );
    assert_eq!(items[0]["status"], "open");
    let (s, closed) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/admin/reports/{}", filed["id"].as_str().unwrap()),
            Some(&admin),
            json!({"status": "resolved"}),
        )
        .await;
    assert_eq!((s, &closed["status"]), (StatusCode::OK, &json!("resolved")));
    let (_, open) = app.get("/api/v1/admin/reports", Some(&admin)).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    let (_, resolved) = app
        .get("/api/v1/admin/reports?status=resolved", Some(&admin))
        .await;
    assert_eq!(resolved["items"].as_array().unwrap().len(), 1);

    // The owner may still delete the blocked link.
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/urls/{id}"),
            Some(&owner),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_blocklist_file_is_read_again_on_sighup() {
    let dir = std::env::temp_dir().join(format!(
        "hoplink-blocklist-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blocklist.txt");
    std::fs::write(&file, "# hosts we never redirect to\nfirst.example\n").unwrap();
    let env = [
        ("BLOCKLIST_FILE".to_string(), file.display().to_string()),
        ("RATE_LIMIT_ANON".to_string(), "off".to_string()),
        ("RATE_LIMIT_REDIRECT".to_string(), "off".to_string()),
        ("BASE_URL".to_string(), "https://sho.rt".to_string()),
    ];
    let mut instance = common::spawn(&env).await;
    let client = common::client();
    let base = instance.base.clone();
    let shorten = |url: &'static str| {
        client
            .post(format!("{base}/api/v1/urls"))
            .json(&json!({"original_url": url}))
            .send()
    };
    let refused = shorten("https://first.example/a").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let second: Value = shorten("https://second.example/b")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = second["short_code"].as_str().unwrap().to_string();
    let visit = || client.get(format!("{base}/{code}")).send();
    assert_eq!(visit().await.unwrap().status(), StatusCode::FOUND);

    std::fs::write(&file, "second.example # added\n").unwrap();
    let pid = instance.child.id().expect("running").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let mut blocked = false;
    for _ in 0..100 {
        if visit().await.unwrap().status() == StatusCode::GONE {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        blocked,
        "after SIGHUP the file's new pattern blocks the link"
    );
    assert_eq!(
        shorten("https://first.example/a").await.unwrap().status(),
        StatusCode::CREATED,
        "and its old pattern is gone"
    );
    let _ = instance.child.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_see_domains_blocks_and_the_blocklist_at_once() {
    if !(backend_has("postgres") && backend_has("redis")) {
        eprintln!("skipped: E2E_BACKEND=postgres+redis runs the two-instance test");
        return;
    }
    let args = backend_args(&[
        "--jwt-secret",
        "two instances share this secret",
        "--admin-emails",
        ADMIN,
    ])
    .await;
    let (a, b) = (start_app(&args).await, start_app(&args).await);
    let admin = a.user(ADMIN).await;

    // Warm b's caches: the host is unknown and the code on the default domain.
    let link = a
        .shorten(
            Some(&admin),
            json!({"original_url": "https://example.com/default", "custom_alias": "promo"}),
        )
        .await;
    assert_eq!(
        location(&visit_on(&b, "promo.example.com", "promo").await),
        "https://example.com/default"
    );

    // A domain added on a is used by b's very next request.
    add_domain(
        &a,
        &admin,
        "promo.example.com",
        json!({"not_found_redirect": "https://example.com/404"}),
    )
    .await;
    let missing = visit_on(&b, "promo.example.com", "promo").await;
    assert_eq!(
        location(&missing),
        "https://example.com/404",
        "b knows the new domain"
    );
    a.shorten(
        Some(&admin),
        json!({"original_url": "https://example.org/promo", "custom_alias": "promo", "domain": "promo.example.com"}),
    )
    .await;
    assert_eq!(
        location(&visit_on(&b, "promo.example.com", "promo").await),
        "https://example.org/promo"
    );

    // A link blocked on a answers 410 on b at once.
    a.json(
        Method::PATCH,
        &format!("/api/v1/admin/links/{}", link["id"].as_str().unwrap()),
        Some(&admin),
        json!({"blocked": true}),
    )
    .await;
    let (s, p) = decode(visit_on(&b, "sho.rt", "promo").await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::GONE, Some("link_blocked"))
    );

    // A blocklist entry added on a disables b's cached link to it at once.
    let victim = a
        .shorten(None, json!({"original_url": "https://bad.example/landing"}))
        .await;
    let code = victim["short_code"].as_str().unwrap();
    assert_eq!(
        visit_on(&b, "sho.rt", code).await.status(),
        StatusCode::FOUND
    );
    a.json(
        Method::POST,
        "/api/v1/admin/blocklist",
        Some(&admin),
        json!({"pattern": "bad.example"}),
    )
    .await;
    let (s, p) = decode(visit_on(&b, "sho.rt", code).await).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::GONE, Some("link_blocked"))
    );
    a.server.stop().await.unwrap();
    b.server.stop().await.unwrap();
}
