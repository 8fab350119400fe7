//! Webhooks: what they are, how a delivery is signed (Standard Webhooks), when a failed
//! one is tried again, and the HTTP client that sends them (which refuses private
//! addresses at connection time, so a name that resolves elsewhere later is caught).
//!
//! Deliveries are jobs in the [`WebhookStore`](crate::WebhookStore): created by the
//! service (link events) and by the analytics worker (clicks, before it acknowledges
//! their batch on the event bus), claimed by one instance at a time, retried with
//! backoff. See [`Shortener::create_webhook`](crate::Shortener::create_webhook).

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use uuid::Uuid;

/// Prefix of webhook secrets; the rest is the base64 of the key bytes.
pub const SECRET_PREFIX: &str = "whsec_";
/// Attempts of one delivery, the first included.
pub const MAX_ATTEMPTS: u32 = 8;
/// Failed attempts in a row after which a webhook is disabled.
pub const DISABLE_AFTER: u32 = 20;
/// How long a receiver has to answer.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a receiver's answer read (the rest is dropped).
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// Most deliveries kept in a webhook's log.
pub const DELIVERY_LOG: usize = 100;
/// Most webhooks per owner.
pub const MAX_WEBHOOKS: usize = 20;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A link was created (by the API, a bulk create or an import).
    #[serde(rename = "link.created")]
    LinkCreated,
    /// A link was changed.
    #[serde(rename = "link.updated")]
    LinkUpdated,
    /// A link was deleted.
    #[serde(rename = "link.deleted")]
    LinkDeleted,
    /// A link was clicked (as recorded by analytics, bots included).
    #[serde(rename = "link.clicked")]
    LinkClicked,
}

impl WebhookEvent {
    /// Every event.
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::LinkCreated,
        WebhookEvent::LinkUpdated,
        WebhookEvent::LinkDeleted,
        WebhookEvent::LinkClicked,
    ];

    /// `link.created`, …
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::LinkCreated => "link.created",
            WebhookEvent::LinkUpdated => "link.updated",
            WebhookEvent::LinkDeleted => "link.deleted",
            WebhookEvent::LinkClicked => "link.clicked",
        }
    }

    /// The event of a name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A receiver of events about its owner's links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Id.
    pub id: Uuid,
    /// Whose links it hears about.
    pub owner_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What it hears about.
    pub events: Vec<WebhookEvent>,
    /// For people.
    pub description: Option<String>,
    /// Disabled webhooks get nothing (set after [`DISABLE_AFTER`] failures in a row).
    pub enabled: bool,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A webhook with its signing secret, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// The webhook.
    pub webhook: Webhook,
    /// `whsec_` + base64 of the key.
    pub secret: String,
}

/// A new webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where deliveries go (the rules of `original_url`).
    pub url: String,
    /// At least one event.
    pub events: Vec<WebhookEvent>,
    /// For people, at most 200 characters.
    pub description: Option<String>,
}

/// A change to a webhook: `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New events.
    pub events: Option<Vec<WebhookEvent>>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Enable (which also clears the failure count) or disable.
    pub enabled: Option<bool>,
}

impl WebhookPatch {
    /// The patch applied to `webhook`.
    pub fn apply(&self, webhook: &mut Webhook) {
        if let Some(url) = &self.url {
            webhook.url.clone_from(url);
        }
        if let Some(events) = &self.events {
            webhook.events.clone_from(events);
        }
        if let Some(description) = &self.description {
            webhook.description.clone_from(description);
        }
        if let Some(enabled) = self.enabled {
            if enabled && !webhook.enabled {
                webhook.failures = 0;
            }
            webhook.enabled = enabled;
        }
    }
}

/// One event for one webhook, until it is delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    /// Id.
    pub id: Uuid,
    /// To whom.
    pub webhook_id: Uuid,
    /// The event (`webhook-id`); with the webhook, unique.
    pub event_id: Uuid,
    /// What happened.
    pub event: WebhookEvent,
    /// The body sent, the same at every attempt.
    pub payload: String,
    /// The attempt it is at (1 for the first).
    pub attempt: u32,
    /// When it may be tried.
    pub due_at: DateTime<Utc>,
}

/// One attempt, as the deliveries log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// To whom.
    pub webhook_id: Uuid,
    /// The event delivered.
    pub event_id: Uuid,
    /// What happened.
    pub event: WebhookEvent,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed (`None` for a success).
    pub error: Option<String>,
    /// When it was tried.
    pub at: DateTime<Utc>,
}

impl Delivery {
    /// Whether the receiver took it.
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// What [`WebhookStore::enqueue`](crate::WebhookStore::enqueue) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueOutcome {
    /// Jobs queued.
    pub queued: u64,
    /// Jobs already queued (the same event for the same webhook).
    pub duplicates: u64,
    /// Jobs refused because the queue is full.
    pub dropped: u64,
}

/// A fresh secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    format!(
        "{SECRET_PREFIX}{}",
        BASE64.encode(crate::auth::random_bytes::<32>())
    )
}

/// The `webhook-signature` header of a delivery: `v1,` and the base64 HMAC-SHA256, keyed
/// by the secret's bytes, of `id.timestamp.body`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|k| BASE64.decode(k).ok())
        .ok_or_else(|| Error::invalid("secret", "invalid_secret", "is no whsec_ secret"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| Error::invalid("secret", "invalid_secret", "is no usable key"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// When attempt `attempt + 1` is tried after attempt `attempt` failed (`None`: give up):
/// 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h after each failure, each ±20 % at random,
/// so eight attempts span about four hours.
pub fn retry_delay(attempt: u32) -> Option<Duration> {
    const STEPS: [u64; 7] = [5, 30, 120, 600, 1800, 3600, 7200];
    let base = *STEPS.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let jitter =
        0.8 + 0.4 * (u32::from_le_bytes(crate::auth::random_bytes::<4>()) as f64 / u32::MAX as f64);
    Some(Duration::from_secs_f64(base as f64 * jitter))
}

/// Why an address may not receive deliveries (`None`: it may).
pub fn refused_address(ip: IpAddr, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    crate::validate::check_ip(ip).err()
}

/// Resolves names for the delivery client, keeping only addresses deliveries may go to:
/// the check happens where the connection is made, so a name that answered a public
/// address when the webhook was saved and a private one now is refused.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| refused_address(a.ip(), allow_private).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| refused_address(a.ip(), allow_private))
                    .unwrap_or_else(|| "no address".into());
                return Err(format!("{host}: {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sends deliveries: a 5 s timeout, no redirects followed, at most
/// [`MAX_RESPONSE_BYTES`] of an answer read, private addresses refused unless allowed.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A sender; `allow_private` lets deliveries go to private and loopback addresses.
    pub fn new(allow_private: bool) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hoplink-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
            .build()
            .map_err(|e| Error::backend("webhooks", e))?;
        Ok(Sender {
            client,
            allow_private,
        })
    }

    /// Whether private addresses may receive deliveries.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// One attempt of `job` to `webhook`, signed with its secret at `now`.
    pub async fn send(
        &self,
        record: &WebhookRecord,
        job: &DeliveryJob,
        now: DateTime<Utc>,
    ) -> Delivery {
        let (status_code, error) = match self.attempt(record, job, now).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (
                Some(status),
                Some(format!("the receiver answered {status}")),
            ),
            Err(e) => (None, Some(e)),
        };
        Delivery {
            id: Uuid::now_v7(),
            webhook_id: record.webhook.id,
            event_id: job.event_id,
            event: job.event,
            attempt: job.attempt,
            status_code,
            error,
            at: now,
        }
    }

    async fn attempt(
        &self,
        record: &WebhookRecord,
        job: &DeliveryJob,
        now: DateTime<Utc>,
    ) -> std::result::Result<u16, String> {
        let url = url::Url::parse(&record.webhook.url).map_err(|e| e.to_string())?;
        // A literal address never reaches the resolver: check it here.
        match url.host() {
            Some(url::Host::Ipv4(ip)) => {
                if let Some(why) = refused_address(ip.into(), self.allow_private) {
                    return Err(why);
                }
            }
            Some(url::Host::Ipv6(ip)) => {
                if let Some(why) = refused_address(ip.into(), self.allow_private) {
                    return Err(why);
                }
            }
            _ => {}
        }
        let id = job.event_id.to_string();
        let timestamp = now.timestamp();
        let signature = sign(&record.secret, &id, timestamp, job.payload.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut resp = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(job.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        // Read a little of the answer (some receivers want it read), never more.
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        Ok(status)
    }
}

/// An error of the client with its causes (reqwest's own text hides them).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "no answer within 5 s".to_string()
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::text::excerpt(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(sign("nope", "id", 1, b"").is_err());
        assert!(new_secret().starts_with(SECRET_PREFIX));
    }

    #[test]
    fn retries_back_off_and_end() {
        let first = retry_delay(1).unwrap();
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
        let total: Duration = (1..MAX_ATTEMPTS).filter_map(retry_delay).sum();
        assert!(
            total >= Duration::from_secs(3600),
            "at least an hour: {total:?}"
        );
        assert_eq!(
            (1..MAX_ATTEMPTS).filter_map(retry_delay).count() as u32,
            MAX_ATTEMPTS - 1
        );
        assert!(retry_delay(MAX_ATTEMPTS).is_none());
        assert!(retry_delay(0).is_none());
    }
}
