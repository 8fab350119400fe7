//! Links: create, read, list, change, delete.

use super::{DEFAULT_PAGE_SIZE, MAX_BULK_ITEMS, MAX_PAGE_SIZE, Shortener, owned_by};
use crate::clock::stored_precision;
use crate::code::validate_alias;
use crate::error::{Error, Result};
use crate::model::{Cursor, Link, LinkPatch, LinkSort, NewLink, Page, Principal};
use crate::records::LinkQuery;
use crate::validate::{validate_tags, validate_title};
use crate::webhooks::WebhookEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Largest click budget (a trillion: no link runs out of it by accident).
pub const MAX_CLICKS: u64 = 1_000_000_000_000;

/// Listing options, as a client sends them.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Page size, 1–100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only links whose URL, title or code contains this text.
    pub query: Option<String>,
    /// Only links of this short domain (its host; the default domain's host for those on
    /// the default domain); every domain when absent.
    pub domain: Option<String>,
    /// The order (newest first by default). A cursor continues only the order it came
    /// from.
    pub sort: LinkSort,
}

impl Shortener {
    fn validate_expiry(&self, expires_at: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>> {
        match expires_at {
            Some(t) if t <= self.inner.clock.now() => Err(Error::invalid(
                "expires_at",
                "invalid_expiry",
                "must be in the future",
            )),
            other => Ok(other.map(stored_precision)),
        }
    }

    fn validate_max_clicks(max_clicks: Option<u64>) -> Result<Option<u64>> {
        match max_clicks {
            Some(0) => Err(Error::invalid(
                "max_clicks",
                "invalid_max_clicks",
                "must be at least 1",
            )),
            Some(n) if n > MAX_CLICKS => Err(Error::invalid(
                "max_clicks",
                "invalid_max_clicks",
                format!("must be at most {MAX_CLICKS}"),
            )),
            other => Ok(other),
        }
    }

    /// Creates a short link, with a generated code or the requested alias.
    ///
    /// Fails with `Invalid` naming the field for bad input and with
    /// `Conflict { code: "alias_taken" }` when the alias exists.
    pub async fn shorten(&self, request: NewLink, owner: Option<&Principal>) -> Result<Link> {
        self.create_link(request, owner, None).await
    }

    /// [`Shortener::shorten`]; for an import (`imported`: whether the link is active) an
    /// expiry in the past is kept, as the link was.
    pub(super) async fn create_link(
        &self,
        request: NewLink,
        owner: Option<&Principal>,
        imported: Option<bool>,
    ) -> Result<Link> {
        let original_url = self
            .validate_destination("original_url", &request.original_url)
            .await?;
        let domain = self.domain_named(request.domain.as_deref()).await?;
        if let Some(alias) = &request.custom_alias {
            validate_alias(alias, &self.inner.config.reserved_aliases)?;
        }
        let expires_at = match imported {
            Some(_) => request.expires_at.map(stored_precision),
            None => self.validate_expiry(request.expires_at)?,
        };
        let max_clicks = Self::validate_max_clicks(request.max_clicks)?;
        let title = validate_title(request.title.as_deref())?;
        let tags = validate_tags(request.tags.as_deref().unwrap_or_default())?;
        let (redirect_rules, forward_query, password_hash) = self.smart_parts(&request).await?;
        let now = self.now();
        let mut link = Link {
            id: Uuid::now_v7(),
            short_code: String::new(),
            original_url,
            title,
            tags,
            redirect_type: request.redirect_type.unwrap_or_default(),
            owner_id: owner.map(|p| p.user_id),
            created_at: now,
            updated_at: now,
            expires_at,
            max_clicks,
            click_count: 0,
            is_active: imported.unwrap_or(true),
            domain,
            blocked: false,
            blocked_reason: None,
            redirect_rules,
            forward_query,
            password_hash,
        };
        if let Some(alias) = request.custom_alias {
            link.short_code = alias;
            self.inner.links.insert(&link).await?;
        } else {
            // A generated code can only be taken by a custom alias that happens to look
            // like one: skip to the next id.
            let mut attempts = 0;
            loop {
                link.short_code = self.inner.codes.encode(self.next_id().await?);
                match self.inner.links.insert(&link).await {
                    Ok(()) => break,
                    Err(Error::Conflict { .. }) if attempts < 16 => attempts += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        // The code may have been cached as unknown.
        self.invalidate(link.domain.as_deref(), &link.short_code)
            .await;
        self.emit(WebhookEvent::LinkCreated, &link).await;
        Ok(link)
    }

    /// Creates up to 1,000 links; one result per item, in order.
    pub async fn shorten_many(
        &self,
        requests: Vec<NewLink>,
        owner: Option<&Principal>,
    ) -> Result<Vec<Result<Link>>> {
        if requests.len() > MAX_BULK_ITEMS {
            return Err(Error::invalid(
                "items",
                "too_many_items",
                format!(
                    "at most {MAX_BULK_ITEMS} items per request, got {}",
                    requests.len()
                ),
            ));
        }
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            results.push(self.shorten(request, owner).await);
        }
        Ok(results)
    }

    /// The link with `short_code` on the short domain a client named (`None`: the
    /// default), whoever owns it. No link is on a host that is no domain here.
    pub(super) async fn link_by_code(
        &self,
        domain: Option<&str>,
        short_code: &str,
    ) -> Result<Link> {
        let domain = match self.domain_named(domain).await {
            Err(Error::Invalid { .. }) => return Err(Error::NotFound { what: "link" }),
            other => other?,
        };
        if !crate::code::is_plausible_code(short_code) {
            return Err(Error::NotFound { what: "link" });
        }
        self.inner
            .links
            .get_by_code(domain.as_deref(), short_code)
            .await?
            .ok_or(Error::NotFound { what: "link" })
    }

    /// A link of the caller's.
    pub async fn get_link(&self, principal: &Principal, id: Uuid) -> Result<Link> {
        let link = self
            .inner
            .links
            .get(id)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        owned_by(link, principal)
    }

    /// The caller's links, newest or most clicked first.
    pub async fn list_links(
        &self,
        principal: &Principal,
        options: ListOptions,
    ) -> Result<Page<Link>> {
        let mut query = self.link_query(options).await?;
        query.owner_id = Some(principal.user_id);
        self.inner.links.list(&query).await
    }

    /// A listing query from a client's options, checked (no owner set).
    pub(super) async fn link_query(&self, options: ListOptions) -> Result<LinkQuery> {
        let limit = options.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                "invalid_limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}, got {limit}"),
            ));
        }
        let cursor = options.cursor.as_deref().map(Cursor::decode).transpose()?;
        if cursor.is_some_and(|c| c.clicks.is_some() != (options.sort == LinkSort::Clicks)) {
            return Err(Error::invalid(
                "cursor",
                "invalid_cursor",
                "this cursor continues a listing in another order",
            ));
        }
        let text = options
            .query
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        if text
            .as_ref()
            .is_some_and(|q| q.chars().count() > 200 || q.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                "q",
                "invalid_query",
                "must be at most 200 characters, without control characters",
            ));
        }
        let tag = options
            .tag
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if tag
            .as_ref()
            .is_some_and(|t| t.chars().count() > 50 || t.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                "tag",
                "invalid_tag",
                "must be at most 50 characters, without control characters",
            ));
        }
        let domain = match options
            .domain
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            None => None,
            Some(host) => Some(self.domain_named(Some(host)).await?),
        };
        Ok(LinkQuery {
            owner_id: None,
            domain,
            blocked: None,
            limit,
            cursor,
            sort: options.sort,
            tag,
            text,
        })
    }

    /// Changes a link of the caller's; the very next redirect sees the change.
    pub async fn update_link(
        &self,
        principal: &Principal,
        id: Uuid,
        mut patch: LinkPatch,
    ) -> Result<Link> {
        let link = self.get_link(principal, id).await?;
        if patch.blocked.is_some() || patch.blocked_reason.is_some() {
            return Err(Error::Forbidden {
                reason: "only administrators block and unblock links",
            });
        }
        if let Some(url) = &patch.original_url {
            patch.original_url = Some(self.validate_destination("original_url", url).await?);
        }
        if let Some(expires_at) = patch.expires_at {
            patch.expires_at = Some(self.validate_expiry(expires_at)?);
        }
        if let Some(max_clicks) = patch.max_clicks {
            Self::validate_max_clicks(max_clicks)?;
        }
        if let Some(title) = &patch.title {
            patch.title = Some(validate_title(title.as_deref())?);
        }
        if let Some(tags) = &patch.tags {
            patch.tags = Some(validate_tags(tags)?);
        }
        // A hash comes only from a password checked here.
        patch.password_hash = None;
        self.check_smart_patch(&link, &mut patch).await?;
        if patch.is_empty() {
            return Ok(link);
        }
        let updated = self
            .inner
            .links
            .update(id, &patch, self.now())
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        self.invalidate(updated.domain.as_deref(), &updated.short_code)
            .await;
        self.emit(WebhookEvent::LinkUpdated, &updated).await;
        Ok(updated)
    }

    /// Deletes a link of the caller's; its code answers 404 from the very next redirect.
    pub async fn delete_link(&self, principal: &Principal, id: Uuid) -> Result<()> {
        self.get_link(principal, id).await?;
        let deleted = self
            .inner
            .links
            .delete(id)
            .await?
            .ok_or(Error::NotFound { what: "link" })?;
        self.invalidate(deleted.domain.as_deref(), &deleted.short_code)
            .await;
        self.emit(WebhookEvent::LinkDeleted, &deleted).await;
        Ok(())
    }
}
