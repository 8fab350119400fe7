//! The domain types embedders use: links, users, keys, tokens, visits and summaries.
//! What only backends need (stored records, cache entries, bus events) is in
//! [`crate::records`].

use crate::error::{Error, Result};
use crate::rules::RedirectRule;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use uuid::Uuid;

/// The HTTP status a link redirects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum RedirectType {
    /// 301 Moved Permanently (browsers cache it: later clicks may not reach us).
    MovedPermanently,
    /// 302 Found, the default.
    #[default]
    Found,
    /// 307 Temporary Redirect (keeps the method).
    TemporaryRedirect,
    /// 308 Permanent Redirect (keeps the method).
    PermanentRedirect,
}

impl RedirectType {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            RedirectType::MovedPermanently => 301,
            RedirectType::Found => 302,
            RedirectType::TemporaryRedirect => 307,
            RedirectType::PermanentRedirect => 308,
        }
    }

    /// Whether responses may be cached by clients (301 and 308 are permanent).
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            RedirectType::MovedPermanently | RedirectType::PermanentRedirect
        )
    }
}

impl TryFrom<u16> for RedirectType {
    type Error = Error;
    fn try_from(status: u16) -> Result<Self> {
        match status {
            301 => Ok(RedirectType::MovedPermanently),
            302 => Ok(RedirectType::Found),
            307 => Ok(RedirectType::TemporaryRedirect),
            308 => Ok(RedirectType::PermanentRedirect),
            other => Err(Error::invalid(
                "redirect_type",
                "invalid_redirect_type",
                format!("{other} is not one of 301, 302, 307, 308"),
            )),
        }
    }
}

impl From<RedirectType> for u16 {
    fn from(t: RedirectType) -> u16 {
        t.status()
    }
}

/// A short link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Stable identifier (UUIDv7).
    pub id: Uuid,
    /// The code after the host in the short URL: generated or a custom alias.
    pub short_code: String,
    /// Where the link redirects (validated and normalised).
    pub original_url: String,
    /// Optional human title.
    pub title: Option<String>,
    /// Free tags for filtering.
    pub tags: Vec<String>,
    /// Status of the redirect.
    pub redirect_type: RedirectType,
    /// The user who owns it; `None` for anonymous links, which nobody can edit.
    pub owner_id: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// After this instant it answers 410.
    pub expires_at: Option<DateTime<Utc>>,
    /// After this many human clicks it answers 410.
    pub max_clicks: Option<u64>,
    /// Human clicks counted so far (bots excluded).
    pub click_count: u64,
    /// When false it answers 410.
    pub is_active: bool,
    /// The short domain it lives on; `None` for the default domain (`BASE_URL`'s host).
    pub domain: Option<String>,
    /// Blocked by an administrator (abuse): it answers 410 and its owner can't undo it.
    pub blocked: bool,
    /// Why it was blocked.
    pub blocked_reason: Option<String>,
    /// Other destinations and when they apply, in order; empty: `original_url` for all.
    #[serde(default)]
    pub redirect_rules: Vec<RedirectRule>,
    /// Whether the request's query string is appended to the destination's.
    #[serde(default)]
    pub forward_query: bool,
    /// The Argon2id hash (PHC string) of the password visitors must give; never shown.
    #[serde(default, skip_serializing)]
    pub password_hash: Option<String>,
}

impl Link {
    /// Whether visitors must give a password.
    pub fn password_protected(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// What a caller asks for when shortening.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLink {
    /// The URL to shorten.
    pub original_url: String,
    /// A chosen code instead of a generated one.
    pub custom_alias: Option<String>,
    /// Expiry instant (must be in the future).
    pub expires_at: Option<DateTime<Utc>>,
    /// Human click budget (at least 1).
    pub max_clicks: Option<u64>,
    /// Redirect status; 302 when absent.
    pub redirect_type: Option<RedirectType>,
    /// Optional title.
    pub title: Option<String>,
    /// Optional tags.
    pub tags: Option<Vec<String>>,
    /// The short domain (a host of the deployment); the default domain when absent.
    pub domain: Option<String>,
    /// Redirect rules (at most [`MAX_RULES`](crate::rules::MAX_RULES)).
    pub redirect_rules: Option<Vec<RedirectRule>>,
    /// Append the request's query string to the destination's.
    pub forward_query: Option<bool>,
    /// A password visitors must give (1–128 characters); stored only as a hash.
    pub password: Option<String>,
}

impl NewLink {
    /// A request for `url` with every option left to its default.
    pub fn new(url: impl Into<String>) -> Self {
        NewLink {
            original_url: url.into(),
            ..Default::default()
        }
    }
}

/// A change to a link: `None` leaves a field alone; for nullable fields
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPatch {
    /// New destination.
    pub original_url: Option<String>,
    /// New or cleared expiry.
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// New or cleared click budget.
    pub max_clicks: Option<Option<u64>>,
    /// New redirect status.
    pub redirect_type: Option<RedirectType>,
    /// New or cleared title.
    pub title: Option<Option<String>>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// Enable or disable.
    pub is_active: Option<bool>,
    /// Block or unblock (administrators only: [`Shortener::update_link`](crate::Shortener::update_link)
    /// refuses it, [`Shortener::block_link`](crate::Shortener::block_link) sets it).
    pub blocked: Option<bool>,
    /// New or cleared reason for blocking (administrators only).
    pub blocked_reason: Option<Option<String>>,
    /// New redirect rules (replacing the old ones; empty clears them).
    pub redirect_rules: Option<Vec<RedirectRule>>,
    /// Start or stop forwarding the query string.
    pub forward_query: Option<bool>,
    /// A new password, or `Some(None)` to remove it. Callers set this; the service
    /// turns it into [`LinkPatch::password_hash`].
    pub password: Option<Option<String>>,
    /// What stores write: the new password's hash, or `Some(None)` to remove it. Set by
    /// the service from [`LinkPatch::password`]; stores ignore `password`.
    pub password_hash: Option<Option<String>>,
}

impl LinkPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == LinkPatch::default()
    }

    /// Applies the patch to `link`, as every store must.
    pub fn apply(&self, link: &mut Link, now: DateTime<Utc>) {
        if let Some(v) = &self.original_url {
            link.original_url = v.clone();
        }
        if let Some(v) = self.expires_at {
            link.expires_at = v;
        }
        if let Some(v) = self.max_clicks {
            link.max_clicks = v;
        }
        if let Some(v) = self.redirect_type {
            link.redirect_type = v;
        }
        if let Some(v) = &self.title {
            link.title = v.clone();
        }
        if let Some(v) = &self.tags {
            link.tags = v.clone();
        }
        if let Some(v) = self.is_active {
            link.is_active = v;
        }
        if let Some(v) = self.blocked {
            link.blocked = v;
        }
        if let Some(v) = &self.blocked_reason {
            link.blocked_reason = v.clone();
        }
        if let Some(v) = &self.redirect_rules {
            link.redirect_rules = v.clone();
        }
        if let Some(v) = self.forward_query {
            link.forward_query = v;
        }
        if let Some(v) = &self.password_hash {
            link.password_hash = v.clone();
        }
        link.updated_at = now;
    }
}

/// A short domain of the deployment (besides the default, `BASE_URL`'s host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Lower-case DNS name (internationalised names in their `xn--` form), no port.
    pub host: String,
    /// Whether it is the default domain (`BASE_URL`'s host; never stored).
    pub is_default: bool,
    /// Where `GET /` on this host goes, when set.
    pub root_redirect: Option<String>,
    /// Where an unknown code on this host goes instead of 404, when set.
    pub not_found_redirect: Option<String>,
    /// Where an expired, disabled, blocked or used-up link goes instead of 410, when set.
    pub gone_redirect: Option<String>,
    /// When added.
    pub created_at: DateTime<Utc>,
}

/// A change to a domain's redirects: `None` leaves one alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainPatch {
    /// New or cleared root redirect.
    pub root_redirect: Option<Option<String>>,
    /// New or cleared not-found redirect.
    pub not_found_redirect: Option<Option<String>>,
    /// New or cleared gone redirect.
    pub gone_redirect: Option<Option<String>>,
}

impl DomainPatch {
    /// Applies the patch to `domain`, as every store must.
    pub fn apply(&self, domain: &mut Domain) {
        for (value, slot) in [
            (&self.root_redirect, &mut domain.root_redirect),
            (&self.not_found_redirect, &mut domain.not_found_redirect),
            (&self.gone_redirect, &mut domain.gone_redirect),
        ] {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
    }
}

/// A host pattern of the blocklist: the host and its subdomains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedHost {
    /// Identifier.
    pub id: Uuid,
    /// A lower-case host: it covers itself and every subdomain.
    pub pattern: String,
    /// Why, for administrators.
    pub reason: Option<String>,
    /// When added.
    pub created_at: DateTime<Utc>,
}

/// Why a link was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportReason {
    /// Imitates a site to steal credentials.
    Phishing,
    /// Delivers malicious software.
    Malware,
    /// Unsolicited advertising.
    Spam,
    /// Anything else.
    Other,
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Waiting for an administrator.
    Open,
    /// Acted on.
    Resolved,
    /// Found groundless.
    Dismissed,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value's name in the API and in stores.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            /// The value of a name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(ReportReason { Phishing => "phishing", Malware => "malware", Spam => "spam", Other => "other" });
text_enum!(ReportStatus { Open => "open", Resolved => "resolved", Dismissed => "dismissed" });

/// An abuse report about a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Identifier.
    pub id: Uuid,
    /// The reported link.
    pub link_id: Uuid,
    /// Why.
    pub reason: ReportReason,
    /// What the reporter added.
    pub details: Option<String>,
    /// Where it stands.
    pub status: ReportStatus,
    /// The reporting user, when signed in.
    pub reporter_id: Option<Uuid>,
    /// When filed.
    pub created_at: DateTime<Utc>,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An operator of the deployment (`ADMIN_EMAILS`): domains, moderation.
    Admin,
    /// Everybody else.
    User,
}

/// Position in a listing: the (created_at, id) of the last item seen, or its
/// (clicks, id) in a listing by clicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last item returned.
    pub created_at: DateTime<Utc>,
    /// `id` of the last item returned.
    pub id: Uuid,
    /// `click_count` of the last link returned, in a listing by clicks
    /// ([`LinkSort::Clicks`]); `None` in every other listing.
    pub clicks: Option<u64>,
}

/// The order of a link listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LinkSort {
    /// Newest first: `created_at`, then `id`, descending.
    #[default]
    Newest,
    /// Most clicked first: `click_count`, then `id`, descending. A link clicked while
    /// someone pages may move past the cursor: such a listing is a snapshot per page.
    Clicks,
}

impl Cursor {
    /// The cursor that continues after `link` in a listing sorted by `sort`.
    pub fn after(link: &Link, sort: LinkSort) -> Self {
        Cursor {
            created_at: link.created_at,
            id: link.id,
            clicks: (sort == LinkSort::Clicks).then_some(link.click_count),
        }
    }

    /// Opaque text form for clients.
    pub fn encode(&self) -> String {
        let mut raw = format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        );
        if let Some(clicks) = self.clicks {
            raw.push_str(&format!(".{clicks}"));
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses [`Cursor::encode`]'s output; anything else is an `invalid cursor` error.
    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", "invalid_cursor", "not a cursor from this API");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let raw = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let mut parts = raw.split('.');
        let (Some(micros), Some(id)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        let clicks = parts
            .next()
            .map(|c| c.parse::<u64>().map_err(|_| bad()))
            .transpose()?;
        if parts.next().is_some() {
            return Err(bad());
        }
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(Cursor {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: Uuid::try_parse(id).map_err(|_| bad())?,
            clicks,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<Cursor>,
}

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Identifier.
    pub id: Uuid,
    /// Email as given at registration (unique without regard to case).
    pub email: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// When registered.
    pub created_at: DateTime<Utc>,
}

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Identifier.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// Label given at creation.
    pub name: String,
    /// First characters of the key, to recognise it.
    pub prefix: String,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: Uuid,
}

/// Access and refresh tokens handed out at login and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// JWT (HS256) for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `refresh` and `logout`; single use.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

/// Who followed a link: what the redirect knows of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Visit<'a> {
    /// The request's `Host` (port and case ignored): it picks the short domain; absent or
    /// no domain of the deployment, the default domain.
    pub host: Option<&'a str>,
    /// Client address (after trusted-proxy resolution).
    pub client_ip: Option<IpAddr>,
    /// `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// `Referer` header.
    pub referrer: Option<&'a str>,
    /// Two-letter country from a trusted proxy header.
    pub country: Option<&'a str>,
    /// False for HEAD: answer the same but count nothing.
    pub count: bool,
    /// `Accept-Language` header (for `language` rules).
    pub accept_language: Option<&'a str>,
    /// The request's query string without `?` (for `query` rules and `forward_query`).
    pub query: Option<&'a str>,
    /// The password the visitor gave, for a password-protected link.
    pub password: Option<&'a str>,
}

/// One click as the raw click log keeps it: classified, with no address of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    /// The click event's id (UUIDv7: it sorts by time).
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// A known bot or link-preview crawler.
    pub bot: bool,
    /// The referrer's host, or `direct`.
    pub referrer: String,
    /// Browser family.
    pub browser: String,
    /// Operating system family.
    pub os: String,
    /// `desktop`, `mobile`, `tablet` or `other`.
    pub device: String,
    /// Two-letter country, or `unknown`.
    pub country: String,
    /// The visitor hash of that day (salted daily, so days can't be joined), in hex.
    pub visitor: String,
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    /// The value (a host, a browser, …).
    pub value: String,
    /// Human clicks with that value.
    pub count: u64,
}

/// Clicks on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayClicks {
    /// The UTC day.
    pub date: NaiveDate,
    /// Human clicks.
    pub clicks: u64,
}

/// The analytics summary of one link over a window of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalyticsSummary {
    /// The link's code.
    pub short_code: String,
    /// Human clicks in the window.
    pub total_clicks: u64,
    /// Sum over the days of distinct visitors per day (the visitor hash rotates daily).
    pub unique_visitors: u64,
    /// Known bots and link-preview crawlers in the window.
    pub bot_clicks: u64,
    /// Every day of the window, oldest first, zeros included.
    pub clicks_by_day: Vec<DayClicks>,
    /// Top referrer hosts (`direct` when none).
    pub top_referrers: Vec<ValueCount>,
    /// Top browsers.
    pub browsers: Vec<ValueCount>,
    /// Top operating systems.
    pub operating_systems: Vec<ValueCount>,
    /// Top device classes.
    pub devices: Vec<ValueCount>,
    /// Top countries (`unknown` when not known).
    pub countries: Vec<ValueCount>,
}
