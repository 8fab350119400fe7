//! An application that embeds hoplink instead of running `hoplink-server`: its own poem
//! routes (`POST /links` to shorten, `GET /go/{code}` to redirect, `GET /links/{code}/clicks`
//! for a count), with the storage it chooses: PostgreSQL when `DATABASE_URL` is set,
//! memory otherwise.
//!
//! `cargo run -p hoplink-example-embed`, then
//! `curl -s localhost:3000/links -d '{"url":"https://example.com"}' -H 'content-type: application/json'`

use hoplink::{Error, NewLink, Principal, Shortener, Visit};
use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, handler};
use serde::Deserialize;
use std::sync::Arc;

/// The application owns every link it creates (hoplink's own accounts are not used).
fn owner() -> Principal {
    Principal {
        user_id: uuid::Uuid::from_u128(0x686f_706c_696e_6b00_0000_0000_0000_0001),
    }
}

#[derive(Deserialize)]
struct Shorten {
    url: String,
}

/// The application's own mapping of hoplink's errors.
fn error(e: Error) -> Response {
    let status = match &e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Gone { .. } => StatusCode::GONE,
        Error::Invalid { .. } | Error::Conflict { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string()).into_response()
}

#[handler]
async fn shorten(Data(s): Data<&Shortener>, Json(body): Json<Shorten>) -> Response {
    match s.shorten(NewLink::new(body.url), Some(&owner())).await {
        Ok(link) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"code": link.short_code, "short_url": s.link_url(&link)})),
        )
            .into_response(),
        Err(e) => error(e),
    }
}

#[handler]
async fn go(Data(s): Data<&Shortener>, Path(code): Path<String>, req: &poem::Request) -> Response {
    let visit = Visit {
        user_agent: req.header("user-agent"),
        referrer: req.header("referer"),
        client_ip: req.remote_addr().as_socket_addr().map(|a| a.ip()),
        count: true,
        ..Visit::default()
    };
    match s.resolve(&code, &visit).await {
        Ok(redirect) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", redirect.location())
            .finish(),
        Err(e) => error(e),
    }
}

#[handler]
async fn clicks(Data(s): Data<&Shortener>, Path(code): Path<String>) -> Response {
    match s.analytics_summary(&owner(), None, &code, 30).await {
        Ok(summary) => {
            Json(serde_json::json!({"code": code, "clicks": summary.total_clicks})).into_response()
        }
        Err(e) => error(e),
    }
}

/// The application's routes over a shortener.
fn app(shortener: Shortener) -> impl poem::Endpoint {
    Route::new()
        .at("/links", poem::post(shorten))
        .at("/go/:code", poem::get(go))
        .at("/links/:code/clicks", poem::get(clicks))
        .data(shortener)
}

async fn shortener() -> hoplink::Result<Shortener> {
    let mut builder = Shortener::builder().base_url("http://localhost:3000/go");
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let store = Arc::new(hoplink_postgres::PgStore::connect(&url).await?);
        builder = builder.store(store.clone()).id_allocator(store);
    }
    builder.build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shortener = shortener().await?;
    let server = poem::Server::new(poem::listener::TcpListener::bind("127.0.0.1:3000"));
    server
        .run_with_graceful_shutdown(
            app(shortener.clone()),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await?;
    // Publishes and records the buffered clicks before exiting.
    shortener.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::test::TestClient;

    #[tokio::test]
    async fn shorten_redirect_and_count() {
        let shortener = Shortener::builder()
            .base_url("http://localhost:3000/go")
            .build()
            .unwrap();
        let client = TestClient::new(app(shortener.clone()));
        let created = client
            .post("/links")
            .body_json(&serde_json::json!({"url": "https://example.com/embedded"}))
            .send()
            .await;
        created.assert_status(StatusCode::CREATED);
        let body: serde_json::Value = created.json().await.value().deserialize();
        let code = body["code"].as_str().unwrap().to_string();
        assert_eq!(
            body["short_url"],
            format!("http://localhost:3000/go/{code}")
        );
        for _ in 0..3 {
            let r = client
                .get(format!("/go/{code}"))
                .header(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                )
                .send()
                .await;
            r.assert_status(StatusCode::FOUND);
            r.assert_header("location", "https://example.com/embedded");
        }
        client
            .get("/go/nope123")
            .send()
            .await
            .assert_status(StatusCode::NOT_FOUND);
        client
            .post("/links")
            .body_json(&serde_json::json!({"url": "ftp://example.com"}))
            .send()
            .await
            .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        shortener.shutdown().await;
        let count = client.get(format!("/links/{code}/clicks")).send().await;
        count.assert_status_is_ok();
        count
            .assert_json(serde_json::json!({"code": code, "clicks": 3}))
            .await;
    }
}
