//! Links: redirects, creating and refusing, listing, bulk, QR codes.

use super::*;

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

    // Most clicked first: Item 13 twice, Item 7 once.
    let code_of = |title: &str| {
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["title"] == title)
            .unwrap()["short_code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for title in ["Item 13", "Item 13", "Item 7"] {
        assert_eq!(
            app.visit(&code_of(title), CHROME).await.status(),
            StatusCode::FOUND
        );
    }
    let mut order = Vec::new();
    for _ in 0..100 {
        let (s, top) = app
            .get("/api/v1/urls?sort=clicks&limit=2", Some(&token))
            .await;
        assert_eq!(s, StatusCode::OK);
        order = top["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["title"].as_str().unwrap().to_string(),
                    l["click_count"].as_u64().unwrap(),
                )
            })
            .collect();
        if order == [("Item 13".to_string(), 2), ("Item 7".to_string(), 1)] {
            let cursor = top["next_cursor"].as_str().unwrap().to_string();
            let (s, rest) = app
                .get(
                    &format!("/api/v1/urls?sort=clicks&cursor={cursor}&limit=100"),
                    Some(&token),
                )
                .await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(rest["items"].as_array().unwrap().len(), 23);
            let (s, p) = app
                .get(&format!("/api/v1/urls?cursor={cursor}"), Some(&token))
                .await;
            assert_eq!(
                (s, p["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_cursor"))
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        order,
        [("Item 13".to_string(), 2), ("Item 7".to_string(), 1)]
    );
    let (s, _) = app.get("/api/v1/urls?sort=oldest", Some(&token)).await;
    assert!(s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY);

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
