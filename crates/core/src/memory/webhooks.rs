//! [`WebhookStore`] of the [`MemoryStore`]: pending deliveries are bounded
//! ([`MAX_PENDING_DELIVERIES`]) and live as long as the process (the service drains them
//! at graceful shutdown).

use super::{MemoryStore, lock};
use crate::error::Result;
use crate::store::WebhookStore;
use crate::webhooks::{
    DELIVERY_LOG, DISABLE_AFTER, Delivery, DeliveryJob, EnqueueOutcome, Webhook, WebhookEvent,
    WebhookPatch, WebhookRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use uuid::Uuid;

/// Most deliveries waiting in a memory store; past it new ones are dropped (and counted).
pub const MAX_PENDING_DELIVERIES: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct WebhookState {
    hooks: HashMap<Uuid, WebhookRecord>,
    jobs: HashMap<Uuid, DeliveryJob>,
    /// `(webhook_id, event_id)` of every queued job.
    queued: HashSet<(Uuid, Uuid)>,
    log: HashMap<Uuid, VecDeque<Delivery>>,
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> Result<()> {
        lock(&self.webhooks)
            .hooks
            .insert(webhook.webhook.id, webhook.clone());
        Ok(())
    }

    async fn webhooks(&self, owner_id: Uuid) -> Result<Vec<WebhookRecord>> {
        let state = lock(&self.webhooks);
        let mut found: Vec<WebhookRecord> = state
            .hooks
            .values()
            .filter(|h| h.webhook.owner_id == owner_id)
            .cloned()
            .collect();
        found.sort_by_key(|h| std::cmp::Reverse((h.webhook.created_at, h.webhook.id)));
        Ok(found)
    }

    async fn webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>> {
        Ok(lock(&self.webhooks).hooks.get(&id).cloned())
    }

    async fn update_webhook(
        &self,
        id: Uuid,
        patch: &WebhookPatch,
    ) -> Result<Option<WebhookRecord>> {
        let mut state = lock(&self.webhooks);
        Ok(state.hooks.get_mut(&id).map(|h| {
            patch.apply(&mut h.webhook);
            h.clone()
        }))
    }

    async fn delete_webhook(&self, id: Uuid) -> Result<bool> {
        let mut state = lock(&self.webhooks);
        let existed = state.hooks.remove(&id).is_some();
        state.jobs.retain(|_, j| j.webhook_id != id);
        state.queued.retain(|(hook, _)| *hook != id);
        state.log.remove(&id);
        Ok(existed)
    }

    async fn subscribed(
        &self,
        owner_id: Option<Uuid>,
        event: WebhookEvent,
    ) -> Result<Vec<WebhookRecord>> {
        let state = lock(&self.webhooks);
        Ok(state
            .hooks
            .values()
            .filter(|h| {
                h.webhook.enabled
                    && h.webhook.events.contains(&event)
                    && owner_id.is_none_or(|o| o == h.webhook.owner_id)
            })
            .cloned()
            .collect())
    }

    async fn enqueue(&self, jobs: &[DeliveryJob]) -> Result<EnqueueOutcome> {
        let mut state = lock(&self.webhooks);
        let mut outcome = EnqueueOutcome::default();
        for job in jobs {
            if state.queued.contains(&(job.webhook_id, job.event_id)) {
                outcome.duplicates += 1;
            } else if state.jobs.len() >= MAX_PENDING_DELIVERIES {
                outcome.dropped += 1;
            } else {
                state.queued.insert((job.webhook_id, job.event_id));
                state.jobs.insert(job.id, job.clone());
                outcome.queued += 1;
            }
        }
        Ok(outcome)
    }

    async fn claim_jobs(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>> {
        let mut state = lock(&self.webhooks);
        let state = &mut *state;
        let orphans: Vec<Uuid> = state
            .jobs
            .values()
            .filter(|j| {
                state
                    .hooks
                    .get(&j.webhook_id)
                    .is_none_or(|h| !h.webhook.enabled)
            })
            .map(|j| j.id)
            .collect();
        for id in orphans {
            if let Some(job) = state.jobs.remove(&id) {
                state.queued.remove(&(job.webhook_id, job.event_id));
            }
        }
        let mut due: Vec<&mut DeliveryJob> = state
            .jobs
            .values_mut()
            .filter(|j| j.due_at <= now)
            .collect();
        due.sort_by_key(|j| (j.due_at, j.id));
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        Ok(due
            .into_iter()
            .take(limit)
            .map(|j| {
                let claimed = j.clone();
                j.due_at = until;
                claimed
            })
            .collect())
    }

    async fn finish_job(
        &self,
        job: &DeliveryJob,
        delivery: &Delivery,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Webhook>> {
        let mut state = lock(&self.webhooks);
        let log = state.log.entry(job.webhook_id).or_default();
        log.push_front(delivery.clone());
        log.truncate(DELIVERY_LOG);
        let webhook = state.hooks.get_mut(&job.webhook_id).map(|h| {
            if delivery.succeeded() {
                h.webhook.failures = 0;
            } else {
                h.webhook.failures += 1;
                if h.webhook.failures >= DISABLE_AFTER {
                    h.webhook.enabled = false;
                }
            }
            h.webhook.clone()
        });
        match (retry_at, state.jobs.get_mut(&job.id)) {
            (Some(at), Some(queued)) => {
                queued.attempt = job.attempt + 1;
                queued.due_at = at;
            }
            _ => {
                state.jobs.remove(&job.id);
                state.queued.remove(&(job.webhook_id, job.event_id));
            }
        }
        Ok(webhook)
    }

    async fn deliveries(&self, webhook_id: Uuid, limit: usize) -> Result<Vec<Delivery>> {
        Ok(lock(&self.webhooks)
            .log
            .get(&webhook_id)
            .map(|log| log.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn pending_jobs(&self) -> Result<u64> {
        Ok(lock(&self.webhooks).jobs.len() as u64)
    }
}
