//! What backends store and exchange: stored records with their secrets' hashes, cache
//! entries, listing queries, click events on the bus and classified clicks. Embedders
//! who only use [`Shortener`](crate::Shortener) never see these.

use crate::model::{ApiKey, Cursor, Link, RedirectType, User, ValueCount};
use crate::rules::Rules;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use uuid::Uuid;

pub use crate::fold::{ClickFold, CombinationDelta, DayDelta};
pub use crate::visitor::Visitor;

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
    /// Blocked by an administrator, or its destination's host by the blocklist: 410.
    #[serde(default)]
    pub blocked: bool,
    /// Rules, query forwarding and password of a link that has any: such a redirect
    /// looks at the visit. `None` for a plain link, which pays nothing for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart: Option<Box<SmartTarget>>,
}

/// What a redirect of a link with rules, query forwarding or a password needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmartTarget {
    /// The rules, compiled.
    pub rules: Rules,
    /// Append the request's query string to the destination's.
    pub forward_query: bool,
    /// The password's Argon2id hash.
    pub password_hash: Option<Box<str>>,
}

impl SmartTarget {
    /// What of `link` a smart redirect needs; `None` for a plain link.
    pub fn of(link: &Link) -> Option<Box<SmartTarget>> {
        let plain =
            link.redirect_rules.is_empty() && !link.forward_query && link.password_hash.is_none();
        (!plain).then(|| {
            Box::new(SmartTarget {
                rules: Rules::from(link.redirect_rules.clone()),
                forward_query: link.forward_query,
                password_hash: link.password_hash.as_deref().map(Box::from),
            })
        })
    }
}

impl RedirectTarget {
    /// What a redirect needs of `link`, for the caches.
    pub fn of(link: &Link) -> Self {
        RedirectTarget {
            link_id: link.id,
            short_code: Arc::from(link.short_code.as_str()),
            location: Arc::from(link.original_url.as_str()),
            redirect_type: link.redirect_type,
            expires_at: link.expires_at,
            max_clicks: link.max_clicks,
            is_active: link.is_active,
            blocked: link.blocked,
            smart: SmartTarget::of(link),
        }
    }

    /// Every URL it may redirect to: its own and its rules'.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        let rules = self.smart.iter().flat_map(|s| s.rules.as_slice());
        std::iter::once(&*self.location).chain(rules.map(|r| r.url.as_str()))
    }
}

/// A cache entry: a link, or the knowledge that a code does not exist (negative caching).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheEntry {
    /// The code exists.
    Found(Arc<RedirectTarget>),
    /// The code does not exist (cached briefly).
    Missing,
}

/// A listing request: one owner's links, newest or most clicked first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkQuery {
    /// Whose links; `None`: everybody's, anonymous ones included (administrators).
    pub owner_id: Option<Uuid>,
    /// Only links of this domain (`Some(None)`: the default domain); every domain when
    /// `None`.
    pub domain: Option<Option<String>>,
    /// Only blocked (`true`) or unblocked (`false`) links.
    pub blocked: Option<bool>,
    /// Page size, 1–100.
    pub limit: u32,
    /// Continue after this position (its `clicks` is set when `sort` is
    /// [`LinkSort::Clicks`](crate::LinkSort::Clicks)).
    pub cursor: Option<Cursor>,
    /// The order.
    pub sort: crate::LinkSort,
    /// Only links carrying this tag (exact match).
    pub tag: Option<String>,
    /// Only links whose URL, title or code contains this text (case-insensitive).
    pub text: Option<String>,
}

/// What deleting a domain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDeletion {
    /// It is gone.
    Deleted,
    /// Links use it: nothing changed.
    InUse,
    /// No such domain.
    Missing,
}

/// The key of a link in shared caches and invalidations: the code on the default domain
/// (so keys of earlier versions still mean the same), `host/code` on another. A host
/// never holds a `/`, a code never does either.
pub fn cache_key<'a>(domain: Option<&str>, short_code: &'a str) -> std::borrow::Cow<'a, str> {
    match domain {
        None => std::borrow::Cow::Borrowed(short_code),
        Some(host) => std::borrow::Cow::Owned(format!("{host}/{short_code}")),
    }
}

/// What [`cache_key`] made: `(domain, code)`.
pub fn split_cache_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((host, code)) => (Some(host), code),
        None => (None, key),
    }
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

/// A refresh token's rotation, as the service asks a store for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation<'a> {
    /// The successor to store.
    pub new: &'a RefreshTokenRecord,
    /// The successor's token sealed under the old token (only the old token opens it):
    /// what presenting the old token again within `grace` gives back.
    pub sealed_successor: &'a [u8],
    /// The time of the rotation.
    pub now: DateTime<Utc>,
    /// How long after its rotation the old token still gets its successor back (two tabs
    /// refreshing at once) instead of counting as reuse.
    pub grace: chrono::Duration,
}

/// What presenting a refresh token for rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was live: it is now dead and its successor stored.
    Rotated {
        /// Whose token.
        user_id: Uuid,
    },
    /// The token was rotated within the grace period: nothing changes, and the successor
    /// sealed then comes back.
    Recent {
        /// Whose token.
        user_id: Uuid,
        /// [`Rotation::sealed_successor`] of that rotation.
        sealed_successor: Vec<u8>,
    },
    /// The token had already been used (before the grace period) or revoked: the whole
    /// family is now revoked.
    Reused,
    /// Unknown, expired, or its family was revoked.
    Invalid,
}

/// An API key as stored: the listing plus the hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key.
    pub key: ApiKey,
    /// SHA-256 of the secret, hex.
    pub key_hash: String,
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
    pub visitor: Visitor,
    /// `User-Agent` (at most 512 bytes), classified by the worker.
    pub user_agent: Option<String>,
    /// The host of the `Referer` (empty when it had none); events of earlier versions may
    /// carry the whole URL.
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
    /// UTC day of the click: `at`'s date (stores may compute it from `at`).
    pub day: NaiveDate,
    /// Daily visitor hash (for unique visitors).
    pub visitor: Visitor,
    /// Known bot or link-preview crawler.
    pub is_bot: bool,
    /// Referrer host, or `direct` (static, as `unknown` is: most clicks carry no
    /// referrer, and then no copy of one).
    pub referrer: Cow<'static, str>,
    /// Browser family. The classifier's families are static text, so a click borrows
    /// them instead of carrying copies (three allocations a click less).
    pub browser: Cow<'static, str>,
    /// Operating system family.
    pub os: Cow<'static, str>,
    /// `desktop`, `mobile`, `tablet`, `bot` or `unknown`.
    pub device: Cow<'static, str>,
    /// Two-letter country or `unknown`.
    pub country: Cow<'static, str>,
    /// Already counted in `click_count` at redirect time.
    pub counted_at_redirect: bool,
    /// When it happened (the click log keeps it).
    pub at: DateTime<Utc>,
}

impl ClassifiedClick {
    /// The click as the raw click log shows it.
    pub fn to_click(&self) -> crate::model::Click {
        crate::model::Click {
            id: self.event_id,
            at: self.at,
            bot: self.is_bot,
            referrer: self.referrer.to_string(),
            browser: self.browser.to_string(),
            os: self.os.to_string(),
            device: self.device.to_string(),
            country: self.country.to_string(),
            visitor: self.visitor.to_string(),
        }
    }
}

/// A page request of one link's raw clicks, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickQuery {
    /// The link.
    pub link_id: Uuid,
    /// Only clicks at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only clicks before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Continue after this click (the last id of the previous page).
    pub after: Option<Uuid>,
    /// Page size, 1–1000.
    pub limit: u32,
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

    /// The dimension's position in [`Dimension::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

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

/// What an analytics store returns for a window: non-empty days and per-dimension totals
/// over human clicks. The service fills in zero days and ranks the breakdowns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupWindow {
    /// Days with any click, in any order.
    pub days: Vec<DailyRollup>,
    /// For each dimension, every value with its human-click count, in any order.
    pub breakdowns: Vec<(Dimension, Vec<ValueCount>)>,
}
