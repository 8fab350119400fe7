//! The route table: every path the server answers, with its methods, the error statuses
//! each operation documents, its rate-limit scope and who handles it. Everything else
//! follows from it: metric labels, the `Allow` header of 405 answers, CORS preflights,
//! the reserved top-level names no alias may take, the error responses of the OpenAPI
//! document, and which requests take the redirect fast path.
//!
//! The API handlers' `#[oai(path)]` attributes must name the same paths (poem-openapi
//! wants literals there); a test holds the table and the served document together.

use crate::pages;
use crate::state::AppState;
use poem::http::Method;

/// Who answers a route.
#[derive(Clone, Copy)]
pub enum Handler {
    /// `GET|HEAD /{short_code}`: answered from hyper's request, the hot path; `POST`:
    /// a password form.
    Redirect,
    /// `GET|HEAD /{short_code}+`: a link's preview page.
    Preview,
    /// `GET /`: the domain's root redirect.
    Root,
    /// An operation of the OpenAPI service (poem-openapi).
    Api,
    /// A plain page answered from hyper's request.
    Page(fn(&AppState) -> poem::Response),
    /// The dashboard's files (`/app/…`), answered from hyper's request.
    Dashboard,
}

impl Handler {
    /// Whether the OpenAPI document describes the route (pages and the dashboard are
    /// for browsers, not API clients).
    pub fn documented(&self) -> bool {
        !matches!(self, Handler::Page(_) | Handler::Dashboard)
    }
}

/// Which rate limit a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// None (health, metrics, pages).
    Unlimited,
    /// The redirect flood guard, per client address.
    Redirect,
    /// The API limits: per user when authenticated, per client address otherwise.
    Api,
    /// Registrations, per client address.
    Register,
    /// Logins, per client address.
    Login,
}

/// What one request of a route counts against its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// One request.
    One,
    /// One per element of the body's `items` (a bulk request is as many requests).
    PerItem,
}

/// One method of a route: what it may answer besides its success.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The method.
    pub method: Method,
    /// Error statuses the operation documents (each with a problem document).
    pub errors: &'static [u16],
}

/// One path of the server.
#[derive(Clone, Copy)]
pub struct Route {
    /// OpenAPI-style template: literal segments and `{parameters}`.
    pub path: &'static str,
    /// Its methods.
    pub operations: &'static [Operation],
    /// Rate limit.
    pub scope: Scope,
    /// What a request counts against it.
    pub cost: Cost,
    /// The largest body it reads (413 past it).
    pub max_body: usize,
    /// Whether presented credentials are checked (a stale token must not stop a login).
    pub credentials: bool,
    /// Who answers.
    pub handler: Handler,
}

const fn op(method: Method, errors: &'static [u16]) -> Operation {
    Operation { method, errors }
}

/// Every route. The redirect is first: its index is [`REDIRECT`].
///
/// Error statuses: 400 malformed JSON, 401 credentials missing or wrong, 404 no such
/// resource (or not yours), 409 taken, 413 body too large, 415 not JSON, 422 a value
/// breaks a rule, 429 rate limited, 503 a backend is away.
pub static ROUTES: &[Route] = &[
    Route {
        path: "/{short_code}",
        operations: &[
            op(Method::GET, &[401, 404, 410, 429, 503]),
            op(Method::HEAD, &[401, 404, 410, 429, 503]),
            op(Method::POST, &[401, 404, 410, 413, 415, 429, 503]),
        ],
        scope: Scope::Redirect,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Redirect,
    },
    Route {
        path: "/{short_code}+",
        operations: &[
            op(Method::GET, &[404, 410, 429, 503]),
            op(Method::HEAD, &[404, 410, 429, 503]),
        ],
        scope: Scope::Redirect,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Preview,
    },
    Route {
        path: "/api/v1/urls",
        operations: &[
            op(Method::GET, &[401, 422, 429, 503]),
            op(Method::POST, &[400, 401, 409, 413, 415, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/urls/bulk",
        operations: &[op(Method::POST, &[400, 401, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::PerItem,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/urls/export",
        operations: &[op(Method::GET, &[401, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/urls/import",
        operations: &[op(Method::POST, &[401, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: hoplink::transfer::MAX_IMPORT_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/urls/{id}",
        operations: &[
            op(Method::GET, &[401, 404, 422, 429, 503]),
            op(Method::PATCH, &[400, 401, 404, 413, 415, 422, 429, 503]),
            op(Method::DELETE, &[401, 404, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/analytics/{short_code}/summary",
        operations: &[op(Method::GET, &[401, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/analytics/{short_code}/clicks",
        operations: &[op(Method::GET, &[401, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/qr",
        operations: &[op(Method::POST, &[400, 401, 404, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/qr/{short_code}",
        operations: &[op(Method::GET, &[401, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/auth/register",
        operations: &[op(Method::POST, &[400, 409, 413, 415, 422, 429, 503])],
        scope: Scope::Register,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/auth/login",
        operations: &[op(Method::POST, &[400, 401, 413, 415, 422, 429, 503])],
        scope: Scope::Login,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/auth/refresh",
        operations: &[op(Method::POST, &[400, 401, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/auth/logout",
        operations: &[op(Method::POST, &[400, 401, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/auth/me",
        operations: &[op(Method::GET, &[401, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/api-keys",
        operations: &[
            op(Method::GET, &[401, 429, 503]),
            op(Method::POST, &[400, 401, 413, 415, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/api-keys/{id}",
        operations: &[op(Method::DELETE, &[401, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/webhooks",
        operations: &[
            op(Method::GET, &[401, 429, 503]),
            op(Method::POST, &[400, 401, 413, 415, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/webhooks/{id}",
        operations: &[
            op(Method::PATCH, &[400, 401, 404, 413, 415, 422, 429, 503]),
            op(Method::DELETE, &[401, 404, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/webhooks/{id}/deliveries",
        operations: &[op(Method::GET, &[401, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/domains",
        operations: &[
            op(Method::GET, &[401, 429, 503]),
            op(Method::POST, &[400, 401, 403, 409, 413, 415, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/domains/{host}",
        operations: &[
            op(
                Method::PATCH,
                &[400, 401, 403, 404, 413, 415, 422, 429, 503],
            ),
            op(Method::DELETE, &[401, 403, 404, 409, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/links",
        operations: &[op(Method::GET, &[401, 403, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/links/{id}",
        operations: &[op(
            Method::PATCH,
            &[400, 401, 403, 404, 413, 415, 422, 429, 503],
        )],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/blocklist",
        operations: &[
            op(Method::GET, &[401, 403, 429, 503]),
            op(Method::POST, &[400, 401, 403, 409, 413, 415, 422, 429, 503]),
        ],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/blocklist/{id}",
        operations: &[op(Method::DELETE, &[401, 403, 404, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/reports",
        operations: &[op(Method::POST, &[400, 401, 404, 413, 415, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/reports",
        operations: &[op(Method::GET, &[401, 403, 422, 429, 503])],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/api/v1/admin/reports/{id}",
        operations: &[op(
            Method::PATCH,
            &[400, 401, 403, 404, 413, 415, 422, 429, 503],
        )],
        scope: Scope::Api,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: true,
        handler: Handler::Api,
    },
    Route {
        path: "/",
        operations: &[op(Method::GET, &[404, 503]), op(Method::HEAD, &[404, 503])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Root,
    },
    Route {
        path: "/api/v1/health",
        operations: &[op(Method::GET, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/metrics",
        operations: &[op(Method::GET, &[401])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Api,
    },
    Route {
        path: "/openapi.json",
        operations: &[op(Method::GET, &[]), op(Method::HEAD, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Page(pages::openapi_json),
    },
    Route {
        path: "/docs",
        operations: &[op(Method::GET, &[]), op(Method::HEAD, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Page(pages::docs),
    },
    Route {
        path: "/robots.txt",
        operations: &[op(Method::GET, &[]), op(Method::HEAD, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Page(pages::robots_txt),
    },
    Route {
        path: "/app",
        operations: &[op(Method::GET, &[]), op(Method::HEAD, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Dashboard,
    },
    Route {
        path: "/app/",
        operations: &[op(Method::GET, &[]), op(Method::HEAD, &[])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Dashboard,
    },
    Route {
        path: "/app/{file}",
        operations: &[op(Method::GET, &[404]), op(Method::HEAD, &[404])],
        scope: Scope::Unlimited,
        cost: Cost::One,
        max_body: crate::MAX_BODY_BYTES,
        credentials: false,
        handler: Handler::Dashboard,
    },
];

/// Index of the redirect route in [`ROUTES`].
pub const REDIRECT: usize = 0;
/// Index of the preview (`/{short_code}+`) in [`ROUTES`].
pub const PREVIEW: usize = 1;

/// The metric label of requests that match no route.
pub const OTHER_LABEL: &str = "other";

impl Route {
    /// Whether the route has `method`.
    pub fn allows(&self, method: &Method) -> bool {
        self.operations.iter().any(|o| o.method == *method)
    }

    /// The `Allow` header value: the route's methods.
    pub fn allow_header(&self) -> String {
        let methods: Vec<&str> = self.operations.iter().map(|o| o.method.as_str()).collect();
        methods.join(", ")
    }

    /// The operation of `method`.
    pub fn operation(&self, method: &Method) -> Option<&Operation> {
        self.operations.iter().find(|o| o.method == *method)
    }

    /// Names of the template's parameters, in order.
    pub fn parameters(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    fn matches(&self, path: &str) -> bool {
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

/// The route a one-segment path that is a code takes: the preview (`code+`) or the
/// redirect.
fn code_route(rest: &str) -> usize {
    if rest.len() > 1 && rest.ends_with('+') {
        PREVIEW
    } else {
        REDIRECT
    }
}

/// What the table says of the one-segment path `/rest`: `Some(Some(i))` for route
/// `i`'s own page, `Some(None)` for the first segment of a longer route (`/api`, no
/// route), `None` when no route begins with it (a code).
fn segment_route(rest: &str) -> Option<Option<usize>> {
    for (i, route) in ROUTES.iter().enumerate() {
        let Some(tail) = route.path[1..].strip_prefix(rest) else {
            continue;
        };
        if tail.is_empty() {
            return Some(Some(i));
        }
        if tail.starts_with('/') {
            return Some(None);
        }
    }
    None
}

/// The route of `path` (its index in [`ROUTES`]); `None` for no route (404).
///
/// A path of one segment that names no route of its own is a short code: that check
/// compares the few top-level names and allocates nothing, since every redirect runs it
/// (scanning the whole table instead cost 1,500 instructions a redirect).
pub fn find(path: &str) -> Option<usize> {
    let rest = path.strip_prefix('/')?;
    if !rest.contains('/') {
        if rest.is_empty() {
            return ROUTES.iter().position(|r| r.path == "/");
        }
        if !top_level_names().contains(&rest) {
            return Some(code_route(rest));
        }
        // Every top-level name begins some route, so the scan decides.
        return segment_route(rest).flatten();
    }
    ROUTES.iter().position(|r| r.matches(path))
}

/// [`reserved_names`], worked out once.
fn top_level_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(reserved_names)
}

/// Top-level names of the routes (`api`, `docs`, …): no short code may be one of them.
pub fn reserved_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ROUTES
        .iter()
        .filter_map(|r| {
            let first = r.path[1..].split('/').next()?;
            (!first.is_empty() && !first.starts_with('{')).then_some(first)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The metric label of a route index (`None`: no route).
pub fn label(index: Option<usize>) -> &'static str {
    index.map_or(OTHER_LABEL, |i| ROUTES[i].path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_routes() {
        let path_of = |p: &str| find(p).map(|i| ROUTES[i].path);
        assert_eq!(find("/abc1234"), Some(REDIRECT));
        assert_eq!(find("/my-alias"), Some(REDIRECT));
        assert_eq!(path_of("/docs"), Some("/docs"));
        assert_eq!(path_of("/robots.txt"), Some("/robots.txt"));
        assert_eq!(path_of("/app"), Some("/app"));
        assert_eq!(path_of("/app/"), Some("/app/"));
        assert_eq!(path_of("/app/app.js"), Some("/app/{file}"));
        assert_eq!(path_of("/api/v1/urls"), Some("/api/v1/urls"));
        assert_eq!(path_of("/api/v1/urls/bulk"), Some("/api/v1/urls/bulk"));
        assert_eq!(path_of("/api/v1/urls/0190-x"), Some("/api/v1/urls/{id}"));
        assert_eq!(path_of("/api/v1/urls/export"), Some("/api/v1/urls/export"));
        assert_eq!(path_of("/api/v1/urls/import"), Some("/api/v1/urls/import"));
        assert_eq!(
            path_of("/api/v1/analytics/abc/summary"),
            Some("/api/v1/analytics/{short_code}/summary")
        );
        assert_eq!(path_of("/"), Some("/"));
        assert_eq!(
            path_of("/api/v1/domains/go.example.com"),
            Some("/api/v1/domains/{host}")
        );
        for none in [
            "",
            "/api",
            "/api/v1/urls/",
            "/a/b",
            "/api/v1/auth/evil",
            "/docs/x",
            "/app/a/b",
        ] {
            assert_eq!(find(none), None, "{none}");
        }
    }

    #[test]
    fn one_segment_paths_match_a_scan_of_the_whole_table() {
        // What `find` answered before it looked at the top-level names first.
        let scan = |rest: &str| segment_route(rest).unwrap_or(Some(code_route(rest)));
        let mut candidates = vec!["a".to_string(), "+".into(), "abc+".into(), "v1".into()];
        for name in reserved_names() {
            for end in 1..=name.len() {
                candidates.push(name[..end].to_string());
                candidates.push(format!("{}+", &name[..end]));
                candidates.push(format!("{}x", &name[..end]));
            }
        }
        for rest in candidates {
            assert_eq!(find(&format!("/{rest}")), scan(&rest), "/{rest}");
        }
    }

    #[test]
    fn reserved_names_are_the_top_level_literals() {
        assert_eq!(
            reserved_names(),
            [
                "api",
                "app",
                "docs",
                "metrics",
                "openapi.json",
                "robots.txt"
            ]
        );
    }

    #[test]
    fn every_route_lists_methods_once() {
        for route in ROUTES {
            let mut methods: Vec<&str> =
                route.operations.iter().map(|o| o.method.as_str()).collect();
            assert!(!methods.is_empty(), "{}", route.path);
            methods.sort_unstable();
            let before = methods.len();
            methods.dedup();
            assert_eq!(before, methods.len(), "{}", route.path);
        }
        assert_eq!(ROUTES[REDIRECT].path, "/{short_code}");
        assert_eq!(ROUTES[REDIRECT].allow_header(), "GET, HEAD, POST");
        assert_eq!(ROUTES[PREVIEW].path, "/{short_code}+");
        assert_eq!(find("/launch+"), Some(PREVIEW));
        assert_eq!(find("/+"), Some(REDIRECT), "a lone + is no code's preview");
    }
}
