//! Smart redirects over HTTP: rules by device, language, country (trusted header and the
//! GeoIP test database), query forwarding, password-protected links and previews; a rule
//! added on one instance is followed by the next redirect on another.

use super::*;

const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36";

fn location(resp: &Response) -> Option<&str> {
    resp.headers().get("location").and_then(|v| v.to_str().ok())
}

fn geoip_db() -> String {
    format!(
        "{}/../core/tests/data/geoip/GeoLite2-Country-Test.mmdb",
        env!("CARGO_MANIFEST_DIR")
    )
}

async fn summary(app: &App, token: &str, code: &str, want: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (s, body) = app
            .get(
                &format!("/api/v1/analytics/{code}/summary?days=1"),
                Some(token),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        if want(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the summary never showed what was expected: {last}");
}

#[tokio::test]
async fn devices_go_to_their_own_store() {
    let app = app().await;
    let token = app.user("smart@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({
                "original_url": "https://example.com/app",
                "redirect_rules": [
                    {"url": "https://apps.apple.com/app/id1", "conditions": [{"type": "os", "value": "ios"}]},
                    {"url": "https://play.google.com/store/apps/details?id=x", "conditions": [{"type": "os", "value": "android"}]},
                ],
            }),
        )
        .await;
    assert_eq!(link["redirect_rules"][1]["conditions"][0]["type"], "os");
    assert_eq!(link["forward_query"], false);
    assert_eq!(link["password_protected"], false);
    let code = link["short_code"].as_str().unwrap();
    for (ua, to) in [
        (IPHONE, "https://apps.apple.com/app/id1"),
        (ANDROID, "https://play.google.com/store/apps/details?id=x"),
        (CHROME, "https://example.com/app"),
    ] {
        let resp = app.visit(code, ua).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert_eq!(location(&resp), Some(to));
        assert_eq!(
            resp.headers()["cache-control"],
            "private, no-store",
            "an answer that depends on the visitor is kept by no cache"
        );
    }
    summary(&app, &token, code, |s| s["total_clicks"] == 3).await;

    // Rules are checked with their field named, and never on a permanent redirect.
    let (s, problem) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            Some(&token),
            json!({
                "original_url": "https://example.com/app",
                "redirect_rules": [
                    {"url": "https://example.com/a", "conditions": [{"type": "os", "value": "ios"}]},
                    {"url": "https://example.com/b", "conditions": [{"type": "device", "value": "watch"}]},
                ],
            }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "redirect_rules[1].conditions[0].value");
    let (s, problem) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            Some(&token),
            json!({
                "original_url": "https://example.com/app",
                "redirect_rules": [{"url": "http://127.0.0.1/x", "conditions": [{"type": "os", "value": "ios"}]}],
            }),
        )
        .await;
    assert_eq!(
        (s, problem["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("redirect_rules[0].url")
        ),
        "{problem}"
    );
    let (s, problem) = app
        .json(
            Method::POST,
            "/api/v1/urls",
            Some(&token),
            json!({"original_url": "https://example.com/app", "forward_query": true, "redirect_type": 301}),
        )
        .await;
    assert_eq!(
        (s, problem["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_redirect_type")
        )
    );
    let (s, problem) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
            Some(&token),
            json!({"redirect_type": 308}),
        )
        .await;
    assert_eq!(problem["code"], "invalid_redirect_type", "{s} {problem}");
}

#[tokio::test]
async fn languages_countries_and_forwarded_queries() {
    let db = geoip_db();
    let app = app_with(&[
        "--trusted-proxies",
        "127.0.0.0/8",
        "--country-header",
        "cf-ipcountry",
        "--geoip-db",
        &db,
    ])
    .await;
    let token = app.user("langs@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({
                "original_url": "https://example.com/en?lang=en",
                "forward_query": true,
                "redirect_rules": [
                    {"url": "https://example.com/uk", "conditions": [{"type": "country", "value": "gb"}]},
                    {"url": "https://example.com/us", "conditions": [{"type": "country", "value": "US"}]},
                    {"url": "https://example.com/de", "conditions": [{"type": "language", "value": "de"}]},
                    {"url": "https://example.com/campaign", "conditions": [{"type": "query", "key": "utm_campaign", "value": "*"}]},
                ],
            }),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    let go = |headers: Vec<(&'static str, &'static str)>, query: &'static str| {
        let mut r = app
            .req(Method::GET, &format!("/{code}{query}"))
            .header("user-agent", CHROME);
        for (name, value) in headers {
            r = r.header(name, value);
        }
        r.send()
    };
    let at = |resp: Response| location(&resp).map(str::to_string);
    // From the GeoIP test database, through a trusted proxy's X-Forwarded-For.
    assert_eq!(
        at(go(vec![("x-forwarded-for", "81.2.69.160")], "")
            .await
            .unwrap())
        .as_deref(),
        Some("https://example.com/uk")
    );
    assert_eq!(
        at(go(vec![("x-forwarded-for", "216.160.83.56")], "")
            .await
            .unwrap())
        .as_deref(),
        Some("https://example.com/us")
    );
    // The trusted header wins over the database.
    assert_eq!(
        at(go(
            vec![("x-forwarded-for", "81.2.69.160"), ("cf-ipcountry", "US")],
            ""
        )
        .await
        .unwrap())
        .as_deref(),
        Some("https://example.com/us")
    );
    assert_eq!(
        at(go(
            vec![("accept-language", "de-AT;q=0.9, en;q=0.5")],
            "?utm_source=mail"
        )
        .await
        .unwrap())
        .as_deref(),
        Some("https://example.com/de?utm_source=mail"),
        "de-AT matches de; the query is forwarded"
    );
    assert_eq!(
        at(go(
            vec![("accept-language", "fr, de;q=0")],
            "?utm_campaign=x&a=1"
        )
        .await
        .unwrap())
        .as_deref(),
        Some("https://example.com/campaign?utm_campaign=x&a=1"),
        "q=0 is a refusal; a query rule"
    );
    assert_eq!(
        at(go(vec![], "?a=1&b=2").await.unwrap()).as_deref(),
        Some("https://example.com/en?lang=en&a=1&b=2"),
        "the destination's own query first, the request's after"
    );
    // Clicks get the database's country too.
    let counted = summary(&app, &token, code, |s| s["total_clicks"] == 6).await;
    let countries = counted["countries"].to_string();
    assert!(
        countries.contains("\"GB\"") && countries.contains("\"US\""),
        "{countries}"
    );
}

#[tokio::test]
async fn password_protected_links() {
    let app = app_with(&["--trusted-proxies", "127.0.0.0/8"]).await;
    let token = app.user("secret@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/internal/plan", "title": "Plan", "password": "open sesame"}),
        )
        .await;
    assert_eq!(link["password_protected"], true);
    assert!(link.get("password").is_none(), "never shown: {link}");
    let code = link["short_code"].as_str().unwrap().to_string();

    // The form: nothing about the destination, nothing counted.
    let form = app.visit(&code, CHROME).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(location(&form).is_none());
    assert_eq!(form.headers()["cache-control"], "no-store");
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    let headers = format!("{:?}", form.headers());
    let page = form.text().await.unwrap();
    assert!(page.contains("<form method=\"post\"") && page.contains("name=\"password\""));
    assert!(!page.contains("<script"), "no script is needed to submit");
    for leak in [&page, &headers] {
        assert!(!leak.contains("example.com/internal"), "{leak}");
    }

    let post = |password: &str, from: &'static str| {
        app.req(Method::POST, &format!("/{code}"))
            .header("user-agent", CHROME)
            .header("x-forwarded-for", from)
            .form(&[("password", password)])
            .send()
    };
    let wrong = post("guess", "198.51.100.1").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("not right"));
    let right = post("open sesame", "198.51.100.1").await.unwrap();
    assert_eq!(right.status(), StatusCode::FOUND);
    assert_eq!(location(&right), Some("https://example.com/internal/plan"));
    assert_eq!(right.headers()["cache-control"], "private, no-store");

    // Basic auth for tools: any user name.
    let basic = |password: &str| {
        app.req(Method::GET, &format!("/{code}"))
            .header("user-agent", CHROME)
            .basic_auth("anyone", Some(password))
            .send()
    };
    let refused = basic("nope").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let through = basic("open sesame").await.unwrap();
    assert_eq!(
        location(&through),
        Some("https://example.com/internal/plan")
    );

    // 10 wrong passwords from one address: then 429 there, even for the right one.
    for _ in 0..10 {
        assert_eq!(
            post("wrong", "198.51.100.2").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = post("open sesame", "198.51.100.2").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        post("open sesame", "198.51.100.3").await.unwrap().status(),
        StatusCode::FOUND,
        "another address is not held back"
    );

    // Each right password was one click; the form and the wrong ones none.
    let counted = summary(&app, &token, &code, |s| s["total_clicks"] == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, again) = app
        .get(
            &format!("/api/v1/analytics/{code}/summary?days=1"),
            Some(&token),
        )
        .await;
    assert_eq!(again["total_clicks"], counted["total_clicks"], "{again}");

    // The password can be removed (and the link then redirects), or changed.
    let id = link["id"].as_str().unwrap();
    let (s, changed) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&token),
            json!({"password": null}),
        )
        .await;
    assert_eq!(
        (s, &changed["password_protected"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(app.visit(&code, CHROME).await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn previews_show_where_a_link_goes_without_counting() {
    let app = app().await;
    let token = app.user("preview@example.com").await;
    let link = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/a?x=<b>", "title": "Spring <sale> & more"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    let resp = app
        .req(Method::GET, &format!("/{code}+"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.headers().contains_key("content-security-policy"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("https://example.com/a?x=%3Cb%3E"), "{page}");
    assert!(
        page.contains("Spring &lt;sale&gt; &amp; more"),
        "escaped: {page}"
    );

    let secret = app
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/hidden", "password": "pw"}),
        )
        .await;
    let page = app
        .req(
            Method::GET,
            &format!("/{}+", secret["short_code"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("example.com/hidden") && page.contains("password"));

    let missing = app.req(Method::GET, "/nothing-here+").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("<html"));
    let id = link["id"].as_str().unwrap();
    app.json(
        Method::PATCH,
        &format!("/api/v1/urls/{id}"),
        Some(&token),
        json!({"is_active": false}),
    )
    .await;
    let gone = app
        .req(Method::GET, &format!("/{code}+"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(gone.text().await.unwrap().contains("<html"));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, s) = app
        .get(
            &format!("/api/v1/analytics/{code}/summary?days=1"),
            Some(&token),
        )
        .await;
    assert_eq!(s["total_clicks"], 0, "previews count nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_added_on_one_instance_is_followed_by_the_next_redirect_on_another() {
    if !(backend_has("postgres") && backend_has("redis")) {
        eprintln!("skipped: E2E_BACKEND=postgres+redis runs the two-instance test");
        return;
    }
    let args = backend_args(&["--jwt-secret", "two instances share this secret"]).await;
    let (a, b) = (start_app(&args).await, start_app(&args).await);
    let token = a.user("rules@example.com").await;
    let link = a
        .shorten(
            Some(&token),
            json!({"original_url": "https://example.com/web"}),
        )
        .await;
    let code = link["short_code"].as_str().unwrap();
    assert_eq!(
        location(&b.visit(code, IPHONE).await),
        Some("https://example.com/web"),
        "b has the plain link cached"
    );
    let (s, _) = a
        .json(
            Method::PATCH,
            &format!("/api/v1/urls/{}", link["id"].as_str().unwrap()),
            Some(&token),
            json!({"redirect_rules": [{"url": "https://apps.apple.com/app/id1", "conditions": [{"type": "os", "value": "ios"}]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        location(&b.visit(code, IPHONE).await),
        Some("https://apps.apple.com/app/id1")
    );
    assert_eq!(
        location(&b.visit(code, CHROME).await),
        Some("https://example.com/web")
    );
}
