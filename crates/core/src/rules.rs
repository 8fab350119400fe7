//! Redirect rules: one short link, several destinations chosen per visitor by device,
//! OS, browser, language, country, query, address and date. The first rule whose
//! conditions all match decides; when none does, the link's own URL does.
//!
//! Rules are checked once when written ([`check_rules`]) and compiled once when a link
//! enters the cache ([`Rules`]), so a redirect compares values that are already parsed.

use crate::agent::{Browser, Device, Os, UserAgentClass};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most rules a link may have.
pub const MAX_RULES: usize = 20;
/// Most conditions a rule may have.
pub const MAX_CONDITIONS: usize = 10;
/// Longest condition value or query key.
pub const MAX_VALUE_LEN: usize = 256;

/// A destination and the conditions under which it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRule {
    /// Where matching visitors go (the same rules as a link's `original_url`).
    pub url: String,
    /// 1 to [`MAX_CONDITIONS`] conditions, all of which must match.
    pub conditions: Vec<RuleCondition>,
}

/// One test of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCondition {
    /// What is tested.
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// The value it must have (see [`ConditionType`]).
    pub value: String,
    /// The query parameter a `query` condition tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl RuleCondition {
    /// A condition without a key.
    pub fn new(kind: ConditionType, value: impl Into<String>) -> Self {
        RuleCondition {
            kind,
            value: value.into(),
            key: None,
        }
    }
}

/// What a condition tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionType {
    /// `desktop`, `mobile` or `tablet`.
    Device,
    /// `ios`, `android`, `windows`, `macos`, `linux` or `chromeos`.
    Os,
    /// `chrome`, `safari`, `firefox`, `edge`, `opera` or `samsung`.
    Browser,
    /// A language tag (`de`, `pt-BR`): an `Accept-Language` entry with q > 0 equals it,
    /// or starts with it and a `-` (`de` matches `de-AT`).
    Language,
    /// An ISO 3166-1 alpha-2 country code (`DE`).
    Country,
    /// A value of the query parameter `key`, or `*` for any value.
    Query,
    /// An address or a CIDR block.
    Ip,
    /// An RFC 3339 instant the visit must come after.
    After,
    /// An RFC 3339 instant the visit must come before.
    Before,
}

crate::model::text_enum!(ConditionType {
    Device => "device",
    Os => "os",
    Browser => "browser",
    Language => "language",
    Country => "country",
    Query => "query",
    Ip => "ip",
    After => "after",
    Before => "before",
});

/// The `device` values rules accept.
pub const DEVICES: &[&str] = &["desktop", "mobile", "tablet"];
/// The `os` values rules accept.
pub const OPERATING_SYSTEMS: &[&str] = &["ios", "android", "windows", "macos", "linux", "chromeos"];
/// The `browser` values rules accept.
pub const BROWSERS: &[&str] = &["chrome", "safari", "firefox", "edge", "opera", "samsung"];

fn refuse(field: String, reason: impl Into<String>) -> Error {
    Error::invalid(field, "invalid_field", reason)
}

/// Checks rules as written by a caller and returns them normalised (country codes in
/// upper case, device, OS and browser names in lower case, instants in UTC, CIDR blocks
/// in their canonical form). Errors name the field inside the list
/// (`redirect_rules[1].conditions[0].value`). Rule URLs are left to the caller, which
/// knows the deployment's hosts and blocklist.
pub fn check_rules(rules: &[RedirectRule]) -> Result<Vec<RedirectRule>> {
    if rules.len() > MAX_RULES {
        return Err(refuse(
            "redirect_rules".into(),
            format!("at most {MAX_RULES} rules"),
        ));
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let at = format!("redirect_rules[{i}]");
            if rule.conditions.is_empty() || rule.conditions.len() > MAX_CONDITIONS {
                return Err(refuse(
                    format!("{at}.conditions"),
                    format!("1 to {MAX_CONDITIONS} conditions"),
                ));
            }
            let conditions = rule
                .conditions
                .iter()
                .enumerate()
                .map(|(j, c)| check_condition(&format!("{at}.conditions[{j}]"), c))
                .collect::<Result<_>>()?;
            Ok(RedirectRule {
                url: rule.url.clone(),
                conditions,
            })
        })
        .collect()
}

fn check_condition(at: &str, c: &RuleCondition) -> Result<RuleCondition> {
    let field = || format!("{at}.value");
    let value = c.value.trim();
    if value.is_empty() || value.len() > MAX_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(refuse(
            field(),
            format!("1 to {MAX_VALUE_LEN} characters, no control characters"),
        ));
    }
    let one_of = |allowed: &[&str]| {
        let lower = value.to_ascii_lowercase();
        if allowed.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(refuse(
                field(),
                format!("must be one of {}", allowed.join(", ")),
            ))
        }
    };
    let value = match c.kind {
        ConditionType::Device => one_of(DEVICES)?,
        ConditionType::Os => one_of(OPERATING_SYSTEMS)?,
        ConditionType::Browser => one_of(BROWSERS)?,
        ConditionType::Language => {
            if !is_language_tag(value) {
                return Err(refuse(
                    field(),
                    "must be a language tag such as de or pt-BR",
                ));
            }
            value.to_string()
        }
        ConditionType::Country => {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(refuse(
                    field(),
                    "must be an ISO 3166-1 alpha-2 code such as DE",
                ));
            }
            value.to_ascii_uppercase()
        }
        ConditionType::Query => value.to_string(),
        ConditionType::Ip => match parse_net(value) {
            Some(net) => net.to_string(),
            None => {
                return Err(Error::invalid(
                    field(),
                    "invalid_ip",
                    "must be an IP address or a CIDR block such as 203.0.113.0/24",
                ));
            }
        },
        ConditionType::After | ConditionType::Before => match DateTime::parse_from_rfc3339(value) {
            Ok(at) => at
                .with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            Err(_) => {
                return Err(refuse(
                    field(),
                    "must be an RFC 3339 instant such as 2026-12-01T00:00:00Z",
                ));
            }
        },
    };
    let key = match (c.kind, c.key.as_deref().map(str::trim)) {
        (ConditionType::Query, Some(key))
            if !key.is_empty()
                && key.len() <= MAX_VALUE_LEN
                && !key.chars().any(char::is_control) =>
        {
            Some(key.to_string())
        }
        (ConditionType::Query, _) => {
            return Err(refuse(
                format!("{at}.key"),
                "a query condition names its parameter in key (1 to 256 characters)",
            ));
        }
        // Other conditions have no use for a key: it is dropped.
        (_, _) => None,
    };
    Ok(RuleCondition {
        kind: c.kind,
        value,
        key,
    })
}

/// `de`, `pt-BR`, `zh-Hant-TW`: letters, then subtags of letters and digits.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (1..=8).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn parse_net(value: &str) -> Option<IpNet> {
    value
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

/// A link's rules, compiled for matching. It serialises as the list of rules it was
/// made from, so caches keep the list and compile it again when they read it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<RedirectRule>", into = "Vec<RedirectRule>")]
pub struct Rules {
    source: Vec<RedirectRule>,
    compiled: Box<[Compiled]>,
}

impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Rules {}

impl From<Vec<RedirectRule>> for Rules {
    fn from(source: Vec<RedirectRule>) -> Self {
        let compiled = source.iter().map(Compiled::of).collect();
        Rules { source, compiled }
    }
}

impl From<Rules> for Vec<RedirectRule> {
    fn from(rules: Rules) -> Self {
        rules.source
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    conditions: Box<[Test]>,
}

/// A condition with its value parsed. Values that no longer parse (written by hand into
/// a store) never match rather than fail the redirect.
#[derive(Debug, Clone)]
enum Test {
    Device(Device),
    Os(Os),
    Browser(Browser),
    Language(Box<str>),
    Country([u8; 2]),
    Query {
        key: Box<str>,
        value: Option<Box<str>>,
    },
    Ip(IpNet),
    After(DateTime<Utc>),
    Before(DateTime<Utc>),
    Never,
}

impl Compiled {
    fn of(rule: &RedirectRule) -> Self {
        Compiled {
            conditions: rule.conditions.iter().map(Test::of).collect(),
        }
    }
}

impl Test {
    fn of(c: &RuleCondition) -> Test {
        let v = c.value.trim();
        let lower = v.to_ascii_lowercase();
        let found = match c.kind {
            ConditionType::Device => Device::ALL
                .iter()
                .find(|d| d.as_str() == lower)
                .map(|d| Test::Device(*d)),
            ConditionType::Os => Os::ALL
                .iter()
                .find(|o| o.key() == lower)
                .map(|o| Test::Os(*o)),
            ConditionType::Browser => Browser::ALL
                .iter()
                .find(|b| b.key() == lower)
                .map(|b| Test::Browser(*b)),
            ConditionType::Language => Some(Test::Language(v.into())),
            ConditionType::Country => match v.as_bytes() {
                [a, b] => Some(Test::Country([
                    a.to_ascii_uppercase(),
                    b.to_ascii_uppercase(),
                ])),
                _ => None,
            },
            ConditionType::Query => c.key.as_deref().map(|key| Test::Query {
                key: key.into(),
                value: (v != "*").then(|| v.into()),
            }),
            ConditionType::Ip => parse_net(v).map(Test::Ip),
            ConditionType::After => DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| Test::After(t.with_timezone(&Utc))),
            ConditionType::Before => DateTime::parse_from_rfc3339(v)
                .ok()
                .map(|t| Test::Before(t.with_timezone(&Utc))),
        };
        found.unwrap_or(Test::Never)
    }

    fn needs_agent(&self) -> bool {
        matches!(self, Test::Device(_) | Test::Os(_) | Test::Browser(_))
    }
}

/// What rules look at in a visit. Each part is worked out only when a condition needs it.
pub(crate) struct Facts<'a, A, C> {
    pub user_agent_class: A,
    pub accept_language: Option<&'a str>,
    pub country: C,
    pub query: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub now: DateTime<Utc>,
}

impl Rules {
    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// The rules as written.
    pub fn as_slice(&self) -> &[RedirectRule] {
        &self.source
    }

    /// Whether some condition looks at the user agent (so the visit must be classified).
    pub fn need_agent(&self) -> bool {
        self.compiled
            .iter()
            .any(|r| r.conditions.iter().any(Test::needs_agent))
    }

    /// The URL of the first rule whose conditions all match; `None` when none does.
    pub(crate) fn choose<'r, A, C>(&'r self, facts: &mut Facts<'_, A, C>) -> Option<&'r str>
    where
        A: FnMut() -> UserAgentClass,
        C: FnMut() -> Option<[u8; 2]>,
    {
        let mut agent: Option<UserAgentClass> = None;
        let mut country: Option<Option<[u8; 2]>> = None;
        let mut languages: Option<Languages<'_>> = None;
        for (rule, source) in self.compiled.iter().zip(&self.source) {
            let all = rule.conditions.iter().all(|test| match test {
                Test::Device(d) => {
                    agent.get_or_insert_with(&mut facts.user_agent_class).device == *d
                }
                Test::Os(o) => agent.get_or_insert_with(&mut facts.user_agent_class).os == *o,
                Test::Browser(b) => {
                    agent
                        .get_or_insert_with(&mut facts.user_agent_class)
                        .browser
                        == *b
                }
                Test::Language(tag) => languages
                    .get_or_insert_with(|| Languages::parse(facts.accept_language))
                    .accepts(tag),
                Test::Country(code) => {
                    *country.get_or_insert_with(&mut facts.country) == Some(*code)
                }
                Test::Query { key, value } => query_has(facts.query, key, value.as_deref()),
                Test::Ip(net) => facts
                    .client_ip
                    .is_some_and(|ip| net.contains(&canonical(ip))),
                Test::After(at) => facts.now > *at,
                Test::Before(at) => facts.now < *at,
                Test::Never => false,
            });
            if all {
                return Some(&source.url);
            }
        }
        None
    }
}

/// An IPv4 address written as IPv6 (`::ffff:1.2.3.4`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The languages of an `Accept-Language` header with q > 0, on the stack: the first 16.
struct Languages<'a> {
    tags: [&'a str; 16],
    len: usize,
}

impl<'a> Languages<'a> {
    fn parse(header: Option<&'a str>) -> Self {
        let mut out = Languages {
            tags: [""; 16],
            len: 0,
        };
        for entry in header.unwrap_or_default().split(',') {
            if out.len == out.tags.len() {
                break;
            }
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim();
            if tag.is_empty() || tag == "*" {
                continue;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok());
            if q.is_some_and(|q| q > 0.0) {
                out.tags[out.len] = tag;
                out.len += 1;
            }
        }
        out
    }

    /// Whether some accepted tag equals `wanted` or is a sub-tag of it (`de-AT` for
    /// `de`), without regard to case.
    fn accepts(&self, wanted: &str) -> bool {
        self.tags[..self.len].iter().any(|tag| {
            tag.len() >= wanted.len()
                && tag.as_bytes()[..wanted.len()].eq_ignore_ascii_case(wanted.as_bytes())
                && (tag.len() == wanted.len() || tag.as_bytes()[wanted.len()] == b'-')
        })
    }
}

/// Whether `query` has the parameter `key` (with `value`, or any value when `None`).
/// Names and values are compared after form decoding (`%20` and `+` are spaces).
fn query_has(query: Option<&str>, key: &str, value: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == key && value.is_none_or(|want| v == want))
}

/// `query` appended to `url`'s own query (both kept, `query` last), before any fragment.
pub fn forward_query(url: &str, query: &str) -> String {
    let query = query.trim_start_matches('?');
    if query.is_empty() {
        return url.to_string();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len() + query.len() + 2);
    out.push_str(base);
    match base.split_once('?') {
        Some((_, own)) if !own.is_empty() => out.push('&'),
        Some(_) => {}
        None => out.push('?'),
    }
    out.push_str(query);
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::classify_user_agent;
    use proptest::prelude::*;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36";
    const DESKTOP: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    struct Visit<'a> {
        ua: &'a str,
        language: Option<&'a str>,
        country: Option<&'a str>,
        query: Option<&'a str>,
        ip: Option<&'a str>,
        now: &'a str,
    }

    const NOBODY: Visit<'static> = Visit {
        ua: DESKTOP,
        language: None,
        country: None,
        query: None,
        ip: None,
        now: "2026-06-01T12:00:00Z",
    };

    fn choose(rules: Vec<RedirectRule>, v: &Visit<'_>) -> Option<String> {
        let rules = Rules::from(check_rules(&rules).expect("valid rules"));
        let mut facts = Facts {
            user_agent_class: || classify_user_agent(Some(v.ua)),
            accept_language: v.language,
            country: || v.country.map(|c| [c.as_bytes()[0], c.as_bytes()[1]]),
            query: v.query,
            client_ip: v.ip.map(|ip| ip.parse().unwrap()),
            now: at(v.now),
        };
        rules.choose(&mut facts).map(str::to_string)
    }

    fn rule(url: &str, conditions: Vec<RuleCondition>) -> RedirectRule {
        RedirectRule {
            url: url.into(),
            conditions,
        }
    }

    fn one(kind: ConditionType, value: &str) -> Vec<RedirectRule> {
        vec![rule(
            "https://example.com/hit",
            vec![RuleCondition::new(kind, value)],
        )]
    }

    fn hit(kind: ConditionType, value: &str, v: &Visit<'_>) -> bool {
        choose(one(kind, value), v).is_some()
    }

    #[test]
    fn devices_systems_and_browsers() {
        let phone = Visit {
            ua: IPHONE,
            ..NOBODY
        };
        let android = Visit {
            ua: ANDROID,
            ..NOBODY
        };
        let rules = vec![
            rule(
                "https://apps.apple.com/",
                vec![RuleCondition::new(ConditionType::Os, "ios")],
            ),
            rule(
                "https://play.google.com/",
                vec![RuleCondition::new(ConditionType::Os, "android")],
            ),
        ];
        assert_eq!(
            choose(rules.clone(), &phone).as_deref(),
            Some("https://apps.apple.com/")
        );
        assert_eq!(
            choose(rules.clone(), &android).as_deref(),
            Some("https://play.google.com/")
        );
        assert_eq!(choose(rules, &NOBODY), None, "desktop: the link's own URL");
        assert!(hit(ConditionType::Device, "mobile", &phone));
        assert!(hit(ConditionType::Device, "desktop", &NOBODY));
        assert!(!hit(ConditionType::Device, "tablet", &phone));
        assert!(hit(ConditionType::Browser, "safari", &phone));
        assert!(hit(ConditionType::Browser, "chrome", &android));
        assert!(hit(ConditionType::Browser, "firefox", &NOBODY));
        assert!(
            hit(ConditionType::Os, "WINDOWS", &NOBODY),
            "values in any case"
        );
    }

    #[test]
    fn languages_with_quality_values() {
        let v = |h: &'static str| Visit {
            language: Some(h),
            ..NOBODY
        };
        assert!(hit(
            ConditionType::Language,
            "de",
            &v("de-AT;q=0.9, en;q=0.5")
        ));
        assert!(hit(
            ConditionType::Language,
            "en",
            &v("de-AT;q=0.9, en;q=0.5")
        ));
        assert!(
            hit(ConditionType::Language, "pt-BR", &v("pt-br")),
            "any case"
        );
        assert!(
            !hit(ConditionType::Language, "pt-BR", &v("pt")),
            "a region needs the region"
        );
        assert!(
            !hit(ConditionType::Language, "de", &v("de;q=0, en")),
            "q=0 means not wanted"
        );
        assert!(
            !hit(ConditionType::Language, "de", &v("den, fr")),
            "a prefix is not a language"
        );
        assert!(!hit(ConditionType::Language, "de", &v("*")));
        assert!(!hit(ConditionType::Language, "de", &NOBODY));
        assert!(hit(ConditionType::Language, "fr", &v("de;q=bogus, fr")));
    }

    #[test]
    fn countries_addresses_queries_and_dates() {
        let v = Visit {
            country: Some("DE"),
            ip: Some("203.0.113.77"),
            query: Some("utm_source=news%20letter&ref=&x=1"),
            ..NOBODY
        };
        assert!(hit(ConditionType::Country, "de", &v));
        assert!(!hit(ConditionType::Country, "AT", &v));
        assert!(
            !hit(ConditionType::Country, "DE", &NOBODY),
            "no country matches none"
        );
        assert!(hit(ConditionType::Ip, "203.0.113.0/24", &v));
        assert!(hit(ConditionType::Ip, "203.0.113.77", &v));
        assert!(!hit(ConditionType::Ip, "198.51.100.0/24", &v));
        let mapped = Visit {
            ip: Some("::ffff:203.0.113.77"),
            ..NOBODY
        };
        assert!(
            hit(ConditionType::Ip, "203.0.113.0/24", &mapped),
            "IPv4 written as IPv6"
        );
        let v6 = Visit {
            ip: Some("2001:db8::1"),
            ..NOBODY
        };
        assert!(hit(ConditionType::Ip, "2001:db8::/32", &v6));
        assert!(!hit(ConditionType::Ip, "2001:db9::/32", &v6));
        assert!(!hit(ConditionType::Ip, "203.0.113.0/24", &v6));
        let query = |key: &str, value: &str| {
            vec![rule(
                "https://example.com/q",
                vec![RuleCondition {
                    key: Some(key.into()),
                    ..RuleCondition::new(ConditionType::Query, value)
                }],
            )]
        };
        assert!(
            choose(query("utm_source", "news letter"), &v).is_some(),
            "decoded"
        );
        assert!(choose(query("utm_source", "*"), &v).is_some());
        assert!(
            choose(query("ref", "*"), &v).is_some(),
            "an empty value is a value"
        );
        assert!(choose(query("missing", "*"), &v).is_none());
        assert!(choose(query("x", "2"), &v).is_none());
        assert!(choose(query("x", "*"), &NOBODY).is_none());
        assert!(hit(ConditionType::After, "2026-05-31T00:00:00Z", &v));
        assert!(
            !hit(ConditionType::After, "2026-06-01T12:00:00Z", &v),
            "strictly after"
        );
        assert!(hit(ConditionType::Before, "2026-06-01T12:00:01Z", &v));
        assert!(
            hit(ConditionType::Before, "2026-06-01T14:00:01+02:00", &v),
            "any offset"
        );
        assert!(!hit(ConditionType::Before, "2026-01-01T00:00:00Z", &v));
    }

    #[test]
    fn first_rule_whose_conditions_all_match_wins() {
        let phone = Visit {
            ua: IPHONE,
            language: Some("de"),
            ..NOBODY
        };
        let rules = vec![
            rule(
                "https://example.com/ios-fr",
                vec![
                    RuleCondition::new(ConditionType::Os, "ios"),
                    RuleCondition::new(ConditionType::Language, "fr"),
                ],
            ),
            rule(
                "https://example.com/de",
                vec![RuleCondition::new(ConditionType::Language, "de")],
            ),
            rule(
                "https://example.com/ios",
                vec![RuleCondition::new(ConditionType::Os, "ios")],
            ),
        ];
        assert_eq!(
            choose(rules, &phone).as_deref(),
            Some("https://example.com/de")
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        let field = |rules: Vec<RedirectRule>| match check_rules(&rules) {
            Err(Error::Invalid { field, .. }) => field.into_owned(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let ok = rule(
            "https://example.com/",
            vec![RuleCondition::new(ConditionType::Os, "ios")],
        );
        let with = |c: RuleCondition| {
            vec![
                ok.clone(),
                rule("https://example.com/", vec![ok.conditions[0].clone(), c]),
            ]
        };
        assert_eq!(
            field(with(RuleCondition::new(ConditionType::Device, "watch"))),
            "redirect_rules[1].conditions[1].value"
        );
        for (kind, value) in [
            (ConditionType::Os, "beos"),
            (ConditionType::Browser, "netscape"),
            (ConditionType::Language, "de_AT"),
            (ConditionType::Country, "DEU"),
            (ConditionType::Ip, "300.1.1.1"),
            (ConditionType::Ip, "10.0.0.0/33"),
            (ConditionType::After, "tomorrow"),
            (ConditionType::Before, "2026-13-01T00:00:00Z"),
            (ConditionType::Device, ""),
        ] {
            assert_eq!(
                field(with(RuleCondition::new(kind, value))),
                "redirect_rules[1].conditions[1].value",
                "{kind:?} {value:?}"
            );
        }
        assert_eq!(
            field(with(RuleCondition::new(ConditionType::Query, "x"))),
            "redirect_rules[1].conditions[1].key",
            "a query condition needs its key"
        );
        let dropped = check_rules(&with(RuleCondition {
            key: Some("k".into()),
            ..RuleCondition::new(ConditionType::Os, "ios")
        }))
        .unwrap();
        assert_eq!(
            dropped[1].conditions[1].key, None,
            "only query conditions keep a key"
        );
        assert_eq!(
            field(vec![rule("https://example.com/", vec![])]),
            "redirect_rules[0].conditions"
        );
        assert_eq!(field(vec![ok.clone(); MAX_RULES + 1]), "redirect_rules");
        let normalised = check_rules(&[rule(
            "https://example.com/",
            vec![
                RuleCondition::new(ConditionType::Country, "de"),
                RuleCondition::new(ConditionType::Os, "iOS"),
                RuleCondition::new(ConditionType::Ip, "10.1.2.3/8"),
                RuleCondition::new(ConditionType::After, "2026-06-01T14:00:00+02:00"),
            ],
        )])
        .unwrap();
        let values: Vec<&str> = normalised[0]
            .conditions
            .iter()
            .map(|c| c.value.as_str())
            .collect();
        assert_eq!(values, ["DE", "ios", "10.0.0.0/8", "2026-06-01T12:00:00Z"]);
    }

    #[test]
    fn query_forwarding_keeps_both_and_the_fragment() {
        assert_eq!(
            forward_query("https://e.com/p", "a=1"),
            "https://e.com/p?a=1"
        );
        assert_eq!(
            forward_query("https://e.com/p?x=0", "a=1"),
            "https://e.com/p?x=0&a=1"
        );
        assert_eq!(
            forward_query("https://e.com/p?", "a=1"),
            "https://e.com/p?a=1"
        );
        assert_eq!(
            forward_query("https://e.com/p#top", "a=1"),
            "https://e.com/p?a=1#top"
        );
        assert_eq!(
            forward_query("https://e.com/p?x=0", ""),
            "https://e.com/p?x=0"
        );
    }

    #[test]
    fn a_cache_entry_round_trip_keeps_the_rules() {
        let rules = Rules::from(check_rules(&one(ConditionType::Os, "ios")).unwrap());
        let json = serde_json::to_string(&rules).unwrap();
        assert!(json.starts_with("[{\"url\""), "{json}");
        let back: Rules = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
        let phone = Visit {
            ua: IPHONE,
            ..NOBODY
        };
        let mut facts = Facts {
            user_agent_class: || classify_user_agent(Some(phone.ua)),
            accept_language: None,
            country: || None,
            query: None,
            client_ip: None,
            now: at(phone.now),
        };
        assert!(
            back.choose(&mut facts).is_some(),
            "compiled again when read"
        );
    }

    fn any_condition() -> impl Strategy<Value = RuleCondition> {
        (0..9usize, ".{0,40}", proptest::option::of(".{0,10}")).prop_map(|(k, value, key)| {
            RuleCondition {
                kind: ConditionType::ALL[k],
                value,
                key,
            }
        })
    }

    proptest! {
        /// Whatever a store holds and whatever a visitor sends, evaluation answers.
        #[test]
        fn evaluation_never_panics(
            conditions in proptest::collection::vec(any_condition(), 1..10),
            ua in ".{0,80}",
            language in proptest::option::of(".{0,60}"),
            query in proptest::option::of(".{0,60}"),
            country in proptest::option::of("[A-Za-z]{2}"),
        ) {
            let rules = Rules::from(vec![rule("https://example.com/", conditions.clone())]);
            let _ = check_rules(&[rule("https://example.com/", conditions)]);
            let mut facts = Facts {
                user_agent_class: || classify_user_agent(Some(&ua)),
                accept_language: language.as_deref(),
                country: || country.as_ref().map(|c| [c.as_bytes()[0], c.as_bytes()[1]]),
                query: query.as_deref(),
                client_ip: Some("203.0.113.5".parse().unwrap()),
                now: Utc::now(),
            };
            let _ = rules.choose(&mut facts);
            if let Some(q) = &query {
                let _ = forward_query("https://example.com/p?x#f", q);
            }
        }
    }
}
