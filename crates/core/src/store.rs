//! Storage traits: links, users (with refresh tokens and API keys) and analytics.
//!
//! Implementations must follow the `# Contract` sections; `hoplink::testing` (feature
//! `testing`) checks them, and every backend runs it.

use crate::error::Result;
use crate::model::{
    ApiKey, BlockedHost, Click, Cursor, Domain, DomainPatch, Link, LinkPatch, Page, Report,
    ReportStatus, User,
};
use crate::records::{
    ApiKeyRecord, ClassifiedClick, ClickBudget, ClickQuery, DomainDeletion, LinkQuery,
    RecordOutcome, RefreshTokenRecord, RollupWindow, RotateOutcome, Rotation, UserRecord,
};
use crate::webhooks::{
    Delivery, DeliveryJob, EnqueueOutcome, Webhook, WebhookEvent, WebhookPatch, WebhookRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt::Debug;
use uuid::Uuid;

/// Where links live.
///
/// # Contract
/// - `insert` fails with `Error::Conflict { code: "alias_taken" }` when the short code is
///   taken without regard to ASCII case, atomically: of many concurrent inserts of one
///   code exactly one succeeds. A code stays taken after its link is deleted, for good: a
///   short URL printed somewhere never leads elsewhere, and no two codes differ only by
///   case (a look-alike).
/// - Codes are per domain: the same code may exist on two domains as two links; the
///   rules above hold within a domain (`None` is the default domain).
/// - `get_by_code` matches the domain and the code exactly (case-sensitive), and only
///   live links.
/// - Lookups and listings never fail on text no code, tag or title can hold (a NUL
///   character): they find nothing.
/// - `update` applies [`LinkPatch::apply`] and returns the new link; `delete` returns the
///   deleted link. Both return `None` for an unknown id, and neither touches `click_count`.
/// - `list` returns the owner's links (everybody's when the query names no owner) ordered
///   by `(created_at, id)` descending, or by `(click_count, id)` descending for
///   [`LinkSort::Clicks`](crate::LinkSort::Clicks), starting strictly after the cursor
///   (`(cursor.clicks, cursor.id)` in the latter order), filtered by
///   domain, blocked state, tag (exact) and text (case-insensitive substring of URL,
///   title or code); `next_cursor` is set only when more items exist.
/// - `consume_click` increments `click_count` only while it is below `max_clicks`, atomically
///   (no budget is ever exceeded under concurrency). Links without `max_clicks` always count.
/// - Timestamps come back exactly as given (they are given at microsecond precision).
#[async_trait]
pub trait LinkStore: Send + Sync + Debug {
    /// Stores a new link.
    async fn insert(&self, link: &Link) -> Result<()>;
    /// The link with this code on this domain (`None`: the default domain).
    async fn get_by_code(&self, domain: Option<&str>, short_code: &str) -> Result<Option<Link>>;
    /// The link with this id.
    async fn get(&self, id: Uuid) -> Result<Option<Link>>;
    /// One page of an owner's links.
    async fn list(&self, query: &LinkQuery) -> Result<Page<Link>>;
    /// Changes a link.
    async fn update(&self, id: Uuid, patch: &LinkPatch, now: DateTime<Utc>)
    -> Result<Option<Link>>;
    /// Deletes a link; its code stays taken.
    async fn delete(&self, id: Uuid) -> Result<Option<Link>>;
    /// Counts one click against the link's budget, exactly.
    async fn consume_click(&self, id: Uuid) -> Result<ClickBudget>;
    /// Whether the store answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Users, their refresh tokens and their API keys.
///
/// # Contract
/// - `create_user` fails with `Error::Conflict { code: "email_taken" }` when another user
///   has the same email without regard to ASCII case; atomically.
/// - `rotate_refresh_token`: when `old_hash` is live (not used, not revoked, not expired,
///   family not revoked) it is marked used at `now` with the sealed successor, and `new`
///   stored, atomically (`Rotated`); when it was used within `grace` before `now`, nothing
///   changes and the sealed successor comes back (`Recent`); when it was used earlier, every
///   token of its family is revoked (`Reused`); otherwise `Invalid`. Of concurrent
///   rotations of one token exactly one is `Rotated`, the others `Recent`.
/// - Lookups never fail on text no user can have (an email with a NUL character): they
///   find nothing.
/// - `revoke_family` makes every token of the family dead; `family_active` is false after.
/// - API keys: `api_key_by_hash` finds only keys not revoked; `revoke_api_key` only revokes
///   the owner's key and answers whether it did.
#[async_trait]
pub trait UserStore: Send + Sync + Debug {
    /// Stores a new user.
    async fn create_user(&self, record: &UserRecord) -> Result<()>;
    /// Looks a user up by email, without regard to case.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    /// Looks a user up by id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>>;
    /// Stores the first refresh token of a login.
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()>;
    /// Exchanges a refresh token for its successor.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RotateOutcome>;
    /// A token by its hash, live or dead.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Revokes every token of a login.
    async fn revoke_family(&self, family_id: Uuid) -> Result<()>;
    /// Whether a login is still valid (not revoked).
    async fn family_active(&self, family_id: Uuid) -> Result<bool>;
    /// Stores a new API key.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// The live key with this hash.
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    /// A user's live keys, newest first.
    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>>;
    /// Revokes a user's key; false when the user has no such live key.
    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<bool>;
    /// Whether the store answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// The short domains of a deployment (the default one is implicit and never stored).
///
/// # Contract
/// - `insert_domain` fails with `Error::Conflict { code: "domain_exists" }` when the host
///   exists, atomically.
/// - `update_domain` applies [`DomainPatch::apply`] and returns the domain; `None` for an
///   unknown host.
/// - `delete_domain` deletes a domain no link uses, atomically with respect to inserts of
///   links on it (a link inserted concurrently either makes it `InUse` or fails).
/// - `list_domains` returns every domain, oldest first.
#[async_trait]
pub trait DomainStore: Send + Sync + Debug {
    /// Every domain, oldest first.
    async fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Adds a domain.
    async fn insert_domain(&self, domain: &Domain) -> Result<()>;
    /// Changes a domain's redirects.
    async fn update_domain(&self, host: &str, patch: &DomainPatch) -> Result<Option<Domain>>;
    /// Deletes a domain no link uses.
    async fn delete_domain(&self, host: &str) -> Result<DomainDeletion>;
}

/// Moderation: the host blocklist and abuse reports.
///
/// # Contract
/// - `insert_blocked_host` fails with `Error::Conflict { code: "pattern_exists" }` when
///   the pattern is listed; `delete_blocked_host` answers whether it deleted one.
/// - `list_blocked_hosts` returns every pattern, newest first.
/// - `list_reports` returns the reports of a status ordered by `(created_at, id)`
///   descending, starting strictly after the cursor; `next_cursor` is set only when more
///   exist. `set_report_status` returns the changed report, `None` for an unknown id.
#[async_trait]
pub trait ModerationStore: Send + Sync + Debug {
    /// Every blocklist pattern, newest first.
    async fn list_blocked_hosts(&self) -> Result<Vec<BlockedHost>>;
    /// Adds a pattern.
    async fn insert_blocked_host(&self, host: &BlockedHost) -> Result<()>;
    /// Removes a pattern.
    async fn delete_blocked_host(&self, id: Uuid) -> Result<bool>;
    /// Files a report.
    async fn insert_report(&self, report: &Report) -> Result<()>;
    /// A page of the reports of one status, newest first.
    async fn list_reports(
        &self,
        status: ReportStatus,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<Report>>;
    /// Moves a report to another status.
    async fn set_report_status(&self, id: Uuid, status: ReportStatus) -> Result<Option<Report>>;
}

/// Click analytics in daily rollups.
///
/// # Contract
/// - `record` stores each event at most once, keyed by `event_id`: replays of an event
///   already stored are counted as duplicates and change nothing. For each new human
///   click not `counted_at_redirect`, the link's `click_count` grows by one (in the same
///   atomic step, so a crash can neither lose nor double it). Events of unknown links are
///   recorded in the rollups but touch no link.
/// - `rollups` reads the daily rollups of `[from, to]` (UTC days, inclusive): its cost
///   depends on the number of days, not of clicks.
/// - Unique visitors are distinct `visitor` values per link and day, among human clicks.
/// - Every new click, bots included, is kept in the raw click log, which `clicks` pages
///   newest first (by event id, a UUIDv7) within `[from, to)`, after the cursor. A store
///   may bound the log (the memory store keeps each link's latest clicks); a durable one
///   keeps everything until `prune_clicks` removes what is older than an instant, by
///   whole chunks where it can (so it may keep up to a day more).
#[async_trait]
pub trait AnalyticsStore: Send + Sync + Debug {
    /// Records a batch of classified clicks.
    async fn record(&self, clicks: &[ClassifiedClick]) -> Result<RecordOutcome>;
    /// Reads a link's rollups over a window of days.
    async fn rollups(&self, link_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<RollupWindow>;
    /// A page of a link's raw clicks, newest first.
    async fn clicks(&self, query: &ClickQuery) -> Result<Vec<Click>>;
    /// Removes raw clicks older than `before`; returns how many chunks (or clicks) went.
    async fn prune_clicks(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Whether the store answers.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Where webhooks, their pending deliveries and their deliveries log live.
///
/// # Contract
/// - `webhooks` lists an owner's webhooks newest first; `subscribed` the enabled ones that
///   hear about `event` (of one owner, or of every owner for `None`).
/// - `update_webhook` applies [`WebhookPatch::apply`]; `delete_webhook` removes the
///   webhook with its pending jobs and its log. Both answer `None`/`false` for an unknown id.
/// - `enqueue` keeps one job per `(webhook_id, event_id)`: a job enqueued again is a
///   duplicate, never a second delivery. A store with a bounded queue refuses what is
///   past it as `dropped`.
/// - `claim_jobs` hands out jobs due at `now` (at most `limit`, oldest due first) and
///   makes them due again only after `lease`: of instances claiming at once, each job
///   goes to one. Jobs of disabled or deleted webhooks are never handed out.
/// - `finish_job` records the attempt in the log (the newest
///   [`DELIVERY_LOG`](crate::webhooks::DELIVERY_LOG) kept per webhook), resets the
///   webhook's failure count on success or adds one on failure, disabling it at
///   [`DISABLE_AFTER`](crate::webhooks::DISABLE_AFTER); then removes the job, or, with
///   `retry_at`, makes it due then at the next attempt. Returns the webhook as it is now.
/// - `deliveries` lists a webhook's log newest first.
#[async_trait]
pub trait WebhookStore: Send + Sync + Debug {
    /// Saves a new webhook.
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<()>;
    /// An owner's webhooks, newest first.
    async fn webhooks(&self, owner_id: Uuid) -> Result<Vec<WebhookRecord>>;
    /// One webhook.
    async fn webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>>;
    /// Changes a webhook.
    async fn update_webhook(&self, id: Uuid, patch: &WebhookPatch)
    -> Result<Option<WebhookRecord>>;
    /// Deletes a webhook, its jobs and its log.
    async fn delete_webhook(&self, id: Uuid) -> Result<bool>;
    /// Enabled webhooks that hear about `event`.
    async fn subscribed(
        &self,
        owner_id: Option<Uuid>,
        event: WebhookEvent,
    ) -> Result<Vec<WebhookRecord>>;
    /// Queues deliveries.
    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<EnqueueOutcome>;
    /// Takes due jobs for a while.
    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>>;
    /// Records an attempt and retires or reschedules its job.
    async fn finish_job(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Webhook>>;
    /// A webhook's latest deliveries, newest first.
    async fn deliveries(&self, webhook_id: Uuid, limit: usize) -> Result<Vec<Delivery>>;
    /// Jobs waiting, due or not.
    async fn pending_jobs(&self) -> Result<u64>;
}
