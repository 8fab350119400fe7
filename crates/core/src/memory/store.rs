use super::{read, write};
use crate::error::{Error, Result};
use crate::model::{ApiKey, Click, Link, LinkPatch, LinkSort, Page, User, ValueCount};
use crate::model::{BlockedHost, Cursor, Domain, DomainPatch, Report, ReportStatus};
use crate::records::{
    ApiKeyRecord, ClassifiedClick, ClickBudget, DailyRollup, Dimension, LinkQuery, RecordOutcome,
    RefreshTokenRecord, RollupWindow, RotateOutcome, Rotation, UserRecord,
};
use crate::records::{ClickQuery, DomainDeletion, Visitor, cache_key};
use crate::store::{AnalyticsStore, DomainStore, LinkStore, ModerationStore, UserStore};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeSet;
use std::sync::RwLock;
use uuid::Uuid;

// foldhash: several times faster than SipHash and still seeded per process, so keys that
// visitors control (referrers, user agents) cannot be chosen to collide.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Links, users and analytics in one process.
///
/// Links and analytics share one lock so that recording a click and growing the link's
/// `click_count` are one atomic step, as [`AnalyticsStore`] requires.
///
/// De-duplication remembers the most recent event ids, at least
/// [`DEFAULT_DEDUP_HORIZON`] of them (two generations), so memory stays bounded under
/// sustained traffic; redeliveries come from unacknowledged batches, far within it.
#[derive(Debug)]
pub struct MemoryStore {
    links: RwLock<LinkState>,
    users: RwLock<UserState>,
    pub(super) webhooks: std::sync::Mutex<super::webhooks::WebhookState>,
    dedup_horizon: usize,
}

/// Event ids remembered for de-duplication, at least.
pub const DEFAULT_DEDUP_HORIZON: usize = 1_000_000;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_dedup_horizon(DEFAULT_DEDUP_HORIZON)
    }
}

#[derive(Debug, Default)]
struct LinkState {
    by_id: HashMap<Uuid, Link>,
    /// Live links by their exact [`cache_key`] (domain and code).
    by_code: HashMap<String, Uuid>,
    /// Every key ever taken, live or deleted, in lower case: codes are never given twice.
    taken: HashSet<String>,
    by_owner: HashMap<Uuid, BTreeSet<(DateTime<Utc>, Uuid)>>,
    /// Every link, for listings of all owners.
    all: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// The domains besides the default, and how many links each has.
    domains: Vec<(Domain, usize)>,
    blocked_hosts: Vec<BlockedHost>,
    reports: HashMap<Uuid, Report>,
    /// Event ids recorded, newest generation first.
    seen_events: [std::collections::HashSet<Uuid, EventIdHashing>; 2],
    days: HashMap<(Uuid, NaiveDate), DayStats>,
    /// Each link's latest raw clicks, in arrival order.
    /// Kept as recorded (a click's families are borrowed, not copied) and turned into
    /// [`Click`]s when read.
    click_log: HashMap<Uuid, std::collections::VecDeque<ClassifiedClick>>,
    /// The link of every click in `click_log`, oldest first: past [`CLICK_LOG_CAPACITY`]
    /// the oldest click of all goes, which is the front of its link's log.
    click_order: std::collections::VecDeque<Uuid>,
}

/// Raw clicks the memory store keeps, of all links together (the latest): the log of a
/// store that lives in memory is bounded like the rest of it.
pub const CLICK_LOG_CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct DayStats {
    clicks: u64,
    bot_clicks: u64,
    visitors: HashSet<u64>,
    breakdown: Breakdown,
}

/// Event ids are UUIDs whose last 8 bytes are random (v7 and v4 alike): they are their
/// own hash, which saves hashing on the busiest table of the store.
#[derive(Debug, Default, Clone, Copy)]
struct EventIdHashing;

impl std::hash::BuildHasher for EventIdHashing {
    type Hasher = EventIdHasher;
    fn build_hasher(&self) -> EventIdHasher {
        EventIdHasher(0)
    }
}

#[derive(Debug, Default)]
struct EventIdHasher(u64);

impl std::hash::Hasher for EventIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Folds in everything written, so any key shape still hashes correctly; for a
        // UUID the last 8 random bytes dominate.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Human clicks per dimension value of one link and day. Most link-days see a handful of
/// values, kept in one small vector (one cache line or two, where a map per dimension
/// costs a cache miss per lookup); past `SMALL_BREAKDOWN` values it becomes a map.
#[derive(Debug)]
enum Breakdown {
    Small(Vec<(Dimension, Box<str>, u64)>),
    /// One map per dimension, in [`Dimension::ALL`]'s order: a value already counted
    /// is found by its text, without a key made for the lookup.
    Large(Box<[HashMap<Box<str>, u64>; 5]>),
}

const SMALL_BREAKDOWN: usize = 32;

impl Default for Breakdown {
    fn default() -> Self {
        Breakdown::Small(Vec::new())
    }
}

impl Breakdown {
    fn add(&mut self, dim: Dimension, value: &str) {
        match self {
            Breakdown::Small(entries) => {
                if let Some(entry) = entries
                    .iter_mut()
                    .find(|(d, v, _)| *d == dim && &**v == value)
                {
                    entry.2 += 1;
                } else if entries.len() < SMALL_BREAKDOWN {
                    entries.push((dim, value.into(), 1));
                } else {
                    let mut maps: Box<[HashMap<Box<str>, u64>; 5]> = Box::default();
                    for (d, v, n) in entries.drain(..) {
                        maps[d.index()].insert(v, n);
                    }
                    maps[dim.index()].insert(value.into(), 1);
                    *self = Breakdown::Large(maps);
                }
            }
            Breakdown::Large(maps) => match maps[dim.index()].get_mut(value) {
                Some(n) => *n += 1,
                None => {
                    maps[dim.index()].insert(value.into(), 1);
                }
            },
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (Dimension, &str, u64)> + '_> {
        match self {
            Breakdown::Small(entries) => Box::new(entries.iter().map(|(d, v, n)| (*d, &**v, *n))),
            Breakdown::Large(maps) => Box::new(
                Dimension::ALL
                    .into_iter()
                    .zip(maps.iter())
                    .flat_map(|(d, map)| map.iter().map(move |(v, n)| (d, &**v, *n))),
            ),
        }
    }
}

#[derive(Debug, Default)]
struct UserState {
    by_id: HashMap<Uuid, UserRecord>,
    by_email: HashMap<String, Uuid>,
    refresh: HashMap<String, RefreshState>,
    revoked_families: HashSet<Uuid>,
    api_keys: HashMap<Uuid, ApiKeyRecord>,
    api_by_hash: HashMap<String, Uuid>,
}

#[derive(Debug)]
struct RefreshState {
    record: RefreshTokenRecord,
    /// When it was rotated, and the successor sealed then.
    used: Option<(DateTime<Utc>, Vec<u8>)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that remembers at least `events` recent event ids for
    /// de-duplication (and at most twice as many).
    pub fn with_dedup_horizon(events: usize) -> Self {
        MemoryStore {
            links: RwLock::default(),
            users: RwLock::default(),
            webhooks: std::sync::Mutex::default(),
            dedup_horizon: events.max(1),
        }
    }

    /// Number of links stored.
    pub fn link_count(&self) -> usize {
        read(&self.links).by_id.len()
    }
}

fn matches(link: &Link, query: &LinkQuery, text: Option<&str>) -> bool {
    if query.domain.as_ref().is_some_and(|d| *d != link.domain)
        || query.blocked.is_some_and(|b| b != link.blocked)
    {
        return false;
    }
    if let Some(tag) = &query.tag
        && !link.tags.iter().any(|t| t == tag)
    {
        return false;
    }
    match text {
        None => true,
        Some(text) => [
            Some(link.original_url.as_str()),
            link.title.as_deref(),
            Some(link.short_code.as_str()),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(text)),
    }
}

#[async_trait]
impl LinkStore for MemoryStore {
    async fn insert(&self, link: &Link) -> Result<()> {
        let mut state = write(&self.links);
        let key = cache_key(link.domain.as_deref(), &link.short_code);
        let folded = key.to_ascii_lowercase();
        if state.taken.contains(&folded) {
            return Err(Error::Conflict {
                code: "alias_taken",
                message: format!("short code {:?} is already taken", link.short_code),
            });
        }
        if state.by_id.contains_key(&link.id) {
            return Err(Error::backend(
                "memory",
                format!("duplicate link id {}", link.id),
            ));
        }
        if let Some(host) = &link.domain {
            match state.domains.iter_mut().find(|(d, _)| d.host == *host) {
                Some((_, count)) => *count += 1,
                None => {
                    return Err(Error::invalid(
                        "domain",
                        "unknown_domain",
                        format!("{host:?} is not a domain of this deployment"),
                    ));
                }
            }
        }
        state.taken.insert(folded);
        state.all.insert((link.created_at, link.id));
        state.by_code.insert(key.into_owned(), link.id);
        if let Some(owner) = link.owner_id {
            state
                .by_owner
                .entry(owner)
                .or_default()
                .insert((link.created_at, link.id));
        }
        state.by_id.insert(link.id, link.clone());
        Ok(())
    }

    async fn get_by_code(&self, domain: Option<&str>, short_code: &str) -> Result<Option<Link>> {
        let state = read(&self.links);
        Ok(state
            .by_code
            .get(cache_key(domain, short_code).as_ref())
            .and_then(|id| state.by_id.get(id))
            .cloned())
    }

    async fn get(&self, id: Uuid) -> Result<Option<Link>> {
        Ok(read(&self.links).by_id.get(&id).cloned())
    }

    async fn list(&self, query: &LinkQuery) -> Result<Page<Link>> {
        let state = read(&self.links);
        let index = match query.owner_id {
            None => &state.all,
            Some(owner) => match state.by_owner.get(&owner) {
                Some(index) => index,
                None => {
                    return Ok(Page {
                        items: Vec::new(),
                        next_cursor: None,
                    });
                }
            },
        };
        let text = query.text.as_ref().map(|t| t.to_lowercase());
        let limit = query.limit.max(1) as usize;
        if query.sort == LinkSort::Clicks {
            // No index by clicks here: counts move with every click, and the memory
            // store holds one deployment's worth of links.
            let after = query.cursor.map(|c| (c.clicks.unwrap_or(u64::MAX), c.id));
            let mut matching: Vec<&Link> = index
                .iter()
                .filter_map(|(_, id)| state.by_id.get(id))
                .filter(|link| matches(link, query, text.as_deref()))
                .filter(|link| after.is_none_or(|a| (link.click_count, link.id) < a))
                .collect();
            matching.sort_unstable_by_key(|l| std::cmp::Reverse((l.click_count, l.id)));
            let more = matching.len() > limit;
            let items: Vec<Link> = matching.into_iter().take(limit).cloned().collect();
            let next_cursor = more
                .then(|| items.last().map(|l| Cursor::after(l, LinkSort::Clicks)))
                .flatten();
            return Ok(Page { items, next_cursor });
        }
        let candidates: Box<dyn Iterator<Item = &(DateTime<Utc>, Uuid)>> = match query.cursor {
            Some(c) => Box::new(index.range(..(c.created_at, c.id)).rev()),
            None => Box::new(index.iter().rev()),
        };
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        for (_, id) in candidates {
            let Some(link) = state.by_id.get(id) else {
                continue;
            };
            if !matches(link, query, text.as_deref()) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(link.clone());
        }
        let next_cursor = more
            .then(|| items.last().map(|l| Cursor::after(l, LinkSort::Newest)))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn update(
        &self,
        id: Uuid,
        patch: &LinkPatch,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>> {
        let mut state = write(&self.links);
        Ok(state.by_id.get_mut(&id).map(|link| {
            patch.apply(link, now);
            link.clone()
        }))
    }

    async fn delete(&self, id: Uuid) -> Result<Option<Link>> {
        let mut state = write(&self.links);
        let Some(link) = state.by_id.remove(&id) else {
            return Ok(None);
        };
        state
            .by_code
            .remove(cache_key(link.domain.as_deref(), &link.short_code).as_ref());
        state.all.remove(&(link.created_at, link.id));
        if let Some(host) = &link.domain
            && let Some((_, count)) = state.domains.iter_mut().find(|(d, _)| d.host == *host)
        {
            *count -= 1;
        }
        if let Some(owner) = link.owner_id
            && let Some(index) = state.by_owner.get_mut(&owner)
        {
            index.remove(&(link.created_at, link.id));
        }
        Ok(Some(link))
    }

    async fn consume_click(&self, id: Uuid) -> Result<ClickBudget> {
        let mut state = write(&self.links);
        let Some(link) = state.by_id.get_mut(&id) else {
            return Ok(ClickBudget::Missing);
        };
        if link.max_clicks.is_some_and(|max| link.click_count >= max) {
            return Ok(ClickBudget::Exhausted);
        }
        link.click_count += 1;
        Ok(ClickBudget::Counted)
    }
}

#[async_trait]
impl AnalyticsStore for MemoryStore {
    async fn record(&self, clicks: &[ClassifiedClick]) -> Result<RecordOutcome> {
        let mut state = write(&self.links);
        let mut outcome = RecordOutcome::default();
        for click in clicks {
            if state.seen_events[0].len() >= self.dedup_horizon {
                // The older generation is forgotten; the newer one becomes it.
                state.seen_events.swap(0, 1);
                state.seen_events[0].clear();
            }
            if state.seen_events[1].contains(&click.event_id)
                || !state.seen_events[0].insert(click.event_id)
            {
                outcome.duplicates += 1;
                continue;
            }
            outcome.recorded += 1;
            state
                .click_log
                .entry(click.link_id)
                .or_default()
                .push_back(click.clone());
            state.click_order.push_back(click.link_id);
            if state.click_order.len() > CLICK_LOG_CAPACITY
                && let Some(oldest) = state.click_order.pop_front()
                && let Some(log) = state.click_log.get_mut(&oldest)
            {
                log.pop_front();
                if log.is_empty() {
                    state.click_log.remove(&oldest);
                }
            }
            let day = state.days.entry((click.link_id, click.day)).or_default();
            if click.is_bot {
                day.bot_clicks += 1;
                continue;
            }
            day.clicks += 1;
            if !click.visitor.is_empty() {
                // 64 bits identify a visitor among one link's visitors of one day with
                // negligible collision odds, in a quarter of the memory of the text.
                day.visitors.insert(visitor_key(&click.visitor));
            }
            for dim in Dimension::ALL {
                day.breakdown.add(dim, dim.of(click));
            }
            if !click.counted_at_redirect
                && let Some(link) = state.by_id.get_mut(&click.link_id)
            {
                link.click_count += 1;
            }
        }
        Ok(outcome)
    }

    async fn clicks(&self, query: &ClickQuery) -> Result<Vec<Click>> {
        let state = read(&self.links);
        let Some(log) = state.click_log.get(&query.link_id) else {
            return Ok(Vec::new());
        };
        let mut page: Vec<Click> = log
            .iter()
            .filter(|c| query.from.is_none_or(|from| c.at >= from))
            .filter(|c| query.to.is_none_or(|to| c.at < to))
            .filter(|c| query.after.is_none_or(|after| c.event_id < after))
            .map(ClassifiedClick::to_click)
            .collect();
        page.sort_unstable_by_key(|c| std::cmp::Reverse(c.id));
        page.truncate(query.limit as usize);
        Ok(page)
    }

    async fn prune_clicks(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut state = write(&self.links);
        let mut removed = 0;
        state.click_log.retain(|_, log| {
            let kept = log.len();
            log.retain(|c| c.at >= before);
            removed += (kept - log.len()) as u64;
            !log.is_empty()
        });
        // The order of what is left: by id, which is by time (UUIDv7).
        let mut left: Vec<(Uuid, Uuid)> = state
            .click_log
            .iter()
            .flat_map(|(link, log)| log.iter().map(move |c| (c.event_id, *link)))
            .collect();
        left.sort_unstable();
        state.click_order = left.into_iter().map(|(_, link)| link).collect();
        Ok(removed)
    }

    async fn rollups(&self, link_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<RollupWindow> {
        let state = read(&self.links);
        let mut window = RollupWindow::default();
        let mut totals: HashMap<(Dimension, &str), u64> = HashMap::default();
        for date in from.iter_days().take_while(|d| *d <= to) {
            let Some(day) = state.days.get(&(link_id, date)) else {
                continue;
            };
            window.days.push(DailyRollup {
                date,
                clicks: day.clicks,
                bot_clicks: day.bot_clicks,
                unique_visitors: day.visitors.len() as u64,
            });
            for (dim, value, count) in day.breakdown.iter() {
                *totals.entry((dim, value)).or_default() += count;
            }
        }
        for dim in Dimension::ALL {
            let values: Vec<ValueCount> = totals
                .iter()
                .filter(|((d, _), _)| *d == dim)
                .map(|((_, value), count)| ValueCount {
                    value: (*value).to_string(),
                    count: *count,
                })
                .collect();
            window.breakdowns.push((dim, values));
        }
        Ok(window)
    }
}

#[async_trait]
impl DomainStore for MemoryStore {
    async fn list_domains(&self) -> Result<Vec<Domain>> {
        Ok(read(&self.links)
            .domains
            .iter()
            .map(|(d, _)| d.clone())
            .collect())
    }

    async fn insert_domain(&self, domain: &Domain) -> Result<()> {
        let mut state = write(&self.links);
        if state.domains.iter().any(|(d, _)| d.host == domain.host) {
            return Err(Error::Conflict {
                code: "domain_exists",
                message: format!("domain {:?} exists", domain.host),
            });
        }
        state.domains.push((domain.clone(), 0));
        Ok(())
    }

    async fn update_domain(&self, host: &str, patch: &DomainPatch) -> Result<Option<Domain>> {
        let mut state = write(&self.links);
        Ok(state
            .domains
            .iter_mut()
            .find(|(d, _)| d.host == host)
            .map(|(d, _)| {
                patch.apply(d);
                d.clone()
            }))
    }

    async fn delete_domain(&self, host: &str) -> Result<DomainDeletion> {
        let mut state = write(&self.links);
        Ok(
            match state.domains.iter().position(|(d, _)| d.host == host) {
                None => DomainDeletion::Missing,
                Some(i) if state.domains[i].1 > 0 => DomainDeletion::InUse,
                Some(i) => {
                    state.domains.remove(i);
                    DomainDeletion::Deleted
                }
            },
        )
    }
}

#[async_trait]
impl ModerationStore for MemoryStore {
    async fn list_blocked_hosts(&self) -> Result<Vec<BlockedHost>> {
        let mut hosts = read(&self.links).blocked_hosts.clone();
        hosts.sort_by_key(|h| std::cmp::Reverse((h.created_at, h.id)));
        Ok(hosts)
    }

    async fn insert_blocked_host(&self, host: &BlockedHost) -> Result<()> {
        let mut state = write(&self.links);
        if state
            .blocked_hosts
            .iter()
            .any(|h| h.pattern == host.pattern)
        {
            return Err(Error::Conflict {
                code: "pattern_exists",
                message: format!("{:?} is on the blocklist", host.pattern),
            });
        }
        state.blocked_hosts.push(host.clone());
        Ok(())
    }

    async fn delete_blocked_host(&self, id: Uuid) -> Result<bool> {
        let mut state = write(&self.links);
        let before = state.blocked_hosts.len();
        state.blocked_hosts.retain(|h| h.id != id);
        Ok(state.blocked_hosts.len() < before)
    }

    async fn insert_report(&self, report: &Report) -> Result<()> {
        write(&self.links).reports.insert(report.id, report.clone());
        Ok(())
    }

    async fn list_reports(
        &self,
        status: ReportStatus,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page<Report>> {
        let state = read(&self.links);
        let mut reports: Vec<&Report> = state
            .reports
            .values()
            .filter(|r| r.status == status)
            .filter(|r| cursor.is_none_or(|c| (r.created_at, r.id) < (c.created_at, c.id)))
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        let limit = limit.max(1) as usize;
        let more = reports.len() > limit;
        let items: Vec<Report> = reports.into_iter().take(limit).cloned().collect();
        let next_cursor = if more {
            items.last().map(|r| Cursor {
                created_at: r.created_at,
                id: r.id,
                clicks: None,
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn set_report_status(&self, id: Uuid, status: ReportStatus) -> Result<Option<Report>> {
        Ok(write(&self.links).reports.get_mut(&id).map(|r| {
            r.status = status;
            r.clone()
        }))
    }
}

fn visitor_key(visitor: &Visitor) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::default().hash_one(visitor)
}

fn email_key(email: &str) -> String {
    email.to_ascii_lowercase()
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, record: &UserRecord) -> Result<()> {
        let mut state = write(&self.users);
        let key = email_key(&record.user.email);
        if state.by_email.contains_key(&key) {
            return Err(Error::Conflict {
                code: "email_taken",
                message: "a user with this email already exists".into(),
            });
        }
        state.by_email.insert(key, record.user.id);
        state.by_id.insert(record.user.id, record.clone());
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let state = read(&self.users);
        Ok(state
            .by_email
            .get(&email_key(email))
            .and_then(|id| state.by_id.get(id))
            .cloned())
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>> {
        Ok(read(&self.users).by_id.get(&id).map(|r| r.user.clone()))
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> Result<()> {
        write(&self.users).refresh.insert(
            token.token_hash.clone(),
            RefreshState {
                record: token.clone(),
                used: None,
            },
        );
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        rotation: &Rotation<'_>,
    ) -> Result<RotateOutcome> {
        let mut state = write(&self.users);
        let Some(old) = state.refresh.get(old_hash) else {
            return Ok(RotateOutcome::Invalid);
        };
        let family = old.record.family_id;
        let user_id = old.record.user_id;
        if state.revoked_families.contains(&family) {
            return Ok(RotateOutcome::Invalid);
        }
        match &old.used {
            Some((at, sealed)) if rotation.now - *at <= rotation.grace => {
                return Ok(RotateOutcome::Recent {
                    user_id,
                    sealed_successor: sealed.clone(),
                });
            }
            Some(_) => {
                state.revoked_families.insert(family);
                return Ok(RotateOutcome::Reused);
            }
            None => {}
        }
        if old.record.expires_at <= rotation.now {
            return Ok(RotateOutcome::Invalid);
        }
        if let Some(old) = state.refresh.get_mut(old_hash) {
            old.used = Some((rotation.now, rotation.sealed_successor.to_vec()));
        }
        state.refresh.insert(
            rotation.new.token_hash.clone(),
            RefreshState {
                record: rotation.new.clone(),
                used: None,
            },
        );
        Ok(RotateOutcome::Rotated { user_id })
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        Ok(read(&self.users)
            .refresh
            .get(token_hash)
            .map(|t| t.record.clone()))
    }

    async fn revoke_family(&self, family_id: Uuid) -> Result<()> {
        write(&self.users).revoked_families.insert(family_id);
        Ok(())
    }

    async fn family_active(&self, family_id: Uuid) -> Result<bool> {
        Ok(!read(&self.users).revoked_families.contains(&family_id))
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let mut state = write(&self.users);
        state.api_by_hash.insert(key.key_hash.clone(), key.key.id);
        state.api_keys.insert(key.key.id, key.clone());
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let state = read(&self.users);
        Ok(state
            .api_by_hash
            .get(key_hash)
            .and_then(|id| state.api_keys.get(id))
            .map(|r| r.key.clone()))
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>> {
        let state = read(&self.users);
        let mut keys: Vec<ApiKey> = state
            .api_keys
            .values()
            .filter(|r| r.key.user_id == user_id)
            .map(|r| r.key.clone())
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(keys)
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<bool> {
        let mut state = write(&self.users);
        match state.api_keys.get(&key_id) {
            Some(record) if record.key.user_id == user_id => {
                let hash = record.key_hash.clone();
                state.api_keys.remove(&key_id);
                state.api_by_hash.remove(&hash);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ClassifiedClick;

    fn click(link_id: Uuid) -> ClassifiedClick {
        ClassifiedClick {
            event_id: Uuid::now_v7(),
            link_id,
            day: chrono::Utc::now().date_naive(),
            visitor: "v".into(),
            is_bot: false,
            referrer: "direct".into(),
            browser: "Firefox".into(),
            os: "Linux".into(),
            device: "desktop".into(),
            country: "DE".into(),
            counted_at_redirect: false,
            at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn dedup_memory_is_bounded_but_covers_the_horizon() {
        let store = MemoryStore::with_dedup_horizon(100);
        let link = Uuid::now_v7();
        let batches: Vec<Vec<ClassifiedClick>> = (0..10)
            .map(|_| (0..50).map(|_| click(link)).collect())
            .collect();
        for (i, batch) in batches.iter().enumerate() {
            assert_eq!(store.record(batch).await.unwrap().recorded, 50);
            // A replay of the previous batches within the horizon is recognised.
            assert_eq!(store.record(batch).await.unwrap().duplicates, 50);
            if i > 0 {
                assert_eq!(store.record(&batches[i - 1]).await.unwrap().duplicates, 50);
            }
        }
        let state = read(&store.links);
        let remembered = state.seen_events[0].len() + state.seen_events[1].len();
        assert!((100..=200).contains(&remembered), "{remembered} ids kept");
        let day = chrono::Utc::now().date_naive();
        assert_eq!(
            state.days[&(link, day)].clicks,
            500,
            "every click counted once"
        );
    }

    #[tokio::test]
    async fn the_click_log_keeps_the_latest_clicks_of_all_links_together() {
        let store = MemoryStore::new();
        let (busy, quiet) = (Uuid::now_v7(), Uuid::now_v7());
        store.record(&[click(quiet)]).await.unwrap();
        let batch = |n| (0..n).map(|_| click(busy)).collect::<Vec<_>>();
        for _ in 0..CLICK_LOG_CAPACITY / 1000 {
            store.record(&batch(1000)).await.unwrap();
        }
        let state = read(&store.links);
        assert_eq!(state.click_order.len(), CLICK_LOG_CAPACITY);
        assert!(
            !state.click_log.contains_key(&quiet),
            "the oldest click went first, whatever its link"
        );
        assert_eq!(state.click_log[&busy].len(), CLICK_LOG_CAPACITY);
    }

    #[tokio::test]
    async fn breakdowns_past_the_small_vector_stay_exact() {
        let store = MemoryStore::new();
        let link = Uuid::now_v7();
        let day = chrono::Utc::now().date_naive();
        let clicks: Vec<ClassifiedClick> = (0..300)
            .map(|i| ClassifiedClick {
                event_id: Uuid::now_v7(),
                link_id: link,
                day,
                visitor: format!("{i:032x}").into(),
                is_bot: false,
                referrer: format!("site{}.example", i % 60).into(),
                browser: "Firefox".into(),
                os: "Linux".into(),
                device: "desktop".into(),
                country: "DE".into(),
                counted_at_redirect: false,
                at: chrono::Utc::now(),
            })
            .collect();
        assert_eq!(store.record(&clicks).await.unwrap().recorded, 300);
        assert_eq!(store.record(&clicks).await.unwrap().duplicates, 300);
        let window = store.rollups(link, day, day).await.unwrap();
        let referrers = &window
            .breakdowns
            .iter()
            .find(|(d, _)| *d == Dimension::Referrer)
            .unwrap()
            .1;
        assert_eq!(referrers.len(), 60);
        assert!(referrers.iter().all(|v| v.count == 5));
        assert_eq!(window.days[0].unique_visitors, 300);
    }
}
