//! Smart redirects: rules, query forwarding, passwords and previews.

use super::Shortener;
use crate::auth;
use crate::error::{Error, Result};
use crate::limiter::LimitScope;
use crate::model::{Link, LinkPatch, NewLink, RedirectType, Visit};
use crate::records::{RedirectTarget, SmartTarget};
use crate::rules::{self, Facts, RedirectRule};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// Longest link password, in characters.
pub const MAX_LINK_PASSWORD: usize = 128;

/// What a preview page (`GET /{code}+`) shows of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The link's code.
    pub short_code: String,
    /// Its title; `None` when it has none or asks for a password.
    pub title: Option<String>,
    /// Where this visitor would go (rules and query forwarding applied); `None` for a
    /// password-protected link, whose destination is shown to nobody before the password.
    pub destination: Option<String>,
}

/// `e` with its field moved under `prefix` (`url` → `redirect_rules[2].url`).
fn within(prefix: &str, e: Error) -> Error {
    match e {
        Error::Invalid {
            field,
            code,
            reason,
        } => Error::Invalid {
            field: Cow::Owned(format!("{prefix}.{field}")),
            code,
            reason: reason.replacen(&*field, &format!("{prefix}.{field}"), 1),
        },
        other => other,
    }
}

/// Links that look at the visit can't be permanent: browsers would keep the first answer.
fn check_redirect_type(
    redirect_type: RedirectType,
    has_rules: bool,
    forward_query: bool,
    password: bool,
) -> Result<()> {
    let permanent = matches!(
        redirect_type,
        RedirectType::MovedPermanently | RedirectType::PermanentRedirect
    );
    if permanent && (has_rules || forward_query || password) {
        return Err(Error::invalid(
            "redirect_type",
            "invalid_redirect_type",
            "a link with redirect_rules, forward_query or a password can't be permanent (301 or 308): browsers would remember the first answer",
        ));
    }
    Ok(())
}

impl Shortener {
    /// Rules checked and normalised, their URLs held to the rules of `original_url`.
    async fn validate_rules(&self, rules: &[RedirectRule]) -> Result<Vec<RedirectRule>> {
        let mut checked = rules::check_rules(rules)?;
        for (i, rule) in checked.iter_mut().enumerate() {
            rule.url = self
                .validate_destination("url", &rule.url)
                .await
                .map_err(|e| within(&format!("redirect_rules[{i}]"), e))?;
        }
        Ok(checked)
    }

    /// The Argon2id hash of a link password (hashed on a blocking thread).
    async fn hash_link_password(password: &str) -> Result<String> {
        let count = password.chars().count();
        if !(1..=MAX_LINK_PASSWORD).contains(&count) || password.chars().any(char::is_control) {
            return Err(Error::invalid(
                "password",
                "invalid_password",
                format!("must be 1 to {MAX_LINK_PASSWORD} characters, without control characters"),
            ));
        }
        let password = password.to_string();
        tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| Error::backend("argon2", e))?
    }

    /// The smart parts of a new link, checked: `(rules, forward_query, password hash)`.
    pub(super) async fn smart_parts(
        &self,
        request: &NewLink,
    ) -> Result<(Vec<RedirectRule>, bool, Option<String>)> {
        let rules = match &request.redirect_rules {
            Some(rules) => self.validate_rules(rules).await?,
            None => Vec::new(),
        };
        let forward_query = request.forward_query.unwrap_or(false);
        check_redirect_type(
            request.redirect_type.unwrap_or_default(),
            !rules.is_empty(),
            forward_query,
            request.password.is_some(),
        )?;
        let password_hash = match &request.password {
            Some(password) => Some(Self::hash_link_password(password).await?),
            None => None,
        };
        Ok((rules, forward_query, password_hash))
    }

    /// Checks the smart parts of a change to `link` and hashes a new password into
    /// `patch.password_hash`.
    pub(super) async fn check_smart_patch(&self, link: &Link, patch: &mut LinkPatch) -> Result<()> {
        if let Some(rules) = &patch.redirect_rules {
            patch.redirect_rules = Some(self.validate_rules(rules).await?);
        }
        let has_rules = patch
            .redirect_rules
            .as_ref()
            .map_or(!link.redirect_rules.is_empty(), |r| !r.is_empty());
        let forward_query = patch.forward_query.unwrap_or(link.forward_query);
        let password = match &patch.password {
            Some(p) => p.is_some(),
            None => link.password_hash.is_some(),
        };
        check_redirect_type(
            patch.redirect_type.unwrap_or(link.redirect_type),
            has_rules,
            forward_query,
            password,
        )?;
        patch.password_hash = match patch.password.take() {
            Some(Some(password)) => Some(Some(Self::hash_link_password(&password).await?)),
            Some(None) => Some(None),
            None => None,
        };
        Ok(())
    }

    /// For a password-protected link: the visit's password, checked against the link's
    /// and counted against the per-address limit of wrong ones.
    pub(super) async fn check_link_password(
        &self,
        target: &RedirectTarget,
        hash: &str,
        visit: &Visit<'_>,
    ) -> Result<()> {
        let Some(given) = visit.password else {
            return Err(Error::PasswordRequired);
        };
        let mut subject = target.link_id.to_string();
        subject.push(':');
        match visit.client_ip {
            Some(ip) => subject.push_str(&ip.to_string()),
            None => subject.push_str("unknown"),
        }
        // Look first: past the limit even the right password is refused, or guessing
        // would only be slowed, not stopped.
        if let Some(look) = self
            .check_rate_limit_cost(LimitScope::Password, &subject, 0)
            .await?
            && !look.allowed
        {
            return Err(Error::RateLimited {
                retry_after: look.retry_after.unwrap_or_default(),
            });
        }
        let given = given.to_string();
        let hash = hash.to_string();
        let right = tokio::task::spawn_blocking(move || {
            given.chars().count() <= MAX_LINK_PASSWORD && auth::verify_password(&given, Some(&hash))
        })
        .await
        .map_err(|e| Error::backend("argon2", e))?;
        if right {
            return Ok(());
        }
        self.check_rate_limit(LimitScope::Password, &subject)
            .await?;
        Err(Error::Unauthorized {
            reason: "wrong password",
        })
    }

    /// Where a smart link sends this visit: the first matching rule's URL (or the link's
    /// own), with the request's query appended when the link forwards it. `None` when
    /// that is the link's own URL unchanged.
    pub(super) fn smart_destination(
        &self,
        target: &RedirectTarget,
        smart: &SmartTarget,
        visit: &Visit<'_>,
        now: DateTime<Utc>,
    ) -> Option<Box<str>> {
        let chosen = if smart.rules.is_empty() {
            None
        } else {
            let inner = &*self.inner;
            let mut facts = Facts {
                user_agent_class: || inner.agents.classify(visit.user_agent),
                accept_language: visit.accept_language,
                country: || self.country_of(visit),
                query: visit.query,
                client_ip: visit.client_ip,
                now,
            };
            smart.rules.choose(&mut facts)
        };
        let url = chosen.unwrap_or(&target.location);
        match visit.query.filter(|q| smart.forward_query && !q.is_empty()) {
            Some(query) => Some(rules::forward_query(url, query).into()),
            None => chosen.map(Box::from),
        }
    }

    /// The visit's country: the trusted header's, else the GeoIP database's answer.
    fn country_of(&self, visit: &Visit<'_>) -> Option<[u8; 2]> {
        if let Some(given) = visit.country.map(str::trim) {
            return match given.as_bytes() {
                [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                    Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
                }
                _ => None,
            };
        }
        self.inner.geoip.as_ref()?.country(visit.client_ip?)
    }

    /// What a preview page shows of the link `short_code` on the visit's domain; nothing
    /// is counted. `NotFound` and `Gone` as for a redirect (no fallbacks).
    pub async fn preview(&self, short_code: &str, visit: &Visit<'_>) -> Result<Preview> {
        let domain = self.domain_of_host(visit.host).await?;
        let target = self.target_on(&domain, short_code).await?;
        let now = self.inner.clock.now();
        super::redirect::check_live(&target, now)?;
        let protected = target
            .smart
            .as_ref()
            .is_some_and(|s| s.password_hash.is_some());
        if protected {
            return Ok(Preview {
                short_code: target.short_code.to_string(),
                title: None,
                destination: None,
            });
        }
        let destination = match &target.smart {
            Some(smart) => self.smart_destination(&target, smart, visit, now),
            None => None,
        }
        .map_or_else(|| target.location.to_string(), String::from);
        let link = self.unspent_link(&target).await?;
        Ok(Preview {
            short_code: target.short_code.to_string(),
            title: link.title,
            destination: Some(destination),
        })
    }
}
