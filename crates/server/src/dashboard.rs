//! The dashboard under `/app/`: a small client of the public API, written as plain
//! ES modules with no build step, embedded in the binary. Nothing comes from elsewhere
//! at run time, and nothing but the server is needed to run it.
//!
//! Every file is compressed once (brotli and gzip) and sent with an `ETag`: browsers
//! revalidate (`no-cache`), so an upgrade is seen at once and an unchanged file costs a
//! `304`. Every answer carries a strict Content-Security-Policy: scripts, styles,
//! images and API calls from this origin only, no inline script or style, no framing.
//!
//! The dashboard holds its tokens in memory (never in storage or a cookie), so it has
//! no ambient credential a forged cross-site request could ride on, and no private
//! route: it can do exactly what the API lets its user do.

use crate::compress::{self, Encoding};
use crate::problem::Problem;
use poem::Response;
use poem::http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The policy of every dashboard answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// Where the dashboard lives.
pub const PREFIX: &str = "/app/";

macro_rules! files {
    ($($name:literal => $type:literal),* $(,)?) => {
        &[$(($name, $type, include_bytes!(concat!("../app/", $name)))),*]
    };
}

/// The files: name, content type, bytes.
static FILES: &[(&str, &str, &[u8])] = files! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "ui.js" => "text/javascript; charset=utf-8",
    "links.js" => "text/javascript; charset=utf-8",
    "rules.js" => "text/javascript; charset=utf-8",
    "detail.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "keys.js" => "text/javascript; charset=utf-8",
    "webhooks.js" => "text/javascript; charset=utf-8",
    "data.js" => "text/javascript; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
};

/// One file, ready to send.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
    plain: &'static [u8],
    brotli: Vec<u8>,
    gzip: Vec<u8>,
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, content_type, plain)| {
                let digest = Sha256::digest(plain);
                let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
                Asset {
                    name,
                    content_type,
                    etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header"),
                    plain,
                    brotli: compress::encode(plain, Encoding::Brotli),
                    gzip: compress::encode(plain, Encoding::Gzip),
                }
            })
            .collect()
    })
}

/// The answer to `GET|HEAD` of a dashboard path (`/app`, `/app/`, `/app/{file}`).
pub fn answer(path: &str, headers: &HeaderMap, encoding: Option<Encoding>) -> Response {
    let name = match path.strip_prefix(PREFIX) {
        None => {
            return secured(
                Response::builder()
                    .status(StatusCode::PERMANENT_REDIRECT)
                    .header(header::LOCATION, PREFIX)
                    .finish(),
            );
        }
        Some("") => "index.html",
        Some(name) => name,
    };
    let Some(asset) = assets().iter().find(|a| a.name == name) else {
        return secured(
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such dashboard file")
                .into_response_with(&[]),
        );
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let builder = Response::builder()
        .header(header::ETAG, asset.etag.clone())
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::VARY, "accept-encoding");
    if fresh {
        return secured(builder.status(StatusCode::NOT_MODIFIED).finish());
    }
    let builder = builder.content_type(asset.content_type);
    let resp = match encoding {
        Some(Encoding::Brotli) => builder
            .header(header::CONTENT_ENCODING, "br")
            .body(asset.brotli.clone()),
        Some(Encoding::Gzip) => builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(asset.gzip.clone()),
        None => builder.body(asset.plain),
    };
    secured(resp)
}

/// The headers every dashboard answer carries.
fn secured(mut resp: Response) -> Response {
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_an_asset_imports_is_served() {
        for &(name, _, bytes) in FILES {
            let text = std::str::from_utf8(bytes).unwrap();
            for line in text.lines() {
                let Some(from) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let module = from.split('"').next().unwrap();
                assert!(
                    FILES.iter().any(|f| f.0 == module),
                    "{name} imports {module}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn the_first_load_stays_small() {
        // Everything the browser fetches for the first screen, compressed as sent.
        let total: usize = assets().iter().map(|a| a.brotli.len()).sum();
        assert!(total < 150 * 1024, "{total} bytes");
    }

    #[test]
    fn no_file_uses_what_the_policy_forbids() {
        for &(name, _, bytes) in FILES {
            let text = std::str::from_utf8(bytes).unwrap();
            for forbidden in [
                "style=\"",
                "onclick=\"",
                "<script>",
                "eval(",
                "innerHTML",
                "localStorage",
                "sessionStorage",
                "document.cookie",
                "src=\"http",
                "href=\"http",
                "from \"http",
            ] {
                assert!(!text.contains(forbidden), "{name} uses {forbidden}");
            }
        }
    }
}
