//! Compressed answers for clients that accept them: gzip or brotli for the pages (the
//! interactive docs are 1.8 MB of script, compressed once and kept), gzip for API JSON of
//! 1 KiB or more. Redirects are never compressed: they have no body worth it.

use poem::Response;
use poem::http::{HeaderMap, HeaderValue, header};
use std::io::Write as _;

/// An encoding both sides speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `br`.
    Brotli,
    /// `gzip`.
    Gzip,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Smallest body worth compressing.
const MIN_BYTES: usize = 1024;

/// What `Accept-Encoding` allows: brotli when `br` is welcome and allowed here, else gzip.
pub fn negotiate(headers: &HeaderMap, brotli: bool) -> Option<Encoding> {
    let accepted = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let welcome = |token: &str| {
        accepted.split(',').any(|part| {
            let mut pieces = part.split(';');
            let name = pieces.next().unwrap_or_default().trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case(token) && !refused
        })
    };
    if brotli && welcome("br") {
        Some(Encoding::Brotli)
    } else if welcome("gzip") {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// `bytes` compressed with `encoding`.
pub fn encode(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(bytes);
            gz.finish().unwrap_or_default()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 9,
                ..Default::default()
            };
            let _ = brotli::BrotliCompress(&mut &bytes[..], &mut out, &params);
            out
        }
    }
}

fn compressible(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::CONTENT_ENCODING)
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.starts_with("application/json")
                    || t.starts_with("application/problem+json")
                    // CSV exports stream page by page; compressing here would buffer them.
                    || (t.starts_with("text/") && !t.starts_with("text/csv"))
                    || t.starts_with("image/svg+xml")
            })
}

/// A body already compressed (a page's, made once), sent as is.
pub fn precompressed(
    mut resp: Response,
    body: impl Into<poem::Body>,
    encoding: Encoding,
) -> Response {
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(encoding.token()),
    );
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.remove(header::CONTENT_LENGTH);
    resp.set_body(body);
    resp
}

/// A page's answer compressed, from `cache` (a page's body never changes while the
/// server runs, so each is compressed once per encoding).
pub async fn page(
    resp: Response,
    route: &'static str,
    encoding: Encoding,
    cache: &std::sync::Mutex<
        std::collections::HashMap<(&'static str, Encoding), hyper::body::Bytes>,
    >,
) -> Response {
    let cached = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(route, encoding))
        .cloned();
    if let Some(body) = cached {
        return precompressed(resp, body, encoding);
    }
    let compressed = response(resp, encoding).await;
    if compressed.headers().contains_key(header::CONTENT_ENCODING) {
        let (parts, body) = compressed.into_parts();
        let bytes = body.into_bytes().await.unwrap_or_default();
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((route, encoding), bytes.clone());
        let mut resp = Response::from_parts(parts, poem::Body::empty());
        resp.set_body(bytes);
        return resp;
    }
    compressed
}

/// `resp` with its body compressed, when it is worth it.
pub async fn response(resp: Response, encoding: Encoding) -> Response {
    if !compressible(resp.headers()) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.into_bytes().await else {
        return Response::from_parts(parts, poem::Body::empty());
    };
    let mut resp = Response::from_parts(parts, poem::Body::empty());
    if bytes.len() < MIN_BYTES {
        resp.set_body(bytes);
        return resp;
    }
    let compressed = encode(&bytes, encoding);
    precompressed(resp, compressed, encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn negotiates_what_the_client_accepts() {
        assert_eq!(
            negotiate(&accept("gzip, deflate, br"), true),
            Some(Encoding::Brotli)
        );
        assert_eq!(
            negotiate(&accept("gzip, deflate, br"), false),
            Some(Encoding::Gzip)
        );
        assert_eq!(
            negotiate(&accept("br;q=0, gzip"), true),
            Some(Encoding::Gzip)
        );
        assert_eq!(negotiate(&accept("identity"), true), None);
        assert_eq!(negotiate(&HeaderMap::new(), true), None);
    }

    #[test]
    fn round_trips() {
        let text = "hoplink ".repeat(1000);
        let gz = encode(text.as_bytes(), Encoding::Gzip);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
        let br = encode(text.as_bytes(), Encoding::Brotli);
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, text.as_bytes());
        assert!(gz.len() < text.len() / 10 && br.len() < text.len() / 10);
    }
}
