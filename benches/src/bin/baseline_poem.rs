//! The load test's second yardstick: bare poem answering `302` from a `HashMap`, the
//! framework hoplink's server is built on with nothing of hoplink's own.
//!
//! `baseline-poem <bind> <codes-file>`: each line of the file is `code url`. Beside
//! `baseline-hyper` it measures what the framework alone costs on the machine, so the
//! ratio of hoplink to bare hyper can be split into framework and hoplink's own work.

mod yardstick;

use poem::http::StatusCode;
use poem::{Endpoint, Request, Response};
use std::collections::HashMap;

struct Redirects(HashMap<String, String>);

impl Endpoint for Redirects {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let code = req.uri().path().trim_start_matches('/');
        Ok(match self.0.get(code) {
            Some(url) => Response::builder()
                .status(StatusCode::FOUND)
                .header("location", url.as_str())
                .finish(),
            None => StatusCode::NOT_FOUND.into(),
        })
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (bind, table) = yardstick::args_and_table("baseline-poem")?;
    eprintln!("baseline-poem on {bind} with {} codes", table.len());
    poem::Server::new(poem::listener::TcpListener::bind(bind))
        .run(Redirects(table))
        .await
}
