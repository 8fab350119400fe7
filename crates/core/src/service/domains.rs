//! Short domains: the table the redirect path reads (swapped whole on a change, read
//! without a lock or an allocation), the domain of a request, and the administration of
//! domains.
//!
//! The default domain (`BASE_URL`'s host) always exists and is never a row of the store,
//! except for its redirects, which are kept under the empty host.

use super::Shortener;
use crate::error::{Error, Result};
use crate::model::{Domain, DomainPatch, Link, Principal};
use crate::records::DomainDeletion;
use crate::text::StackString;
use crate::validate::{validate_host, validate_url};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The store key of the default domain's redirects.
const DEFAULT_KEY: &str = "";
/// The invalidation key that tells every instance the domains changed.
pub(super) const DOMAINS_CHANGED: &str = "!domains";

/// The domains of the deployment as the redirect path reads them.
#[derive(Debug, Default)]
pub(super) struct DomainTable {
    /// The change epoch it was loaded at ([`u64::MAX`]: never loaded).
    epoch: u64,
    /// The default domain's redirects, when set.
    default: Option<Arc<Domain>>,
    /// The other domains by host, with their id (1…; 0 is the default domain).
    hosts: HashMap<Box<str>, DomainRef, foldhash::fast::FixedState>,
}

/// The domain a request or a link is on.
#[derive(Debug, Clone)]
pub(super) struct DomainRef {
    /// Its id in this process: 0 for the default domain.
    pub(super) id: u32,
    /// Its row (`None` for the default domain, whose redirects stay in the table).
    pub(super) domain: Option<Arc<Domain>>,
}

impl DomainTable {
    /// The default domain's redirects, when set.
    pub(super) fn default_row(&self) -> Option<Arc<Domain>> {
        self.default.clone()
    }

    /// A table that is never current: the first use loads one.
    pub(super) fn stale() -> Self {
        DomainTable {
            epoch: u64::MAX,
            ..DomainTable::default()
        }
    }
}

impl DomainRef {
    const DEFAULT: DomainRef = DomainRef {
        id: 0,
        domain: None,
    };

    /// The host as links store it: `None` on the default domain.
    pub(super) fn host(&self) -> Option<&str> {
        self.domain.as_deref().map(|d| d.host.as_str())
    }
}

/// Ids of hosts, never reused in a process, so L1 entries of a host stay its own across
/// reloads of the table.
#[derive(Debug, Default)]
pub(super) struct DomainIds {
    ids: HashMap<String, u32>,
}

impl DomainIds {
    fn of(&mut self, host: &str) -> u32 {
        let next = self.ids.len() as u32 + 1;
        *self.ids.entry(host.to_string()).or_insert(next)
    }

    fn known(&self, host: &str) -> Option<u32> {
        self.ids.get(host).copied()
    }
}

/// The domain of a host (no port) in `table`; `None` for the default domain. The host
/// is lower-cased into a buffer on the stack.
fn lookup<'t>(table: &'t DomainTable, host: &str) -> Option<&'t DomainRef> {
    if table.hosts.is_empty() || host.len() > 253 {
        return None;
    }
    let mut lower = StackString::<256>::new();
    lower.write_str(host).ok()?;
    lower.make_ascii_lowercase();
    table.hosts.get(lower.as_str())
}

/// `Host` without its port, as given (case not changed).
fn bare_host(host: &str) -> &str {
    let host = host.trim_ascii();
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        // A byte scan: `rsplit_once(':')` cost about 200 instructions a redirect.
        None => match host.bytes().rposition(|b| b == b':') {
            Some(colon) => &host[..colon],
            None => host,
        },
    }
}

impl Shortener {
    /// The domain of a request's `Host` (port ignored, any case); a host that is no
    /// domain of the deployment means the default domain. On the default host nothing
    /// is looked up; otherwise a lowercase copy of the host on the stack finds it in
    /// the current table.
    pub(super) async fn domain_of_host(&self, host: Option<&str>) -> Result<DomainRef> {
        match self.domain_of_host_now(host) {
            Some(domain) => Ok(domain),
            None => {
                let table = self.domain_table().await?;
                let host = host.map(bare_host).unwrap_or_default();
                Ok(lookup(&table, host).cloned().unwrap_or(DomainRef::DEFAULT))
            }
        }
    }

    /// [`Shortener::domain_of_host`] without waiting: `None` when the table must be
    /// reloaded first (a domain changed).
    pub(super) fn domain_of_host_now(&self, host: Option<&str>) -> Option<DomainRef> {
        self.with_host_now(host, |domain| domain.cloned().unwrap_or(DomainRef::DEFAULT))
    }

    /// The L1 id of the domain of `host` without waiting, for the redirect path: no
    /// allocation, no lock, no shared counter touched (the table is read through a
    /// guard, the row is not cloned). `None` when the table must be reloaded first.
    #[inline]
    pub(super) fn domain_id_now(&self, host: Option<&str>) -> Option<u32> {
        self.with_host_now(host, |domain| domain.map_or(0, |d| d.id))
    }

    /// `f` of the domain of `host` in the current table (`None`: the default domain).
    #[inline]
    fn with_host_now<R>(
        &self,
        host: Option<&str>,
        f: impl FnOnce(Option<&DomainRef>) -> R,
    ) -> Option<R> {
        let Some(host) = host.map(bare_host) else {
            return Some(f(None));
        };
        if self
            .inner
            .config
            .own_host
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(host))
        {
            return Some(f(None));
        }
        let table = self.inner.domains_table.load();
        (table.epoch == self.inner.domains_epoch.load(Ordering::Acquire))
            .then(|| f(lookup(&table, host)))
    }

    /// The table, reloaded from the store when another instance (or this one) changed
    /// the domains since it was loaded.
    pub(super) async fn domain_table(&self) -> Result<Arc<DomainTable>> {
        let inner = &*self.inner;
        let current = inner.domains_epoch.load(Ordering::Acquire);
        let table = inner.domains_table.load_full();
        if table.epoch == current {
            return Ok(table);
        }
        let _single = inner.domains_reload.lock().await;
        let table = inner.domains_table.load_full();
        if table.epoch == current {
            return Ok(table);
        }
        let rows = inner.domains.list_domains().await?;
        let mut fresh = DomainTable {
            epoch: current,
            ..DomainTable::default()
        };
        let mut ids = inner.domain_ids.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            if row.host == DEFAULT_KEY {
                fresh.default = Some(Arc::new(row));
            } else {
                let id = ids.of(&row.host);
                fresh.hosts.insert(
                    row.host.clone().into(),
                    DomainRef {
                        id,
                        domain: Some(Arc::new(row)),
                    },
                );
            }
        }
        drop(ids);
        let fresh = Arc::new(fresh);
        inner.domains_table.store(fresh.clone());
        Ok(fresh)
    }

    /// The L1 id of a stored host (`None`: the default domain); `None` when no request
    /// ever looked it up here (then nothing of it is cached here either).
    pub(super) fn domain_id(&self, host: Option<&str>) -> Option<u32> {
        match host {
            None => Some(0),
            Some(host) => self
                .inner
                .domain_ids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .known(host),
        }
    }

    /// Called when a domain changed here or elsewhere: the next use reloads the table.
    pub(super) fn domains_changed_locally(&self) {
        self.inner.domains_epoch.fetch_add(1, Ordering::AcqRel);
    }

    async fn domains_changed(&self) {
        self.domains_changed_locally();
        self.broadcast(DOMAINS_CHANGED).await;
    }

    /// The stored host of the domain a client named (`None`, or the default host, is the
    /// default domain); `422 unknown_domain` for a host that is no domain here.
    pub async fn domain_named(&self, host: Option<&str>) -> Result<Option<String>> {
        let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let host = host.to_ascii_lowercase();
        if self.inner.config.own_host.as_deref() == Some(host.as_str()) {
            return Ok(None);
        }
        let table = self.domain_table().await?;
        if table.hosts.contains_key(host.as_str()) {
            Ok(Some(host))
        } else {
            Err(Error::invalid(
                "domain",
                "unknown_domain",
                format!(
                    "{:?} is not a domain of this deployment",
                    crate::text::excerpt(&host)
                ),
            ))
        }
    }

    /// Every host of the deployment: links to them are refused (they would loop).
    pub(super) async fn own_hosts(&self) -> Result<Vec<String>> {
        let table = self.domain_table().await?;
        Ok(self
            .inner
            .config
            .own_host
            .iter()
            .cloned()
            .chain(table.hosts.keys().map(|h| h.to_string()))
            .collect())
    }

    /// Validates a destination: the URL rules, no host of this deployment, and no host
    /// on the blocklist (`422 blocked_url`).
    pub(super) async fn validate_destination(
        &self,
        field: &'static str,
        raw: &str,
    ) -> Result<String> {
        let own = self.own_hosts().await?;
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        let url = validate_url(field, raw, &own)?;
        if self.host_is_blocked(url.as_str()).await? {
            return Err(Error::invalid(
                field,
                "blocked_url",
                "leads to a host on the blocklist",
            ));
        }
        Ok(url.into())
    }

    /// The default domain's host (`BASE_URL`'s).
    pub fn default_host(&self) -> &str {
        self.inner.config.own_host.as_deref().unwrap_or_default()
    }

    /// The host of a link's domain: its own, or the default host.
    pub fn host_of<'a>(&'a self, link: &'a Link) -> &'a str {
        link.domain
            .as_deref()
            .unwrap_or_else(|| self.default_host())
    }

    /// The short URL of a link.
    pub fn link_url(&self, link: &Link) -> String {
        self.short_url(link.domain.as_deref(), &link.short_code)
    }

    /// The short URL of a code: `BASE_URL/code` on the default domain,
    /// `BASE_URL's scheme://host/code` on another.
    pub fn short_url(&self, domain: Option<&str>, short_code: &str) -> String {
        match domain {
            None => format!("{}/{short_code}", self.inner.config.base_url),
            Some(host) => format!("{}://{host}/{short_code}", self.inner.config.scheme),
        }
    }

    /// Where `GET /` on `host` goes: the domain's root redirect, else the dashboard
    /// (`/app/`) on the default domain; `None` (404) on another domain without one.
    pub async fn root_redirect(&self, host: Option<&str>) -> Result<Option<String>> {
        let domain = self.domain_of_host(host).await?;
        let table = self.domain_table().await?;
        let row = if domain.id == 0 {
            table.default.clone()
        } else {
            domain.domain.clone()
        };
        Ok(match row.and_then(|d| d.root_redirect.clone()) {
            Some(url) => Some(url),
            None if domain.id == 0 => Some("/app/".to_string()),
            None => None,
        })
    }

    /// Every domain, the default first.
    pub async fn domains(&self) -> Result<Vec<Domain>> {
        let table = self.domain_table().await?;
        let default_host = self.inner.config.own_host.clone().unwrap_or_default();
        let default = match &table.default {
            Some(d) => Domain {
                host: default_host,
                is_default: true,
                ..(**d).clone()
            },
            None => Domain {
                host: default_host,
                is_default: true,
                root_redirect: None,
                not_found_redirect: None,
                gone_redirect: None,
                created_at: self.inner.started_at,
            },
        };
        let mut others: Vec<Domain> = table
            .hosts
            .values()
            .filter_map(|d| d.domain.as_deref().cloned())
            .collect();
        others.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.host.cmp(&b.host))
        });
        Ok(std::iter::once(default).chain(others).collect())
    }

    async fn validate_redirects(&self, patch: &mut DomainPatch) -> Result<()> {
        for (field, value) in [
            ("root_redirect", &mut patch.root_redirect),
            ("not_found_redirect", &mut patch.not_found_redirect),
            ("gone_redirect", &mut patch.gone_redirect),
        ] {
            if let Some(Some(url)) = value {
                *url = self.validate_destination(field, url).await?;
            }
        }
        Ok(())
    }

    /// Adds a short domain (administrators only).
    pub async fn add_domain(
        &self,
        admin: &Principal,
        host: &str,
        redirects: DomainPatch,
    ) -> Result<Domain> {
        self.require_admin(admin).await?;
        let host = validate_host("host", host)?;
        if self.inner.config.own_host.as_deref() == Some(host.as_str()) {
            return Err(Error::Conflict {
                code: "domain_exists",
                message: format!("{host:?} is the default domain"),
            });
        }
        let mut redirects = redirects;
        self.validate_redirects(&mut redirects).await?;
        let mut domain = Domain {
            host,
            is_default: false,
            root_redirect: None,
            not_found_redirect: None,
            gone_redirect: None,
            created_at: self.now(),
        };
        redirects.apply(&mut domain);
        self.inner.domains.insert_domain(&domain).await?;
        self.domains_changed().await;
        Ok(domain)
    }

    /// Changes a domain's redirects (administrators only); the default domain's too.
    pub async fn update_domain(
        &self,
        admin: &Principal,
        host: &str,
        patch: DomainPatch,
    ) -> Result<Domain> {
        self.require_admin(admin).await?;
        let mut patch = patch;
        self.validate_redirects(&mut patch).await?;
        let host = host.trim().to_ascii_lowercase();
        let is_default = self.inner.config.own_host.as_deref() == Some(host.as_str());
        let key = if is_default {
            DEFAULT_KEY
        } else {
            host.as_str()
        };
        let mut updated = self.inner.domains.update_domain(key, &patch).await?;
        if updated.is_none() && is_default {
            let mut row = Domain {
                host: DEFAULT_KEY.to_string(),
                is_default: true,
                root_redirect: None,
                not_found_redirect: None,
                gone_redirect: None,
                created_at: self.inner.started_at,
            };
            patch.apply(&mut row);
            match self.inner.domains.insert_domain(&row).await {
                Ok(()) => updated = Some(row),
                // Another request made the row meanwhile: change it.
                Err(Error::Conflict { .. }) => {
                    updated = self.inner.domains.update_domain(key, &patch).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let mut domain = updated.ok_or(Error::NotFound { what: "domain" })?;
        if is_default {
            domain.host = host;
            domain.is_default = true;
        }
        self.domains_changed().await;
        Ok(domain)
    }

    /// Deletes a domain no link uses (administrators only); never the default one.
    pub async fn delete_domain(&self, admin: &Principal, host: &str) -> Result<()> {
        self.require_admin(admin).await?;
        let host = host.trim().to_ascii_lowercase();
        if self.inner.config.own_host.as_deref() == Some(host.as_str()) || host.is_empty() {
            return Err(Error::Conflict {
                code: "domain_in_use",
                message: "the default domain can't be deleted".into(),
            });
        }
        match self.inner.domains.delete_domain(&host).await? {
            DomainDeletion::Deleted => {
                self.domains_changed().await;
                Ok(())
            }
            DomainDeletion::InUse => Err(Error::Conflict {
                code: "domain_in_use",
                message: format!("links use {host:?}; delete them first"),
            }),
            DomainDeletion::Missing => Err(Error::NotFound { what: "domain" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bare_host;

    #[test]
    fn hosts_lose_their_ports() {
        assert_eq!(bare_host("go.example.com:8080"), "go.example.com");
        assert_eq!(bare_host("Go.Example.com"), "Go.Example.com");
        assert_eq!(bare_host("[::1]:80"), "::1");
        assert_eq!(bare_host("127.0.0.1"), "127.0.0.1");
    }
}
