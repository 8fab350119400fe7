//! `/api/v1/webhooks`: signed deliveries of events about the caller's links.

use super::input::Text;
use super::urls::{NoContent, nullable, present};
use super::{ApiResult, Auth, Tag};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use hoplink::webhooks::{Delivery, NewWebhook, Webhook, WebhookEvent, WebhookPatch};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use std::sync::Arc;
use uuid::Uuid;

/// An event a webhook can hear about (its owner's links only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[allow(clippy::enum_variant_names)] // they mirror the event names, `link.*`
pub enum EventName {
    /// A link was created (API, bulk or import).
    #[oai(rename = "link.created")]
    LinkCreated,
    /// A link was changed.
    #[oai(rename = "link.updated")]
    LinkUpdated,
    /// A link was deleted.
    #[oai(rename = "link.deleted")]
    LinkDeleted,
    /// A link was clicked (bots included, marked).
    #[oai(rename = "link.clicked")]
    LinkClicked,
}

impl From<EventName> for WebhookEvent {
    fn from(e: EventName) -> Self {
        match e {
            EventName::LinkCreated => WebhookEvent::LinkCreated,
            EventName::LinkUpdated => WebhookEvent::LinkUpdated,
            EventName::LinkDeleted => WebhookEvent::LinkDeleted,
            EventName::LinkClicked => WebhookEvent::LinkClicked,
        }
    }
}

impl From<WebhookEvent> for EventName {
    fn from(e: WebhookEvent) -> Self {
        match e {
            WebhookEvent::LinkCreated => EventName::LinkCreated,
            WebhookEvent::LinkUpdated => EventName::LinkUpdated,
            WebhookEvent::LinkDeleted => EventName::LinkDeleted,
            WebhookEvent::LinkClicked => EventName::LinkClicked,
        }
    }
}

/// A new webhook.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct NewWebhookBody {
    /// Where deliveries go: an http(s) URL to a public host (`WEBHOOK_ALLOW_PRIVATE`
    /// allows private and loopback ones).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: Text,
    /// What it hears about.
    #[oai(validator(min_items = 1, max_items = 4))]
    pub events: Vec<EventName>,
    /// For people.
    #[oai(
        validator(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub description: Option<Text>,
}

impl poem_openapi::types::Example for NewWebhookBody {
    fn example() -> Self {
        NewWebhookBody {
            url: "https://hooks.example.com/hoplink".into(),
            events: vec![EventName::LinkCreated, EventName::LinkClicked],
            description: Some("CRM sync".into()),
        }
    }
}

/// A change to a webhook: absent fields stay.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct PatchWebhookBody {
    /// New URL.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: MaybeUndefined<Text>,
    /// New events.
    #[oai(validator(min_items = 1, max_items = 4))]
    pub events: MaybeUndefined<Vec<EventName>>,
    /// New description; null removes it.
    #[oai(
        validator(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"),
        nullable
    )]
    pub description: MaybeUndefined<Text>,
    /// `true` turns a webhook back on (and clears its failures), `false` pauses it.
    pub enabled: MaybeUndefined<bool>,
}

impl poem_openapi::types::Example for PatchWebhookBody {
    fn example() -> Self {
        PatchWebhookBody {
            url: MaybeUndefined::Undefined,
            events: MaybeUndefined::Undefined,
            description: MaybeUndefined::Undefined,
            enabled: MaybeUndefined::Value(true),
        }
    }
}

/// A webhook (without its secret).
#[derive(Debug, Object)]
#[oai(example)]
pub struct WebhookBody {
    /// Identifier.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What it hears about.
    pub events: Vec<EventName>,
    /// For people.
    pub description: Option<String>,
    /// False after 20 failed deliveries in a row, or when paused.
    pub enabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookBody {
    fn from(w: Webhook) -> Self {
        WebhookBody {
            id: w.id,
            url: w.url,
            events: w.events.into_iter().map(Into::into).collect(),
            description: w.description,
            enabled: w.enabled,
            created_at: w.created_at,
        }
    }
}

fn example_webhook() -> WebhookBody {
    WebhookBody {
        id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_0009),
        url: "https://hooks.example.com/hoplink".into(),
        events: vec![EventName::LinkCreated, EventName::LinkClicked],
        description: Some("CRM sync".into()),
        enabled: true,
        created_at: DateTime::from_timestamp(1_763_802_000, 0).unwrap_or_default(),
    }
}

impl poem_openapi::types::Example for WebhookBody {
    fn example() -> Self {
        example_webhook()
    }
}

/// A created webhook: the only time `secret` is shown.
#[derive(Debug, Object)]
#[oai(example)]
pub struct WebhookCreatedBody {
    /// Identifier.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// What it hears about.
    pub events: Vec<EventName>,
    /// For people.
    pub description: Option<String>,
    /// True.
    pub enabled: bool,
    /// The signing secret (`whsec_` and base64): verify `webhook-signature` with it.
    pub secret: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl poem_openapi::types::Example for WebhookCreatedBody {
    fn example() -> Self {
        let w = example_webhook();
        WebhookCreatedBody {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            created_at: w.created_at,
        }
    }
}

/// Your webhooks.
#[derive(Debug, Object)]
#[oai(example)]
pub struct WebhookList {
    /// Newest first.
    pub items: Vec<WebhookBody>,
}

impl poem_openapi::types::Example for WebhookList {
    fn example() -> Self {
        WebhookList {
            items: vec![example_webhook()],
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Object)]
pub struct DeliveryBody {
    /// Identifier.
    pub id: Uuid,
    /// The event (`webhook-id`).
    pub event_id: Uuid,
    /// Its type.
    pub event: EventName,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed; null for a success.
    pub error: Option<String>,
    /// When it was tried.
    pub at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryBody {
    fn from(d: Delivery) -> Self {
        DeliveryBody {
            id: d.id,
            event_id: d.event_id,
            event: d.event.into(),
            attempt: d.attempt,
            status_code: d.status_code,
            error: d.error,
            at: d.at,
        }
    }
}

/// The latest attempts, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DeliveryList {
    /// At most 50.
    pub items: Vec<DeliveryBody>,
}

impl poem_openapi::types::Example for DeliveryList {
    fn example() -> Self {
        DeliveryList {
            items: vec![DeliveryBody {
                id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_000a),
                event_id: Uuid::from_u128(0x0193_5a3c_0000_7000_8000_0000_0000_000b),
                event: EventName::LinkCreated,
                attempt: 1,
                status_code: Some(204),
                error: None,
                at: DateTime::from_timestamp(1_763_802_060, 0).unwrap_or_default(),
            }],
        }
    }
}

#[derive(ApiResponse)]
enum CreatedWebhook {
    /// Created; `secret` is shown only now.
    #[oai(status = 201)]
    Created(Json<WebhookCreatedBody>),
}

#[derive(ApiResponse)]
enum OkWebhooks {
    /// Your webhooks.
    #[oai(status = 200)]
    Ok(Json<WebhookList>),
}

#[derive(ApiResponse)]
enum OkWebhook {
    /// The webhook as it is now.
    #[oai(status = 200)]
    Ok(Json<WebhookBody>),
}

#[derive(ApiResponse)]
enum OkDeliveries {
    /// The latest attempts.
    #[oai(status = 200)]
    Ok(Json<DeliveryList>),
}

pub struct WebhooksApi;

#[OpenApi]
impl WebhooksApi {
    /// Register a webhook
    ///
    /// Deliveries are `POST`s of `{id, type, created_at, data}` (`data`: the link, or for
    /// `link.clicked` `{link, click}`), signed as Standard Webhooks sign them: headers
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`
    /// of `id.timestamp.body`, keyed by the bytes of the secret after `whsec_`. A `2xx`
    /// within 5 s is a success; anything else is tried again with backoff (8 attempts
    /// over about four hours), and 20 failures in a row disable the webhook.
    #[oai(
        path = "/api/v1/webhooks",
        method = "post",
        operation_id = "create_webhook",
        tag = "Tag::Webhooks"
    )]
    async fn create_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        body: Json<NewWebhookBody>,
    ) -> ApiResult<CreatedWebhook> {
        let body = body.0;
        let record = state
            .shortener
            .create_webhook(
                &auth.principal(),
                NewWebhook {
                    url: body.url.into_inner(),
                    events: body.events.into_iter().map(Into::into).collect(),
                    description: body.description.map(Text::into_inner),
                },
            )
            .await?;
        let w = record.webhook;
        Ok(CreatedWebhook::Created(Json(WebhookCreatedBody {
            id: w.id,
            url: w.url,
            events: w.events.into_iter().map(Into::into).collect(),
            description: w.description,
            enabled: w.enabled,
            secret: record.secret,
            created_at: w.created_at,
        })))
    }

    /// List your webhooks
    #[oai(
        path = "/api/v1/webhooks",
        method = "get",
        operation_id = "list_webhooks",
        tag = "Tag::Webhooks"
    )]
    async fn list_webhooks(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> ApiResult<OkWebhooks> {
        let hooks = state.shortener.webhooks(&auth.principal()).await?;
        Ok(OkWebhooks::Ok(Json(WebhookList {
            items: hooks.into_iter().map(Into::into).collect(),
        })))
    }

    /// Change a webhook
    #[oai(
        path = "/api/v1/webhooks/:id",
        method = "patch",
        operation_id = "update_webhook",
        tag = "Tag::Webhooks"
    )]
    async fn update_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
        body: Json<PatchWebhookBody>,
    ) -> ApiResult<OkWebhook> {
        let body = body.0;
        let patch = WebhookPatch {
            url: present("url", body.url)?.map(Text::into_inner),
            events: present("events", body.events)?
                .map(|e| e.into_iter().map(Into::into).collect()),
            description: nullable(body.description, Text::into_inner),
            enabled: present("enabled", body.enabled)?,
        };
        let updated = state
            .shortener
            .update_webhook(&auth.principal(), id.0, patch)
            .await?;
        Ok(OkWebhook::Ok(Json(updated.into())))
    }

    /// Delete a webhook
    ///
    /// Its pending deliveries go with it.
    #[oai(
        path = "/api/v1/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook",
        tag = "Tag::Webhooks"
    )]
    async fn delete_webhook(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        state
            .shortener
            .delete_webhook(&auth.principal(), id.0)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// A webhook's latest deliveries
    #[oai(
        path = "/api/v1/webhooks/:id/deliveries",
        method = "get",
        operation_id = "webhook_deliveries",
        tag = "Tag::Webhooks"
    )]
    async fn webhook_deliveries(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<Uuid>,
    ) -> ApiResult<OkDeliveries> {
        let deliveries = state
            .shortener
            .webhook_deliveries(&auth.principal(), id.0)
            .await?;
        Ok(OkDeliveries::Ok(Json(DeliveryList {
            items: deliveries.into_iter().map(Into::into).collect(),
        })))
    }
}
