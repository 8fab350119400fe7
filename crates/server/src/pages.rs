//! The plain pages of the route table: the OpenAPI document, its interactive docs and
//! `robots.txt`.

use crate::state::AppState;
use poem::Response;
use poem::http::header;

/// `GET /openapi.json`: the document, as committed in `openapi/openapi.json`.
pub fn openapi_json(state: &AppState) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(state.document.clone())
}

/// `GET /docs`: interactive documentation of the document.
pub fn docs(state: &AppState) -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(state.docs_html.clone())
}

/// `GET /robots.txt`: short links are not for search engines to index.
pub fn robots_txt(_: &AppState) -> Response {
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .body("User-agent: *\nDisallow: /\n")
}
