//! The HTML pages visitors see on a short link's own paths: the password form, the
//! preview, and what these paths answer when the link is unknown or gone. Small pages
//! that read well on a phone, with no script at all and a Content-Security-Policy that
//! allows only their one stylesheet (by its hash) and a form posting to the same origin.

use base64::Engine as _;
use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::LazyLock;

const STYLE: &str = "body{font:1.05rem/1.5 system-ui,sans-serif;margin:0;padding:1.5rem;color:#1d1d1f;background:#fafafa}main{max-width:32rem;margin:2rem auto;background:#fff;border:1px solid #ddd;border-radius:.75rem;padding:1.5rem}h1{font-size:1.35rem;margin:0 0 1rem}label{display:block;font-weight:600;margin-bottom:.35rem}input{font:inherit;width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #888;border-radius:.4rem}button,a.go{display:inline-block;font:inherit;margin-top:1rem;padding:.6rem 1.2rem;border:0;border-radius:.4rem;background:#0b57d0;color:#fff;text-decoration:none;cursor:pointer}:focus-visible{outline:3px solid #e8710a;outline-offset:2px}.error{color:#b3261e;font-weight:600}.url{word-break:break-all;font-family:ui-monospace,monospace;background:#f1f3f4;padding:.5rem;border-radius:.3rem}@media (prefers-color-scheme:dark){body{background:#121212;color:#e8e8e8}main{background:#1e1e1e;border-color:#333}.url{background:#2a2a2a}input{background:#121212;color:#e8e8e8}}";

/// The policy every page is sent with.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// `text` with HTML's special characters escaped, for text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (plain text) and `body` (HTML, already escaped).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut html = String::with_capacity(STYLE.len() + body.len() + 400);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_SECURITY_POLICY, CSP.clone())
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(html)
}

/// The password form of the link `code` (posting to `/{code}`), with `error` above it.
pub fn password_form(status: StatusCode, code: &str, error: Option<&str>) -> Response {
    let mut body = String::from("<h1>This link is protected</h1>");
    if let Some(error) = error {
        let _ = write!(
            body,
            "<p class=\"error\" id=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
    let described = if error.is_some() {
        " aria-describedby=\"error\" aria-invalid=\"true\""
    } else {
        ""
    };
    let _ = write!(
        body,
        "<p>Enter the password to continue.</p>\
         <form method=\"post\" action=\"/{}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" required autofocus \
         autocomplete=\"current-password\" maxlength=\"128\"{described}>\
         <button type=\"submit\">Continue</button></form>",
        escape(code)
    );
    page(status, "Password required", &body)
}

/// The preview of a link: where it goes and its title, or that it asks for a password.
pub fn preview(code: &str, title: Option<&str>, destination: Option<&str>) -> Response {
    let mut body = String::from("<h1>Where this link goes</h1>");
    if let Some(title) = title {
        let _ = write!(body, "<p><strong>{}</strong></p>", escape(title));
    }
    match destination {
        Some(url) => {
            let _ = write!(
                body,
                "<p class=\"url\">{url}</p><p>Check the address before you go on.</p>\
                 <a class=\"go\" href=\"{url}\" rel=\"noopener noreferrer\">Continue to the site</a>",
                url = escape(url)
            );
        }
        None => {
            let _ = write!(
                body,
                "<p>This link is password-protected: its destination is shown only after the password.</p>\
                 <a class=\"go\" href=\"/{}\">Enter the password</a>",
                escape(code)
            );
        }
    }
    page(StatusCode::OK, "Link preview", &body)
}

/// A page saying why there is nothing to show (unknown link, gone, too many attempts).
pub fn message(status: StatusCode, heading: &str, text: &str) -> Response {
    page(
        status,
        heading,
        &format!("<h1>{}</h1><p>{}</p>", escape(heading), escape(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_open_markup() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;"
        );
    }

    #[test]
    fn the_policy_allows_the_page_style_by_hash_and_nothing_else() {
        let csp = CSP.to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
    }
}
