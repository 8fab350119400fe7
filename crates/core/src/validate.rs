//! Validation of user input: destination URLs, emails, passwords, titles and tags.
//!
//! URL rules keep the shortener from being turned against its own network (SSRF through
//! previews and QR scanners) or against its users (`javascript:` links): only absolute
//! `http`/`https` URLs to public hosts pass. Host spellings are normalised by the WHATWG
//! URL parser first, so `http://2130706433/`, `http://0x7f.1/` and `http://[::ffff:127.0.0.1]/`
//! are seen as the loopback addresses they are.

use crate::error::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Longest accepted destination URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

fn invalid_url(field: &'static str, reason: impl Into<String>) -> Error {
    Error::invalid(field, "invalid_url", reason)
}

/// Validates a destination URL and returns its normalised form.
///
/// `own_hosts` are the hosts of this service (`BASE_URL`'s and every short domain's):
/// links back to them are refused, since they would loop.
pub fn validate_url(field: &'static str, raw: &str, own_hosts: &[&str]) -> Result<Url> {
    if raw.len() > MAX_URL_BYTES {
        return Err(invalid_url(
            field,
            format!(
                "is {} bytes long; at most {MAX_URL_BYTES} are allowed",
                raw.len()
            ),
        ));
    }
    if raw.trim().is_empty() {
        return Err(invalid_url(field, "is empty"));
    }
    let url = Url::parse(raw.trim())
        .map_err(|e| invalid_url(field, format!("is not an absolute URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(invalid_url(
                field,
                format!("scheme {other:?} is not allowed; use http or https"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_url(field, "must not contain credentials"));
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(invalid_url(
            field,
            format!("is longer than {MAX_URL_BYTES} bytes once normalised"),
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| invalid_url(field, "has no host"))?;
    check_host(&host).map_err(|reason| invalid_url(field, reason))?;
    let loops = |own: &&str| match &host {
        Host::Domain(domain) => domain
            .trim_end_matches('.')
            .eq_ignore_ascii_case(own.trim_end_matches('.')),
        // BASE_URL may itself be an IP literal.
        _ => {
            own.trim_matches(|c| c == '[' || c == ']')
                == host.to_string().trim_matches(|c| c == '[' || c == ']')
        }
    };
    if own_hosts.iter().any(loops) {
        return Err(invalid_url(
            field,
            "points back at this shortener; shorten the destination instead",
        ));
    }
    Ok(url)
}

/// Hostnames that name the machine itself or cloud metadata services.
const BLOCKED_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Suffixes that never resolve to public hosts (`.svc`: Kubernetes service names,
/// `svc.cluster.local` included through `.local`).
const BLOCKED_SUFFIXES: &[&str] = &[
    ".localhost",
    ".local",
    ".internal",
    ".svc",
    ".localdomain",
    ".home.arpa",
    ".intranet",
    ".lan",
];

fn check_host(host: &Host<&str>) -> std::result::Result<(), String> {
    match host {
        Host::Domain(domain) => {
            let name = domain.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err("has an empty host".into());
            }
            if BLOCKED_NAMES.contains(&name.as_str())
                || BLOCKED_SUFFIXES.iter().any(|s| name.ends_with(s))
            {
                return Err(format!("host {name:?} is not a public host"));
            }
            if !name.contains('.') {
                return Err(format!(
                    "host {name:?} is not a fully qualified public domain name"
                ));
            }
            Ok(())
        }
        Host::Ipv4(ip) => check_ipv4(*ip),
        Host::Ipv6(ip) => check_ipv6(*ip),
    }
}

/// Why an address is no public one (`Ok` when it is).
pub(crate) fn check_ip(ip: std::net::IpAddr) -> std::result::Result<(), String> {
    match ip {
        std::net::IpAddr::V4(v4) => check_ipv4(v4),
        std::net::IpAddr::V6(v6) => check_ipv6(v6),
    }
}

fn check_ipv4(ip: Ipv4Addr) -> std::result::Result<(), String> {
    let o = ip.octets();
    let reason = if ip.is_loopback() {
        "a loopback address"
    } else if o[0] == 0 {
        "an unspecified / this-network address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        "a link-local or cloud-metadata address"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "a carrier-grade NAT address"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "an IETF protocol address"
    } else if ip.is_documentation() {
        "a documentation address"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "a benchmarking address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if o[0] >= 240 {
        "a reserved or broadcast address"
    } else {
        return Ok(());
    };
    Err(format!("host {ip} is {reason}"))
}

fn check_ipv6(ip: Ipv6Addr) -> std::result::Result<(), String> {
    let s = ip.segments();
    // Addresses that embed an IPv4 address are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return check_ipv4(v4).map_err(|e| format!("{e} (IPv4-mapped as {ip})"));
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        return check_ipv4(embedded(s[6], s[7])).map_err(|e| format!("{e} (embedded in {ip})"));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return check_ipv4(embedded(s[6], s[7])).map_err(|e| format!("{e} (NAT64 {ip})"));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // 64:ff9b:1::/48 (RFC 8215) is local-use NAT64: only a network's own translator
        // answers it, whatever IPv4 address it embeds.
        return Err(format!("host {ip} is a local-use NAT64 address"));
    }
    if s[0] == 0x2002 {
        return check_ipv4(embedded(s[1], s[2])).map_err(|e| format!("{e} (6to4 {ip})"));
    }
    let reason = if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "the unspecified address"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "a unique-local (private) address"
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        "a link-local or site-local address"
    } else if (s[0] & 0xff00) == 0xff00 {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a documentation address"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "a Teredo tunnel address"
    } else if s[0] == 0x0100 && s[1..4] == [0; 3] {
        "a discard-only address"
    } else if s[0] == 0 {
        "a reserved address"
    } else {
        return Ok(());
    };
    Err(format!("host {ip} is {reason}"))
}

/// Validates a short domain's host: a lower-case DNS name of at least two labels (an
/// internationalised name in its `xn--` form), no port, no IP address, not `localhost`.
pub fn validate_host(field: &'static str, raw: &str) -> Result<String> {
    let bad = |reason: &str| Error::invalid(field, "invalid_host", reason.to_string());
    let host = raw.trim();
    if host.is_empty() || host.len() > 253 {
        return Err(bad("must be 1 to 253 characters"));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("must be in lower case"));
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(bad(
            "must be a DNS name like go.example.com: labels of letters, digits and '-', no port",
        ));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("must be a name, not an IP address"));
    }
    if BLOCKED_NAMES.contains(&host) || BLOCKED_SUFFIXES.iter().any(|s| host.ends_with(s)) {
        return Err(bad("must be a public name"));
    }
    Ok(host.to_string())
}

/// Validates an email address (a pragmatic check: one `@`, a dotted domain, no spaces).
pub fn validate_email(raw: &str) -> Result<String> {
    let email = raw.trim();
    let bad = |reason: &str| Error::invalid("email", "invalid_email", reason.to_string());
    if email.chars().count() > 254 {
        return Err(bad("is longer than 254 characters"));
    }
    let (local, domain) = email
        .split_once('@')
        .ok_or_else(|| bad("must contain '@'"))?;
    if local.is_empty() || local.chars().count() > 64 {
        return Err(bad("needs 1 to 64 characters before '@'"));
    }
    if domain.contains('@') {
        return Err(bad("must contain exactly one '@'"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(bad("needs a domain like example.com after '@'"));
    }
    Ok(email.to_string())
}

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes (hashing cost must stay bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Validates a new password.
pub fn validate_password(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            "password",
            "weak_password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters long"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(
            "password",
            "invalid_password",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes long"),
        ));
    }
    Ok(())
}

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 255;
/// Most tags on one link.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 50;

/// Validates and trims a title; an empty one becomes `None`.
pub fn validate_title(title: Option<&str>) -> Result<Option<String>> {
    let Some(title) = title.map(str::trim) else {
        return Ok(None);
    };
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(Error::invalid(
            "title",
            "invalid_title",
            format!("must be at most {MAX_TITLE_CHARS} characters long"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(Error::invalid(
            "title",
            "invalid_title",
            "must not contain control characters",
        ));
    }
    Ok((!title.is_empty()).then(|| title.to_string()))
}

/// Validates tags: trimmed, non-empty, de-duplicated keeping the first occurrence.
pub fn validate_tags(tags: &[String]) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            "invalid_tags",
            format!("at most {MAX_TAGS} tags are allowed, got {}", tags.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
            return Err(Error::invalid(
                "tags",
                "invalid_tags",
                format!("each tag needs 1 to {MAX_TAG_CHARS} printable characters, got {tag:?}"),
            ));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refused(url: &str) -> bool {
        matches!(
            validate_url("original_url", url, &["sho.rt", "go.example.com"]),
            Err(Error::Invalid {
                code: "invalid_url",
                ..
            })
        )
    }

    #[test]
    fn accepts_public_urls_and_normalises() {
        let u = validate_url("original_url", "https://Example.com", &[]).unwrap();
        assert_eq!(u.as_str(), "https://example.com/");
        for ok in [
            "http://example.com/a?b=c#d",
            "https://sub.example.co.uk:8443/path",
            "http://8.8.8.8/",
            "http://[2606:4700:4700::1111]/",
            "https://xn--nxasmq6b.com/",
        ] {
            assert!(validate_url("original_url", ok, &[]).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_every_listed_case() {
        for bad in [
            "",
            "not a url",
            "/relative/path",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "ftp://example.com/",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://foo.localhost/",
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://%31%32%37.0.0.1/",
            "http://0.0.0.0/",
            "http://0/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.100.100.200/",
            "http://metadata.google.internal/",
            "http://[::1]/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[fc00::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[64:ff9b:1::169.254.169.254]/",
            "http://[64:ff9b:1:ffff::1]/",
            "http://[64:FF9B:0001:0000:0000:0000:A9FE:A9FE]/",
            "http://redis.default.svc/",
            "http://api.prod.svc.cluster.local/",
            "http://db.internal/",
            "http://printer.local/",
            "http://app.localhost/",
            "http://[2002:c0a8:101::1]/",
            "http://intranet/",
            "https://sho.rt/abc",
            "https://SHO.RT./abc",
            "https://go.example.com/abc",
        ] {
            assert!(refused(bad), "{bad} should be refused");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(refused(&long));
    }

    #[test]
    fn errors_name_field_and_reason() {
        let err = validate_url("original_url", "http://10.1.2.3/", &[]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("original_url") && text.contains("private"),
            "{text}"
        );
    }

    #[test]
    fn hosts_of_short_domains() {
        for ok in [
            "go.example.com",
            "sho.rt",
            "xn--bcher-kva.example",
            "a-b.c9",
        ] {
            assert_eq!(validate_host("host", ok).unwrap(), ok);
        }
        for bad in [
            "",
            "Go.Example.com",
            "localhost",
            "sho",
            "sho.rt:8080",
            "1.2.3.4",
            "[::1]",
            "-a.com",
            "a-.com",
            "a..com",
            "printer.local",
            "über.de",
            "a_b.com",
        ] {
            assert!(validate_host("host", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_and_passwords() {
        assert!(validate_email("a@b.co").is_ok());
        for bad in [
            "", "ab.co", "a@b", "a@@b.co", "a b@c.de", "@b.co", "a@.b.co",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn tags_and_titles() {
        assert_eq!(
            validate_tags(&[" a ".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a", "b"]
        );
        assert!(validate_tags(&["".into()]).is_err());
        assert!(validate_tags(&vec!["t".to_string(); 21]).is_err());
        assert_eq!(validate_title(Some("  ")).unwrap(), None);
        assert!(validate_title(Some(&"t".repeat(256))).is_err());
    }

    fn spelled_ipv4(ip: Ipv4Addr, style: u8) -> String {
        let n = u32::from(ip);
        let o = ip.octets();
        match style % 6 {
            0 => ip.to_string(),
            1 => n.to_string(),
            2 => format!("0x{n:x}"),
            3 => format!("0{:o}.0{:o}.0{:o}.0{:o}", o[0], o[1], o[2], o[3]),
            4 => format!("{}.{}", o[0], n & 0x00ff_ffff),
            _ => format!("[::ffff:{ip}]"),
        }
    }

    fn blocked_ipv4() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(127, a, b, c)),
            any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(10, a, b, c)),
            any::<[u8; 3]>().prop_map(|[a, b, c]| Ipv4Addr::new(0, a, b, c)),
            (16u8..32, any::<[u8; 2]>()).prop_map(|(a, [b, c])| Ipv4Addr::new(172, a, b, c)),
            any::<[u8; 2]>().prop_map(|[b, c]| Ipv4Addr::new(192, 168, b, c)),
            any::<[u8; 2]>().prop_map(|[b, c]| Ipv4Addr::new(169, 254, b, c)),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = validate_url("original_url", &s, &["sho.rt"]);
            let _ = validate_url("original_url", &format!("http://{s}"), &[]);
            let _ = validate_email(&s);
        }

        #[test]
        fn never_admits_blocked_ipv4_in_any_spelling(ip in blocked_ipv4(), style in 0u8..6, path in "[a-z/]{0,10}") {
            let url = format!("http://{}/{path}", spelled_ipv4(ip, style));
            prop_assert!(refused(&url), "{} admitted", url);
        }

        #[test]
        fn never_admits_local_use_nat64(tail in any::<[u16; 5]>()) {
            let ip = Ipv6Addr::new(0x64, 0xff9b, 1, tail[0], tail[1], tail[2], tail[3], tail[4]);
            let url = format!("http://[{ip}]/");
            prop_assert!(refused(&url), "{} admitted", url);
        }

        #[test]
        fn never_admits_blocked_ipv6(seg in any::<[u16; 7]>(), kind in 0u8..3) {
            let first = match kind { 0 => 0xfc00 | (seg[0] & 0x1ff), 1 => 0xfe80 | (seg[0] & 0x3f), _ => 0xff00 | (seg[0] & 0xff) };
            let ip = Ipv6Addr::new(first, seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], 1);
            let url = format!("http://[{ip}]/");
            prop_assert!(refused(&url), "{} admitted", url);
        }
    }
}
