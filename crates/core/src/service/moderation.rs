//! Operators and abuse: the admin role, every owner's links, blocking links, the host
//! blocklist (from the store and from a file), and abuse reports.
//!
//! The blocklist is read on the redirect path only when a link enters the in-process
//! cache: its destination's host (and each parent domain) is looked up in an in-memory
//! set. A change of the blocklist empties every instance's cache, so the next redirect of
//! every link is checked again; a redirect never scans links.

use super::{ListOptions, Shortener};
use crate::error::{Error, Result};
use crate::model::{
    BlockedHost, Cursor, Link, LinkPatch, Page, Principal, Report, ReportReason, ReportStatus,
    Role, User,
};
use crate::validate::MAX_URL_BYTES;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use uuid::Uuid;

/// The invalidation key that tells every instance the blocklist changed.
pub(super) const BLOCKLIST_CHANGED: &str = "!blocklist";

/// Longest reason or report details.
const MAX_NOTE_CHARS: usize = 1000;

/// The blocked host patterns, as the cache fill reads them.
#[derive(Debug, Default)]
pub(super) struct BlockedSet {
    /// The change epoch it was loaded at ([`u64::MAX`]: never loaded).
    epoch: u64,
    hosts: HashSet<Box<str>, foldhash::fast::RandomState>,
}

impl BlockedSet {
    pub(super) fn stale() -> Self {
        BlockedSet {
            epoch: u64::MAX,
            ..BlockedSet::default()
        }
    }

    /// Whether `host` or one of its parent domains is listed.
    fn covers(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        let mut rest = host;
        loop {
            if self.hosts.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return false,
            }
        }
    }
}

/// A blocklist pattern as stored: a lower-case host of one or more labels.
pub fn normalize_pattern(raw: &str) -> Result<String> {
    let pattern = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.strip_prefix("*.").unwrap_or(&pattern).to_string();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    if pattern.is_empty() || pattern.len() > 253 || !pattern.split('.').all(label_ok) {
        return Err(Error::invalid(
            "pattern",
            "invalid_pattern",
            "must be a host such as evil.example (it covers its subdomains too)",
        ));
    }
    Ok(pattern)
}

fn note(field: &'static str, text: Option<&str>) -> Result<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_NOTE_CHARS
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(
            field,
            "invalid_text",
            format!("must be at most {MAX_NOTE_CHARS} printable characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

impl Shortener {
    /// The role of a user: `Admin` when their email is one of the configured admin
    /// emails (without regard to case).
    pub fn role(&self, user: &User) -> Role {
        if self
            .inner
            .config
            .admin_emails
            .contains(&user.email.to_ascii_lowercase())
        {
            Role::Admin
        } else {
            Role::User
        }
    }

    /// The caller's account when they are an administrator; `Forbidden` otherwise.
    pub async fn require_admin(&self, principal: &Principal) -> Result<User> {
        let user = self.user(principal).await?;
        match self.role(&user) {
            Role::Admin => Ok(user),
            Role::User => Err(Error::Forbidden {
                reason: "administrators only",
            }),
        }
    }

    /// Admin emails with no account yet: whoever registers one first becomes an admin
    /// (there is no email verification), so a server warns about them at start.
    pub async fn unclaimed_admin_emails(&self) -> Result<Vec<String>> {
        let mut unclaimed = Vec::new();
        for email in &self.inner.config.admin_emails {
            if self.inner.users.user_by_email(email).await?.is_none() {
                unclaimed.push(email.clone());
            }
        }
        unclaimed.sort();
        Ok(unclaimed)
    }

    /// Every owner's links, anonymous ones included (administrators only), filtered like
    /// [`Shortener::list_links`] and by blocked state.
    pub async fn admin_links(
        &self,
        admin: &Principal,
        options: ListOptions,
        blocked: Option<bool>,
    ) -> Result<Page<Link>> {
        self.require_admin(admin).await?;
        let mut query = self.link_query(options).await?;
        query.owner_id = None;
        query.blocked = blocked;
        self.inner.links.list(&query).await
    }

    /// Blocks or unblocks a link (administrators only): a blocked link answers 410
    /// `link_blocked` from the next redirect on every instance; its owner can read and
    /// delete it, not unblock it.
    pub async fn block_link(
        &self,
        admin: &Principal,
        id: Uuid,
        blocked: bool,
        reason: Option<&str>,
    ) -> Result<Link> {
        self.require_admin(admin).await?;
        let reason = if blocked {
            note("blocked_reason", reason)?
        } else {
            None
        };
        let patch = LinkPatch {
            blocked: Some(blocked),
            blocked_reason: Some(reason),
            ..LinkPatch::default()
        };
        let link = self
            .inner
            .links
            .update(id, &patch, self.now())
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        self.invalidate(link.domain.as_deref(), &link.short_code)
            .await;
        Ok(link)
    }

    /// The blocklist's patterns from the store, newest first (administrators only).
    pub async fn blocklist(&self, admin: &Principal) -> Result<Vec<BlockedHost>> {
        self.require_admin(admin).await?;
        self.inner.moderation.list_blocked_hosts().await
    }

    /// Adds a host pattern (administrators only): from now on, new and edited
    /// destinations on it are refused and existing links to it answer 410, on every
    /// instance.
    pub async fn block_host(
        &self,
        admin: &Principal,
        pattern: &str,
        reason: Option<&str>,
    ) -> Result<BlockedHost> {
        self.require_admin(admin).await?;
        let host = BlockedHost {
            id: Uuid::now_v7(),
            pattern: normalize_pattern(pattern)?,
            reason: note("reason", reason)?,
            created_at: self.now(),
        };
        self.inner.moderation.insert_blocked_host(&host).await?;
        self.blocklist_changed().await;
        Ok(host)
    }

    /// Removes a pattern (administrators only).
    pub async fn unblock_host(&self, admin: &Principal, id: Uuid) -> Result<()> {
        self.require_admin(admin).await?;
        if !self.inner.moderation.delete_blocked_host(id).await? {
            return Err(Error::NotFound {
                what: "blocklist entry",
            });
        }
        self.blocklist_changed().await;
        Ok(())
    }

    /// Replaces the patterns of this instance's blocklist file (`BLOCKLIST_FILE`, read
    /// again on `SIGHUP`); they add to the store's.
    pub fn set_file_blocklist<I, S>(&self, patterns: I) -> Result<usize>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| normalize_pattern(p.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let count = patterns.len();
        *self
            .inner
            .file_blocklist
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = patterns;
        self.blocklist_changed_locally();
        Ok(count)
    }

    /// Called when the blocklist changed here or elsewhere: every cached link is checked
    /// again on its next redirect.
    pub(super) fn blocklist_changed_locally(&self) {
        self.inner.blocklist_epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.forget_everything();
    }

    async fn blocklist_changed(&self) {
        self.blocklist_changed_locally();
        self.broadcast(BLOCKLIST_CHANGED).await;
    }

    async fn blocked_set(&self) -> Result<Arc<BlockedSet>> {
        let inner = &*self.inner;
        let current = inner.blocklist_epoch.load(Ordering::Acquire);
        let set = inner.blocklist.load_full();
        if set.epoch == current {
            return Ok(set);
        }
        let _single = inner.blocklist_reload.lock().await;
        let set = inner.blocklist.load_full();
        if set.epoch == current {
            return Ok(set);
        }
        let stored = inner.moderation.list_blocked_hosts().await?;
        let file = inner
            .file_blocklist
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fresh = Arc::new(BlockedSet {
            epoch: current,
            hosts: stored
                .into_iter()
                .map(|h| h.pattern.into_boxed_str())
                .chain(file.into_iter().map(String::into_boxed_str))
                .collect(),
        });
        inner.blocklist.store(fresh.clone());
        Ok(fresh)
    }

    /// Whether the host of `url` is covered by the blocklist.
    pub(super) async fn host_is_blocked(&self, url: &str) -> Result<bool> {
        {
            let current = self.inner.blocklist.load();
            if current.epoch == self.inner.blocklist_epoch.load(Ordering::Acquire)
                && current.hosts.is_empty()
            {
                return Ok(false);
            }
        }
        let set = self.blocked_set().await?;
        if set.hosts.is_empty() {
            return Ok(false);
        }
        Ok(url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|host| set.covers(&host)))
    }

    /// Files an abuse report about the link behind `short_url` (anyone may); `NotFound`
    /// when it is no link of this deployment.
    pub async fn report(
        &self,
        reporter: Option<&Principal>,
        short_url: &str,
        reason: ReportReason,
        details: Option<&str>,
    ) -> Result<Report> {
        let not_found = || Error::NotFound { what: "link" };
        if short_url.len() > MAX_URL_BYTES {
            return Err(not_found());
        }
        // Anything that is not a short URL of one of this deployment's domains names no
        // link here.
        let url = url::Url::parse(short_url.trim()).map_err(|_| not_found())?;
        let code = url.path().trim_start_matches('/');
        let domain = match self.domain_named(url.host_str()).await {
            Ok(domain) if url.host_str().is_some() => domain,
            Err(Error::Invalid { .. }) | Ok(_) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let link = if crate::code::is_plausible_code(code) {
            self.inner
                .links
                .get_by_code(domain.as_deref(), code)
                .await?
        } else {
            None
        };
        let link = link.ok_or_else(not_found)?;
        let report = Report {
            id: Uuid::now_v7(),
            link_id: link.id,
            reason,
            details: note("details", details)?,
            status: ReportStatus::Open,
            reporter_id: reporter.map(|p| p.user_id),
            created_at: self.now(),
        };
        self.inner.moderation.insert_report(&report).await?;
        Ok(report)
    }

    /// The reports of one status with their links, newest first (administrators only).
    /// Reports of links deleted since are left out.
    pub async fn reports(
        &self,
        admin: &Principal,
        status: ReportStatus,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<(Report, Link)>> {
        self.require_admin(admin).await?;
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let page = self
            .inner
            .moderation
            .list_reports(status, limit.clamp(1, super::MAX_PAGE_SIZE), cursor)
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for report in page.items {
            if let Some(link) = self.inner.links.get(report.link_id).await? {
                items.push((report, link));
            }
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Closes a report as resolved or dismissed (administrators only).
    pub async fn set_report_status(
        &self,
        admin: &Principal,
        id: Uuid,
        status: ReportStatus,
    ) -> Result<(Report, Option<Link>)> {
        self.require_admin(admin).await?;
        let report = self
            .inner
            .moderation
            .set_report_status(id, status)
            .await?
            .ok_or(Error::NotFound { what: "report" })?;
        let link = self.inner.links.get(report.link_id).await?;
        Ok((report, link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_their_subdomains() {
        let set = BlockedSet {
            epoch: 0,
            hosts: ["evil.example", "bad.test"]
                .into_iter()
                .map(Box::from)
                .collect(),
        };
        for host in [
            "evil.example",
            "www.evil.example",
            "a.b.evil.example",
            "bad.test.",
        ] {
            assert!(set.covers(host), "{host}");
        }
        for host in ["notevil.example", "evil.example.org", "example", "test"] {
            assert!(!set.covers(host), "{host}");
        }
        assert_eq!(
            normalize_pattern(" *.Evil.Example. ").unwrap(),
            "evil.example"
        );
        assert!(normalize_pattern("evil example").is_err());
        assert!(normalize_pattern("").is_err());
    }
}
