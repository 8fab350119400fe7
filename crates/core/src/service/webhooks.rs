//! Webhooks: their management, the events the service emits, and the delivery rounds
//! (see [`crate::webhooks`]).

use super::{Inner, Shortener};
use crate::error::{Error, Result};
use crate::model::{Link, Principal};
use crate::records::ClassifiedClick;
use crate::stats::Stats;
use crate::webhooks::{
    Delivery, DeliveryJob, MAX_WEBHOOKS, NewWebhook, Webhook, WebhookEvent, WebhookPatch,
    WebhookRecord, new_secret, retry_delay,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long an instance trusts its list of subscribed webhooks: a webhook created on
/// another instance hears about events here at most this much later.
const SUBSCRIBERS_TTL: Duration = Duration::from_secs(2);
/// How long a claimed delivery is an instance's before another may take it (an instance
/// that died mid-delivery loses it for this long).
const LEASE: Duration = Duration::from_secs(30);
/// Deliveries attempted at once per round.
const ROUND: usize = 32;
/// Longest pause between rounds when nothing wakes the loop.
const IDLE: Duration = Duration::from_secs(1);
/// Longest time a graceful shutdown spends delivering what is due.
const DRAIN: Duration = Duration::from_secs(10);
/// Most deliveries the log route returns.
const DELIVERIES_SHOWN: usize = 50;

/// Enabled webhooks by event, as this instance last read them.
#[derive(Debug, Default)]
pub(super) struct Subscribers {
    read: HashMap<WebhookEvent, (Instant, Arc<Vec<WebhookRecord>>)>,
}

impl Shortener {
    /// Registers a webhook for the caller's links. The answer holds the signing secret,
    /// the only time it is shown. URLs follow `original_url`'s rules (private and loopback
    /// addresses only when the service allows them, see
    /// [`ShortenerBuilder::webhooks_allow_private`](crate::ShortenerBuilder::webhooks_allow_private)).
    pub async fn create_webhook(
        &self,
        principal: &Principal,
        new: NewWebhook,
    ) -> Result<WebhookRecord> {
        let url = self.validate_webhook_url(&new.url)?;
        let events = validate_events(new.events)?;
        let description = validate_description(new.description)?;
        if self.inner.webhooks.webhooks(principal.user_id).await?.len() >= MAX_WEBHOOKS {
            return Err(Error::invalid(
                "url",
                "too_many_webhooks",
                format!("at most {MAX_WEBHOOKS} webhooks per account"),
            ));
        }
        let record = WebhookRecord {
            webhook: Webhook {
                id: Uuid::now_v7(),
                owner_id: principal.user_id,
                url,
                events,
                description,
                enabled: true,
                failures: 0,
                created_at: self.now(),
            },
            secret: new_secret(),
        };
        self.inner.webhooks.insert_webhook(&record).await?;
        self.forget_subscribers();
        Ok(record)
    }

    /// The caller's webhooks, newest first.
    pub async fn webhooks(&self, principal: &Principal) -> Result<Vec<Webhook>> {
        Ok(self
            .inner
            .webhooks
            .webhooks(principal.user_id)
            .await?
            .into_iter()
            .map(|r| r.webhook)
            .collect())
    }

    async fn own_webhook(&self, principal: &Principal, id: Uuid) -> Result<WebhookRecord> {
        match self.inner.webhooks.webhook(id).await? {
            Some(r) if r.webhook.owner_id == principal.user_id => Ok(r),
            _ => Err(Error::NotFound { what: "webhook" }),
        }
    }

    /// Changes a webhook of the caller's; enabling it again clears its failure count.
    pub async fn update_webhook(
        &self,
        principal: &Principal,
        id: Uuid,
        mut patch: WebhookPatch,
    ) -> Result<Webhook> {
        self.own_webhook(principal, id).await?;
        if let Some(url) = &patch.url {
            patch.url = Some(self.validate_webhook_url(url)?);
        }
        if let Some(events) = patch.events.take() {
            patch.events = Some(validate_events(events)?);
        }
        if let Some(description) = patch.description.take() {
            patch.description = Some(validate_description(description)?);
        }
        let updated = self
            .inner
            .webhooks
            .update_webhook(id, &patch)
            .await?
            .ok_or(Error::NotFound { what: "webhook" })?;
        self.forget_subscribers();
        Ok(updated.webhook)
    }

    /// Deletes a webhook of the caller's with its pending deliveries.
    pub async fn delete_webhook(&self, principal: &Principal, id: Uuid) -> Result<()> {
        self.own_webhook(principal, id).await?;
        self.inner.webhooks.delete_webhook(id).await?;
        self.forget_subscribers();
        Ok(())
    }

    /// The latest attempts of a webhook of the caller's, newest first.
    pub async fn webhook_deliveries(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Vec<Delivery>> {
        self.own_webhook(principal, id).await?;
        self.inner.webhooks.deliveries(id, DELIVERIES_SHOWN).await
    }

    fn validate_webhook_url(&self, raw: &str) -> Result<String> {
        if self.inner.sender.allows_private() {
            let url = url::Url::parse(raw.trim())
                .map_err(|e| Error::invalid("url", "invalid_url", format!("is no URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(Error::invalid(
                    "url",
                    "invalid_url",
                    "must be an http(s) URL with a host",
                ));
            }
            if raw.len() > 2048 {
                return Err(Error::invalid(
                    "url",
                    "invalid_url",
                    "at most 2048 characters",
                ));
            }
            return Ok(url.into());
        }
        crate::validate::validate_url("url", raw, &[]).map(String::from)
    }

    fn forget_subscribers(&self) {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read
            .clear();
    }

    /// The enabled webhooks of `event`, read at most every [`SUBSCRIBERS_TTL`].
    async fn subscribers(&self, event: WebhookEvent) -> Result<Arc<Vec<WebhookRecord>>> {
        let known = self
            .inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read
            .get(&event)
            .filter(|(at, _)| at.elapsed() < SUBSCRIBERS_TTL)
            .map(|(_, list)| list.clone());
        if let Some(list) = known {
            return Ok(list);
        }
        let list = Arc::new(self.inner.webhooks.subscribed(None, event).await?);
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read
            .insert(event, (Instant::now(), list.clone()));
        Ok(list)
    }

    /// A link as webhooks show it (the API's shape).
    fn link_json(&self, link: &Link) -> serde_json::Value {
        let mut value = serde_json::to_value(link).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("owner_id");
            map.insert("domain".into(), self.host_of(link).into());
            map.insert("short_url".into(), self.link_url(link).into());
            map.insert("redirect_type".into(), link.redirect_type.status().into());
            map.insert(
                "password_protected".into(),
                link.password_protected().into(),
            );
        }
        value
    }

    fn job(
        webhook: &Webhook,
        event: WebhookEvent,
        event_id: Uuid,
        data: serde_json::Value,
        now: DateTime<Utc>,
    ) -> DeliveryJob {
        let payload = serde_json::json!({
            "id": event_id,
            "type": event.as_str(),
            "created_at": now,
            "data": data,
        });
        DeliveryJob {
            id: Uuid::now_v7(),
            webhook_id: webhook.id,
            event_id,
            event,
            payload: payload.to_string(),
            attempt: 1,
            due_at: now,
        }
    }

    /// Queues `event` about `link` for its owner's webhooks. A failure is logged, never
    /// passed to the caller: the change itself happened.
    pub(super) async fn emit(&self, event: WebhookEvent, link: &Link) {
        let Some(owner) = link.owner_id else { return };
        let result = async {
            let subscribers = self.subscribers(event).await?;
            let hooks: Vec<&WebhookRecord> = subscribers
                .iter()
                .filter(|r| r.webhook.owner_id == owner)
                .collect();
            if hooks.is_empty() {
                return Ok(());
            }
            let now = self.now();
            let event_id = Uuid::now_v7();
            let data = self.link_json(link);
            let jobs: Vec<DeliveryJob> = hooks
                .iter()
                .map(|r| Self::job(&r.webhook, event, event_id, data.clone(), now))
                .collect();
            self.enqueue(&jobs).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, event = event.as_str(), "queuing a webhook delivery failed");
        }
    }

    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<()> {
        let outcome = self.inner.webhooks.enqueue(jobs).await?;
        Stats::bump(&self.inner.stats.webhook_drops, outcome.dropped);
        if outcome.dropped > 0 {
            tracing::warn!(
                dropped = outcome.dropped,
                "webhook queue full; deliveries dropped"
            );
        }
        if outcome.queued > 0 {
            self.inner.webhook_wake.notify_one();
        }
        Ok(())
    }

    /// Queues `link.clicked` for recorded clicks (the analytics worker calls it before
    /// acknowledging their batch, so a crash before it means a redelivery, not a loss;
    /// the event id is the click's, so a redelivered click is queued once).
    pub(super) async fn clicks_recorded(&self, clicks: &[ClassifiedClick]) -> Result<()> {
        let subscribers = self.subscribers(WebhookEvent::LinkClicked).await?;
        if subscribers.is_empty() {
            return Ok(());
        }
        let mut by_owner: HashMap<Uuid, Vec<&Webhook>> = HashMap::new();
        for r in subscribers.iter() {
            by_owner
                .entry(r.webhook.owner_id)
                .or_default()
                .push(&r.webhook);
        }
        let mut links: HashMap<Uuid, Option<Link>> = HashMap::new();
        let mut jobs = Vec::new();
        let now = self.now();
        for click in clicks {
            let link = match links.entry(click.link_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(self.inner.links.get(click.link_id).await?)
                }
            };
            let Some(link) = link.as_ref() else {
                continue;
            };
            let Some(hooks) = link.owner_id.and_then(|o| by_owner.get(&o)) else {
                continue;
            };
            let click_json = serde_json::to_value(click.to_click()).unwrap_or_default();
            let data = serde_json::json!({"link": self.link_json(link), "click": click_json});
            for hook in hooks {
                jobs.push(Self::job(
                    hook,
                    WebhookEvent::LinkClicked,
                    click.event_id,
                    data.clone(),
                    now,
                ));
            }
        }
        if jobs.is_empty() {
            return Ok(());
        }
        self.enqueue(&jobs).await
    }

    /// One round of deliveries: the due ones, attempted at once; returns how many.
    pub async fn deliver_webhooks(&self) -> Result<usize> {
        let now = self.now();
        let jobs = self.inner.webhooks.claim_jobs(now, LEASE, ROUND).await?;
        let count = jobs.len();
        let mut tasks = tokio::task::JoinSet::new();
        for job in jobs {
            let shortener = self.clone();
            tasks.spawn(async move { shortener.deliver(job).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "recording a webhook delivery failed");
            }
        }
        Ok(count)
    }

    async fn deliver(&self, job: DeliveryJob) -> Result<()> {
        let Some(record) = self.inner.webhooks.webhook(job.webhook_id).await? else {
            return Ok(());
        };
        let delivery = self.inner.sender.send(&record, &job, Utc::now()).await;
        let retry_at = if delivery.succeeded() {
            Stats::bump(&self.inner.stats.webhook_deliveries, 1);
            None
        } else {
            Stats::bump(&self.inner.stats.webhook_failures, 1);
            retry_delay(job.attempt)
                .map(|d| self.now() + chrono::Duration::from_std(d).unwrap_or_default())
        };
        let webhook = self
            .inner
            .webhooks
            .finish_job(&job, &delivery, retry_at)
            .await?;
        if let Some(w) = webhook
            && !w.enabled
            && record.webhook.enabled
        {
            tracing::warn!(webhook = %w.id, failures = w.failures, "webhook disabled after failing deliveries");
            self.forget_subscribers();
        }
        Ok(())
    }
}

fn validate_events(mut events: Vec<WebhookEvent>) -> Result<Vec<WebhookEvent>> {
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    if events.is_empty() {
        return Err(Error::invalid(
            "events",
            "invalid_events",
            "name at least one event",
        ));
    }
    Ok(events)
}

fn validate_description(description: Option<String>) -> Result<Option<String>> {
    let Some(text) = description
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            "description",
            "invalid_description",
            "at most 200 characters, no control characters",
        ));
    }
    Ok(Some(text))
}

/// Delivers while the service lives: a round when something was queued here, at least
/// every second (for jobs other instances queued and retries coming due). When told to
/// stop it delivers what is due once more, then returns.
pub(super) async fn run_deliveries(
    inner: Weak<Inner>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut drain_until = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let shortener = Shortener { inner: strong };
        let stopping = *stop.borrow();
        let delivered = match shortener.deliver_webhooks().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                0
            }
        };
        if stopping {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if delivered == 0 || Instant::now() > until {
                return;
            }
            continue;
        }
        if delivered == ROUND {
            continue;
        }
        let wake = shortener.inner.clone();
        drop(shortener);
        tokio::select! {
            _ = wake.webhook_wake.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Queues `link.clicked` for the analytics worker's batches.
pub(super) struct ClickHook(pub(super) Weak<Inner>);

#[async_trait::async_trait]
impl crate::analytics::AfterRecord for ClickHook {
    async fn recorded(&self, clicks: &[ClassifiedClick]) -> Result<()> {
        let Some(inner) = self.0.upgrade() else {
            return Ok(());
        };
        Shortener { inner }.clicks_recorded(clicks).await
    }
}
