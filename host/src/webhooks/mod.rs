//! Webhooks: a project's owner registers URLs for events; each event becomes one delivery per
//! webhook that takes it, queued with its own `deliver_webhook` job ([`send`]), signed as
//! Standard Webhooks ([`signature`]), to targets the SSRF guard allows ([`target`]).
//!
//! Events are emitted after what they tell of is committed ([`file_event`], [`variant_event`]);
//! the body is fixed then (a
//! File as it was, its URLs signed for the project's `url_ttl_seconds` when private), so every
//! attempt sends the same bytes under the same `webhook-id`.

pub mod send;
pub mod signature;
pub mod target;

use serde::Serialize;
use uuid::Uuid;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::webhooks::{self, DeliveryRow, WebhookRow};
use crate::error::{Error, Result};
use crate::projects::service;

/// What a webhook may be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    FileCreated,
    FileReady,
    FileFailed,
    VariantReady,
    VariantFailed,
    FileDeleted,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::FileCreated,
        Event::FileReady,
        Event::FileFailed,
        Event::VariantReady,
        Event::VariantFailed,
        Event::FileDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::FileCreated => "file.created",
            Event::FileReady => "file.ready",
            Event::FileFailed => "file.failed",
            Event::VariantReady => "variant.ready",
            Event::VariantFailed => "variant.failed",
            Event::FileDeleted => "file.deleted",
        }
    }
}

/// At most this many webhooks per project: each event costs one delivery per webhook.
pub const MAX_WEBHOOKS: i64 = 16;

/// Registers a webhook of `project_id` for `events` at `url`; the row and its secret (shown once).
pub async fn create(
    state: &AppState,
    user: CurrentUser,
    project_id: Uuid,
    url: &str,
    events: &[String],
) -> Result<(WebhookRow, String)> {
    service::get(state, user, project_id).await?;
    let parsed = target::parse(url).map_err(|why| Error::validation("url", why))?;
    target::resolve(&parsed, state.config.webhook_allow_private)
        .await
        .map_err(|why| Error::validation("url", why.to_string()))?;
    if events.is_empty() {
        return Err(Error::validation("events", "must name at least one event"));
    }
    let mut names: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if !Event::ALL.iter().any(|e| e.as_str() == event) {
            let known: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
            return Err(Error::validation(
                format!("events[{i}]"),
                format!("must be one of {}, got {event:?}", known.join(", ")),
            ));
        }
        if !names.contains(event) {
            names.push(event.clone());
        }
    }
    let (_, count) = webhooks::page(&state.db, project_id, 1, 0).await?;
    if count >= MAX_WEBHOOKS {
        return Err(Error::Conflict {
            code: "too_many_webhooks",
            message: format!("a project has at most {MAX_WEBHOOKS} webhooks"),
        });
    }
    let secret = signature::new_secret();
    let row = webhooks::insert(&state.db, project_id, parsed.as_str(), &names, &secret).await?;
    Ok((row, secret))
}

pub async fn list(
    state: &AppState,
    user: CurrentUser,
    project_id: Uuid,
    (limit, offset): (i64, i64),
) -> Result<(Vec<WebhookRow>, i64)> {
    service::get(state, user, project_id).await?;
    Ok(webhooks::page(&state.db, project_id, limit, offset).await?)
}

pub async fn delete(state: &AppState, user: CurrentUser, project_id: Uuid, id: Uuid) -> Result<()> {
    service::get(state, user, project_id).await?;
    if !webhooks::delete(&state.db, project_id, id).await? {
        return Err(Error::not_found("webhook", id));
    }
    Ok(())
}

pub async fn deliveries(
    state: &AppState,
    user: CurrentUser,
    (project_id, id): (Uuid, Uuid),
    (limit, offset): (i64, i64),
) -> Result<(Vec<DeliveryRow>, i64)> {
    service::get(state, user, project_id).await?;
    webhooks::find(&state.db, project_id, id).await?.ok_or_else(|| Error::not_found("webhook", id))?;
    Ok(webhooks::deliveries(&state.db, id, limit, offset).await?)
}

/// The body of every delivery (Standard Webhooks' shape).
#[derive(Serialize)]
struct Payload<'a, T: Serialize> {
    r#type: &'a str,
    timestamp: chrono::DateTime<chrono::Utc>,
    data: &'a T,
}

/// What a variant event carries.
#[derive(Serialize)]
struct VariantData<'a> {
    file_id: Uuid,
    variant: &'a str,
}

/// Queues `event` about a variant of file `file_id`.
pub async fn variant_event(state: &AppState, project_id: Uuid, file_id: Uuid, variant: &str, event: Event) {
    let queued = async {
        let takers = takers(state, project_id, event).await?;
        queue(state, &takers, file_id, event, &VariantData { file_id, variant }).await
    };
    if let Err(e) = queued.await {
        log_lost(project_id, file_id, event, &e);
    }
}

/// Queues `event` about file `file_id` of `project_id`, whose data `file` makes (the File
/// answer, see `files::view::announce`): awaited only when a webhook takes the event.
pub async fn file_event<T: Serialize>(
    state: &AppState,
    (project_id, file_id): (Uuid, Uuid),
    event: Event,
    file: impl Future<Output = Result<T>>,
) {
    let queued = async {
        let takers = takers(state, project_id, event).await?;
        if takers.is_empty() {
            return Ok(());
        }
        queue(state, &takers, file_id, event, &file.await?).await
    };
    if let Err(e) = queued.await {
        log_lost(project_id, file_id, event, &e);
    }
}

/// Events never fail what they tell of (it is done and committed): one that cannot be queued is
/// logged.
fn log_lost(project_id: Uuid, file_id: Uuid, event: Event, e: &Error) {
    tracing::error!(project = %project_id, file = %file_id, event = event.as_str(), error = %e, "Webhooks | cannot queue an event");
}

/// The enabled webhooks of a project that take `event`.
async fn takers(state: &AppState, project_id: Uuid, event: Event) -> Result<Vec<WebhookRow>> {
    let name = event.as_str();
    let all = webhooks::enabled_of(&state.db, project_id).await?;
    Ok(all.into_iter().filter(|w| w.events().iter().any(|e| e == name)).collect())
}

/// One delivery of `event` carrying `data` per webhook of `takers`.
async fn queue(
    state: &AppState,
    takers: &[WebhookRow],
    file_id: Uuid,
    event: Event,
    data: &impl Serialize,
) -> Result<()> {
    if takers.is_empty() {
        return Ok(());
    }
    let name = event.as_str();
    let payload = Payload { r#type: name, timestamp: chrono::Utc::now(), data };
    let body = serde_json::to_string(&payload).map_err(|e| Error::Internal(e.into()))?;
    // The job shows the file it tells of, while there is one.
    let job_file = (event != Event::FileDeleted).then_some(file_id);
    for webhook in takers {
        webhooks::enqueue_delivery(&state.db, webhook, job_file, name, &body).await?;
    }
    state.wake.notify_waiters();
    Ok(())
}
