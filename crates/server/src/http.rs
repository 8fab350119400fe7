//! The HTTP helpers around the routes: request ids, client addresses, rate-limit
//! headers, and the API layer ([`ApiGuard`]): body limit, authentication, rate limits.

use crate::problem::{Problem, Refused, ceil_secs, problem_of, problem_response_of_poem_error};
use crate::routes::{Cost, Scope};
use crate::serve::Matched;
use crate::state::AppState;
use hoplink::{LimitScope, RateLimitDecision};
use hyper::body::Bytes;
use ipnet::IpNet;
use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

/// Request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The token of an `Authorization: Bearer` value.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh request id: 32 hex digits, a random prefix of the thread's and the thread's
/// own counter (unique without a system call per request, unlike a random UUID, and
/// without a counter that every core writes, whose cache line would travel between
/// them on every request).
pub(crate) fn new_request_id() -> HeaderValue {
    use std::cell::Cell;
    // By hand: the formatting machinery cost more than the rest of this function.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    fn hex_into(word: u64, out: &mut [u8]) {
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = DIGITS[((word >> (60 - 4 * i)) & 0xf) as usize];
        }
    }
    thread_local! {
        static PREFIX: [u8; 16] = {
            let mut digits = [0u8; 16];
            hex_into(uuid::Uuid::new_v4().as_u64_pair().0, &mut digits);
            digits
        };
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        n
    });
    let mut text = [0u8; 32];
    PREFIX.with(|prefix| text[..16].copy_from_slice(prefix));
    hex_into(n, &mut text[16..]);
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

pub(crate) fn valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The client address: the socket peer, or, when the peer is a trusted proxy, the
/// rightmost `X-Forwarded-For` address that is not a trusted proxy.
pub fn client_ip(req: &Request, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
    Some(resolve_client(peer, req.headers(), trusted))
}

/// [`client_ip`] once the peer is known.
pub fn resolve_client(peer: IpAddr, headers: &poem::http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>().map(canonical) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An IP address as text without allocating (the flood guard runs on every redirect).
pub fn ip_text(ip: IpAddr) -> hoplink::StackString<48> {
    let mut text = hoplink::StackString::new();
    match ip {
        // By hand for IPv4, nearly every client, into one buffer checked once: `Display`
        // (and a check per octet) cost more than the flood guard's look-up.
        IpAddr::V4(v4) => {
            let mut bytes = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    bytes[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    bytes[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    bytes[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                bytes[len] = b'0' + octet % 10;
                len += 1;
            }
            text = hoplink::StackString::truncated(
                std::str::from_utf8(&bytes[..len]).unwrap_or("0.0.0.0"),
            );
        }
        IpAddr::V6(_) => {
            let _ = write!(text, "{ip}");
        }
    }
    text
}

pub(crate) const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub(crate) const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub(crate) const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds the `RateLimit-*` headers of a decision.
pub fn add_rate_limit_headers(resp: &mut Response, d: &RateLimitDecision) {
    let headers = resp.headers_mut();
    let [limit, remaining, reset] = rate_limit_values(d);
    headers.insert(RATELIMIT_LIMIT, limit);
    headers.insert(RATELIMIT_REMAINING, remaining);
    headers.insert(RATELIMIT_RESET, reset);
}

/// The values of `RateLimit-Limit`, `-Remaining` and `-Reset` for a decision.
pub(crate) fn rate_limit_values(d: &RateLimitDecision) -> [HeaderValue; 3] {
    [
        limit_value(d.limit),
        number_value(u64::from(d.remaining)),
        number_value(ceil_secs(d.reset_after)),
    ]
}

/// Numbers below this are header values made once ([`number_value`]).
const SMALL_NUMBERS: u64 = 4096;

/// `n` as a header value. Every redirect carries three numbers; formatting each into a
/// fresh allocation was a tenth of the redirect module's instructions. Small ones (a
/// quota's limit, what remains of it, seconds to its reset) are made once, as static
/// text, so a clone copies two pointers.
pub(crate) fn number_value(n: u64) -> HeaderValue {
    use std::sync::LazyLock;
    static SMALL: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(SMALL_NUMBERS as usize);
        for n in 0..SMALL_NUMBERS {
            let _ = write!(text, "{n}");
            ends.push(text.len());
        }
        // Made once per process and kept for its life.
        let text: &'static str = Box::leak(text.into_boxed_str());
        let mut start = 0;
        ends.into_iter()
            .map(|end| {
                let value = HeaderValue::from_static(&text[start..end]);
                start = end;
                value
            })
            .collect()
    });
    if n < SMALL_NUMBERS {
        SMALL[n as usize].clone()
    } else {
        HeaderValue::from(n)
    }
}

/// A quota's limit as a header value: [`number_value`], and for a limit above the small
/// numbers the thread's last one again (a server has a handful of quotas).
fn limit_value(limit: u32) -> HeaderValue {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<Option<(u32, HeaderValue)>> = const { RefCell::new(None) };
    }
    if u64::from(limit) < SMALL_NUMBERS {
        return number_value(u64::from(limit));
    }
    LAST.with_borrow_mut(|last| match last {
        Some((n, value)) if *n == limit => value.clone(),
        _ => {
            let value = HeaderValue::from(limit);
            *last = Some((limit, value.clone()));
            value
        }
    })
}

/// The 429 answer of a refused decision.
pub fn too_many_requests(d: &RateLimitDecision) -> Response {
    let retry = ceil_secs(d.retry_after.unwrap_or_default()).max(1);
    let mut resp = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry after {retry} s"),
    )
    .into_response_with(&[("retry-after", retry.to_string())]);
    add_rate_limit_headers(&mut resp, d);
    resp
}

/// The API layer: reads the body (within the route's `max_body`), authenticates
/// presented credentials once (handlers' security schemes read the result), applies the
/// route's rate limit, and turns what poem refused into precise problem documents.
pub struct ApiGuard<E> {
    pub(crate) inner: E,
    pub(crate) state: Arc<AppState>,
}

impl<E: Endpoint> Endpoint for ApiGuard<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let Some(Matched(route)) = req.extensions().get::<Matched>().copied() else {
            return Ok(
                Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
                    .into_response_with(&[]),
            );
        };
        let body = match read_body(&mut req, route.max_body).await {
            Ok(body) => body,
            Err(resp) => return Ok(resp),
        };
        let shortener = &self.state.shortener;
        let mut principal = None;
        if route.credentials {
            match authenticate(shortener, req.headers()).await {
                Ok(p) => principal = p,
                Err(resp) => return Ok(resp),
            }
        }
        if let Some(p) = principal {
            req.extensions_mut().insert(p);
        }
        let ip = || {
            client_ip(&req, &self.state.config.trusted_proxies)
                .map_or_else(|| "unknown".to_string(), |ip| ip.to_string())
        };
        let limited = match route.scope {
            Scope::Unlimited | Scope::Redirect => None,
            Scope::Register => Some((LimitScope::Register, ip())),
            Scope::Login => Some((LimitScope::Login, ip())),
            Scope::Api => Some(match principal {
                Some(p) => (LimitScope::Authenticated, p.user_id.to_string()),
                None => (LimitScope::Anonymous, ip()),
            }),
        };
        let cost = match route.cost {
            Cost::One => 1,
            Cost::PerItem => items_in(&body),
        };
        let decision = match limited {
            None => None,
            Some((scope, subject)) => {
                match shortener.check_rate_limit_cost(scope, &subject, cost).await {
                    Ok(decision) => decision,
                    Err(e) => {
                        // Fail open: a limiter outage must not take the API down with it.
                        tracing::warn!(error = %e, "rate limiter unavailable; allowing the request");
                        None
                    }
                }
            }
        };
        if let Some(d) = &decision
            && !d.allowed
        {
            self.state.metrics.rate_limited();
            return Ok(too_many_requests(d));
        }
        let method = req.method().clone();
        let query = req.uri().query().unwrap_or_default().to_string();
        let mut resp = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => {
                let refused = Refused {
                    document: &self.state.spec,
                    template: route.path,
                    method: &method,
                    query: &query,
                    body: &body,
                };
                problem_response_of_poem_error(error, Some(&refused))
            }
        };
        if let Some(d) = &decision {
            add_rate_limit_headers(&mut resp, d);
        }
        Ok(resp)
    }
}

/// How many `items` a bulk body has (at least 1: a body without them is refused later,
/// and still counts as a request).
fn items_in(body: &[u8]) -> u32 {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Items>(body).map_or(1, |b| {
        u32::try_from(b.items.len()).unwrap_or(u32::MAX).max(1)
    })
}

/// Reads the whole body, refusing one past the route's `limit` with 413 (by its
/// `Content-Length` before reading, or while reading a chunked one), and puts it back
/// for the handler.
async fn read_body(req: &mut Request, limit: usize) -> Result<Bytes, Response> {
    use tokio::io::AsyncReadExt;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies of this route are limited to {limit} bytes"),
        )
        .into_response_with(&[])
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut reader = req.take_body().into_async_read().take(limit as u64 + 1);
    let mut bytes = Vec::new();
    match reader.read_to_end(&mut bytes).await {
        Ok(_) if bytes.len() > limit => Err(too_large()),
        Ok(_) => {
            let bytes = Bytes::from(bytes);
            req.set_body(bytes.clone());
            Ok(bytes)
        }
        Err(_) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request body could not be read",
        )
        .into_response_with(&[])),
    }
}

/// The principal of the presented credentials (`Ok(None)` when none are presented), or
/// the 401 answer.
async fn authenticate(
    shortener: &hoplink::Shortener,
    headers: &poem::http::HeaderMap,
) -> Result<Option<hoplink::Principal>, Response> {
    let authorization = headers.get("authorization").map(|v| v.to_str());
    let api_key = headers.get("x-api-key").map(|v| v.to_str());
    let outcome = match (authorization, api_key) {
        (Some(Ok(value)), _) => match bearer_token(value) {
            Some(token) => shortener.authenticate_bearer(token).await,
            None => Err(hoplink::Error::Unauthorized {
                reason: "unsupported scheme",
            }),
        },
        (None, Some(Ok(key))) => shortener.authenticate_api_key(key.trim()).await,
        (Some(Err(_)), _) | (None, Some(Err(_))) => Err(hoplink::Error::Unauthorized {
            reason: "unreadable credentials",
        }),
        (None, None) => return Ok(None),
    };
    outcome.map(Some).map_err(|e| {
        let problem = problem_of(&e);
        let extra = if problem.status == 401 {
            vec![(
                "WWW-Authenticate",
                crate::problem::WWW_AUTHENTICATE.to_string(),
            )]
        } else {
            Vec::new()
        };
        problem.into_response_with(&extra)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_values_read_as_the_numbers() {
        for n in [
            0,
            1,
            9,
            10,
            599,
            600,
            4095,
            4096,
            4097,
            1_000_000_000,
            u64::MAX,
        ] {
            assert_eq!(number_value(n).to_str().unwrap(), n.to_string());
        }
        for limit in [
            1,
            600,
            4096,
            1_000_000_000,
            1_000_000_000,
            7_000_000,
            u32::MAX,
        ] {
            assert_eq!(limit_value(limit).to_str().unwrap(), limit.to_string());
        }
    }

    #[test]
    fn ip_text_writes_addresses_as_display_does() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "255.255.255.255",
            "203.0.113.45",
            "2001:db8::1",
            "::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip).as_str(), ip.to_string());
        }
    }

    #[test]
    fn generated_request_ids_are_32_hex_digits_and_distinct() {
        let (a, b) = (new_request_id(), new_request_id());
        for id in [&a, &b] {
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), 32);
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_eq!(
            a.as_bytes()[..16],
            b.as_bytes()[..16],
            "one prefix per thread"
        );
        let counter = |id: &HeaderValue| u64::from_str_radix(&id.to_str().unwrap()[16..], 16);
        assert!(counter(&b).unwrap() > counter(&a).unwrap());
        // Threads count on their own, under prefixes of their own.
        let ids: std::collections::HashSet<Vec<u8>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .map(|_| new_request_id().as_bytes().to_vec())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(ids.len(), 4000, "ids are distinct across threads");
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |peer: &str, xff: Option<&str>| {
            let mut headers = poem::http::HeaderMap::new();
            if let Some(x) = xff {
                headers.insert("x-forwarded-for", x.parse().unwrap());
            }
            resolve_client(peer.parse().unwrap(), &headers, &trusted).to_string()
        };
        assert_eq!(
            ip("203.0.113.5", Some("1.2.3.4")),
            "203.0.113.5",
            "untrusted peer: header ignored"
        );
        assert_eq!(ip("10.0.0.1", Some("1.2.3.4")), "1.2.3.4");
        assert_eq!(
            ip("10.0.0.1", Some("6.6.6.6, 1.2.3.4, 10.0.0.7")),
            "1.2.3.4",
            "rightmost untrusted hop"
        );
        assert_eq!(ip("10.0.0.1", None), "10.0.0.1");
        assert_eq!(ip("10.0.0.1", Some("garbage")), "10.0.0.1");
    }

    #[test]
    fn helpers() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"a", b"ab")
        );
        assert_eq!(
            ip_text("2001:db8::1".parse().unwrap()).as_str(),
            "2001:db8::1"
        );
    }
}
