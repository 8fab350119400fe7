//! The generated client against a running server: register, log in, shorten, follow the
//! short link, read the analytics.

use hoplink_example_client::{Client, Error, types};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::time::Duration;

fn http(headers: HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(headers)
        // A redirect is the answer under test, not something to follow.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn shorten_redirect_analytics_with_the_generated_client() {
    let config = hoplink_server::config::Config::from_args([
        "--bind",
        "127.0.0.1:0",
        "--analytics-flush-ms",
        "50",
    ])
    .unwrap();
    let server = hoplink_server::start(config).await.unwrap();
    let base = server.url();
    let anonymous = Client::new_with_client(&base, http(HeaderMap::new()));

    // The generated types check the document's rules (lengths, patterns) on the client.
    let credentials = types::RegisterBody {
        email: "generated@example.com".parse().unwrap(),
        full_name: Some("Generated Client".parse().unwrap()),
        password: "password123".parse().unwrap(),
    };
    assert!(
        "no-at-sign".parse::<types::RegisterBodyEmail>().is_err(),
        "the client refuses what the server would"
    );
    let user = anonymous.register(&credentials).await.unwrap().into_inner();
    assert_eq!(user.email, "generated@example.com");
    let tokens = anonymous
        .login(&types::LoginBody {
            email: "generated@example.com".parse().unwrap(),
            password: "password123".parse().unwrap(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tokens.token_type, "bearer");

    let mut headers = HeaderMap::new();
    let bearer = format!("Bearer {}", tokens.access_token);
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&bearer).unwrap());
    let me = Client::new_with_client(&base, http(headers));
    let link = me
        .create_link(&types::NewLinkBody {
            original_url: "https://example.com/generated".parse().unwrap(),
            custom_alias: None,
            domain: None,
            expires_at: None,
            forward_query: None,
            max_clicks: None,
            password: None,
            redirect_rules: None,
            redirect_type: None,
            tags: Some(vec!["generated".parse().unwrap()]),
            title: Some("From a generated client".parse().unwrap()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(link.short_url.ends_with(&link.short_code));

    for _ in 0..5 {
        // Generated clients treat 3xx as an unexpected (non-2xx) response: it carries the
        // status and headers.
        match anonymous
            .redirect_get(&link.short_code.parse().unwrap())
            .await
        {
            Err(Error::UnexpectedResponse(response)) => {
                assert_eq!(response.status(), 302);
                assert_eq!(
                    response.headers()["location"],
                    "https://example.com/generated"
                );
            }
            Ok(r) => panic!("expected a 302, got {}", r.status()),
            Err(e) => panic!("expected a 302, got {e}"),
        }
    }
    match anonymous
        .redirect_get(&"no-such-code".parse().unwrap())
        .await
    {
        Err(Error::ErrorResponse(problem)) => assert_eq!(problem.status(), 404),
        Err(Error::UnexpectedResponse(response)) => assert_eq!(response.status(), 404),
        Ok(r) => panic!("expected a 404, got {}", r.status()),
        Err(e) => panic!("expected a 404, got {e}"),
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let summary = loop {
        let summary = me
            .analytics_summary(
                &link.short_code.parse().unwrap(),
                Some(std::num::NonZeroU64::MIN),
                None,
            )
            .await
            .unwrap()
            .into_inner();
        if summary.total_clicks >= 5 || tokio::time::Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(summary.total_clicks, 5);
    assert_eq!(summary.short_code, link.short_code);
    server.stop().await.unwrap();
}
