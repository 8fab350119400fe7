//! Accounts: registration, tokens and their rotation, API keys, ownership.

use super::*;

#[tokio::test]
async fn accounts_refresh_rotation_and_reuse_detection() {
    // No grace period: presenting a used refresh token again is reuse at once (the grace
    // period of two tabs refreshing together has a test of its own).
    let app = app_with(&["--refresh-reuse-grace", "0"]).await;
    let (s, user) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "ada@example.com", "password": "password123", "full_name": "Ada"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let (s, p) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "ADA@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "nope", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "x@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s1, wrong) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "wrong-password"}),
        )
        .await;
    let (s2, unknown) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "who@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        wrong, unknown,
        "the same answer for unknown email and wrong password"
    );

    let (s, pair) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pair["token_type"], "bearer");
    assert!(pair["expires_in"].as_u64().unwrap() > 0);
    let access = pair["access_token"].as_str().unwrap();
    let (s, me) = app.get("/api/v1/auth/me", Some(access)).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );
    let anon = app
        .req(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anon.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (s, _) = app.get("/api/v1/auth/me", Some("not.a.jwt")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let old_refresh = pair["refresh_token"].as_str().unwrap();
    let (s, next) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let next_access = next["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(next_access)).await.0,
        StatusCode::OK
    );
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": old_refresh}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a dead token is refused");
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": next["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "reuse revoked the whole login");
    assert_eq!(
        app.get("/api/v1/auth/me", Some(next_access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (_, third) = app
        .json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "password123"}),
        )
        .await;
    let resp = app
        .req(Method::POST, "/api/v1/auth/logout")
        .json(&json!({"refresh_token": third["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (s, _) = app
        .json(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": third["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.server.stop().await.unwrap();
}

#[tokio::test]
async fn api_keys_and_ownership() {
    let app = app().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (s, created) = app
        .json(
            Method::POST,
            "/api/v1/api-keys",
            Some(&alice),
            json!({"name": "ci"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let key = created["key"].as_str().unwrap().to_string();
    let (s, listed) = app.get("/api/v1/api-keys", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(
        listed["items"][0].get("key").is_none(),
        "the secret is shown once"
    );
    assert!(!listed.to_string().contains(&key));

    let with_key = |path: &str| {
        app.req(Method::GET, path)
            .header("x-api-key", key.clone())
            .send()
    };
    let link = {
        let resp = app
            .req(Method::POST, "/api/v1/urls")
            .header("x-api-key", &key)
            .json(&json!({"original_url": "https://example.com/k"}))
            .send()
            .await
            .unwrap();
        decode(resp).await.1
    };
    let (s, page) = decode(with_key("/api/v1/urls").await.unwrap()).await;
    assert_eq!(
        (s, page["items"].as_array().unwrap().len()),
        (StatusCode::OK, 1),
        "the key acts as its owner"
    );
    let id = link["id"].as_str().unwrap();
    let code = link["short_code"].as_str().unwrap();

    assert_eq!(
        app.get(&format!("/api/v1/urls/{id}"), Some(&bob)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.json(
            Method::PATCH,
            &format!("/api/v1/urls/{id}"),
            Some(&bob),
            json!({"title": "mine"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/urls/{id}"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/analytics/{code}/summary"), Some(&bob))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let key_id = created["id"].as_str().unwrap();
    assert_eq!(
        app.req(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let del = app
        .req(Method::DELETE, &format!("/api/v1/api-keys/{key_id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let (s, _) = decode(with_key("/api/v1/urls").await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked at once");
    app.server.stop().await.unwrap();
}
