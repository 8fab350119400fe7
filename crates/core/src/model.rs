//! Domain types shared by the service, the traits and every backend.

use crate::error::{Error, Result};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
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
}

impl Link {
    /// What a redirect needs of this link, for the caches.
    pub fn redirect_target(&self) -> RedirectTarget {
        RedirectTarget {
            link_id: self.id,
            short_code: Arc::from(self.short_code.as_str()),
            location: Arc::from(self.original_url.as_str()),
            redirect_type: self.redirect_type,
            expires_at: self.expires_at,
            max_clicks: self.max_clicks,
            is_active: self.is_active,
        }
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
        link.updated_at = now;
    }
}

/// The part of a link a redirect needs; this is what the caches hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectTarget {
    /// The link's id (clicks are recorded against it).
    pub link_id: Uuid,
    /// The link's code.
    pub short_code: Arc<str>,
    /// The `Location` to answer with.
    pub location: Arc<str>,
    /// The status to answer with.
    pub redirect_type: RedirectType,
    /// After this instant: 410.
    pub expires_at: Option<DateTime<Utc>>,
    /// Links with a budget are checked against the store on every click.
    pub max_clicks: Option<u64>,
    /// When false: 410.
    pub is_active: bool,
}

/// A cache entry: a link, or the knowledge that a code does not exist (negative caching).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheEntry {
    /// The code exists.
    Found(Arc<RedirectTarget>),
    /// The code does not exist (cached briefly).
    Missing,
}

/// Position in a listing: the (created_at, id) of the last item seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last item returned.
    pub created_at: DateTime<Utc>,
    /// `id` of the last item returned.
    pub id: Uuid,
}

impl Cursor {
    /// The cursor that continues after `link`.
    pub fn after(link: &Link) -> Self {
        Cursor {
            created_at: link.created_at,
            id: link.id,
        }
    }

    /// Opaque text form for clients.
    pub fn encode(&self) -> String {
        let raw = format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses [`Cursor::encode`]'s output; anything else is an `invalid cursor` error.
    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", "invalid_cursor", "not a cursor from this API");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let raw = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        Ok(Cursor {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        })
    }
}

/// A listing request: one owner's links, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkQuery {
    /// Whose links.
    pub owner_id: Uuid,
    /// Page size, 1–100.
    pub limit: u32,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
    /// Only links carrying this tag (exact match).
    pub tag: Option<String>,
    /// Only links whose URL, title or code contains this text (case-insensitive).
    pub text: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<Cursor>,
}

/// Whether a click fit in a link's `max_clicks` budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickBudget {
    /// Counted; the redirect may proceed.
    Counted,
    /// The budget was already used up; nothing counted.
    Exhausted,
    /// The link does not exist (deleted meanwhile).
    Missing,
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

/// A user with their password hash, as stores keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// A refresh token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// Identifier.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The login it belongs to; every rotation stays in the family.
    pub family_id: Uuid,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token for rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was live: it is now dead and its successor stored.
    Rotated {
        /// Whose token.
        user_id: Uuid,
    },
    /// The token had already been used or revoked: the whole family is now revoked.
    Reused,
    /// Unknown, expired, or its family was revoked.
    Invalid,
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

/// An API key as stored: the listing plus the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key.
    pub key: ApiKey,
    /// SHA-256 of the secret, hex.
    pub key_hash: String,
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
}

/// A click as it travels on the event bus. Raw IP addresses never leave the process:
/// only a salted, daily-rotating visitor hash does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickEvent {
    /// Unique id (UUIDv7), the de-duplication key.
    pub id: Uuid,
    /// The link clicked.
    pub link_id: Uuid,
    /// Its code (partition key on buses).
    pub short_code: String,
    /// When the redirect happened.
    pub occurred_at: DateTime<Utc>,
    /// Salted hash of client address and user agent, rotated daily; empty when unknown.
    pub visitor: String,
    /// `User-Agent`, classified by the worker.
    pub user_agent: Option<String>,
    /// `Referer`.
    pub referrer: Option<String>,
    /// Country code, when a trusted proxy gave one.
    pub country: Option<String>,
    /// True when the redirect already counted it against `max_clicks`
    /// (so the worker must not add it to `click_count` again).
    pub counted_at_redirect: bool,
}

/// A click after classification, as analytics stores record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedClick {
    /// De-duplication key.
    pub event_id: Uuid,
    /// The link clicked.
    pub link_id: Uuid,
    /// UTC day of the click.
    pub day: NaiveDate,
    /// Daily visitor hash (for unique visitors).
    pub visitor: String,
    /// Known bot or link-preview crawler.
    pub is_bot: bool,
    /// Referrer host, or `direct`.
    pub referrer: String,
    /// Browser family.
    pub browser: String,
    /// Operating system family.
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub device: String,
    /// Two-letter country or `unknown`.
    pub country: String,
    /// Already counted in `click_count` at redirect time.
    pub counted_at_redirect: bool,
}

/// What a batch write of clicks did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    /// Events stored for the first time.
    pub recorded: u64,
    /// Events already stored before (replays), ignored.
    pub duplicates: u64,
}

/// One day of a link's rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyRollup {
    /// The UTC day.
    pub date: NaiveDate,
    /// Human clicks.
    pub clicks: u64,
    /// Bot clicks.
    pub bot_clicks: u64,
    /// Distinct human visitors that day.
    pub unique_visitors: u64,
}

/// A dimension of the breakdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// Referrer host.
    Referrer,
    /// Browser family.
    Browser,
    /// Operating system.
    Os,
    /// Device class.
    Device,
    /// Country.
    Country,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 5] = [
        Dimension::Referrer,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Device,
        Dimension::Country,
    ];

    /// Stable name, used by stores as a column or key value.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Referrer => "referrer",
            Dimension::Browser => "browser",
            Dimension::Os => "os",
            Dimension::Device => "device",
            Dimension::Country => "country",
        }
    }

    /// The classified click's value for this dimension.
    pub fn of(self, click: &ClassifiedClick) -> &str {
        match self {
            Dimension::Referrer => &click.referrer,
            Dimension::Browser => &click.browser,
            Dimension::Os => &click.os,
            Dimension::Device => &click.device,
            Dimension::Country => &click.country,
        }
    }
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    /// The value (a host, a browser, …).
    pub value: String,
    /// Human clicks with that value.
    pub count: u64,
}

/// What an analytics store returns for a window: non-empty days and per-dimension totals
/// over human clicks. The service fills in zero days and ranks the breakdowns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupWindow {
    /// Days with any click, in any order.
    pub days: Vec<DailyRollup>,
    /// For each dimension, every value with its human-click count, in any order.
    pub breakdowns: Vec<(Dimension, Vec<ValueCount>)>,
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
