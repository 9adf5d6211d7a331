//! `/projects/{id}/webhooks`: a project's webhooks and their deliveries (owner or su; others
//! get 404). See [`crate::webhooks`].

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::Path;
use super::pagination::{PageQuery, Paginated, Pagination};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::webhooks::{DeliveryRow, WebhookRow};
use crate::http::error::{AppResult, ErrorBody};
use crate::webhooks;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: `http` or `https`, on a public address (unless the server
    /// runs with `WEBHOOK_ALLOW_PRIVATE=true`).
    #[schema(example = "https://example.com/hooks/media")]
    pub url: String,
    /// Any of `file.created`, `file.ready`, `file.failed`, `variant.ready`, `variant.failed`,
    /// `file.deleted`.
    #[schema(example = json!(["file.ready", "variant.failed"]))]
    pub events: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookRow> for WebhookView {
    fn from(row: WebhookRow) -> Self {
        WebhookView { events: row.events(), id: row.id, url: row.url, enabled: row.enabled, created_at: row.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`, Standard Webhooks): shown only here.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    /// Also the `webhook-id` header it is sent with (`msg_` + this id without dashes).
    pub id: Uuid,
    #[schema(example = "file.ready")]
    pub event: String,
    /// `pending` (attempts to come), `succeeded` or `failed` (for good).
    #[schema(example = "succeeded")]
    pub status: String,
    pub attempts: i32,
    /// The receiver's status code at the last attempt it answered.
    pub response_status: Option<i32>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        DeliveryView {
            id: row.id,
            event: row.event,
            status: row.status,
            attempts: row.attempts,
            response_status: row.response_status,
            error: row.error,
            created_at: row.created_at,
        }
    }
}

/// Register a webhook. Deliveries follow Standard Webhooks: `webhook-id`, `webhook-timestamp`
/// and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the
/// secret), body `{"type", "timestamp", "data"}`; retried with backoff for 24 hours.
#[utoipa::path(
    post, path = "/projects/{id}/webhooks", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CreateWebhook,
    responses(
        (status = 201, body = NewWebhookView),
        (status = 400, description = "`validation_failed`: a bad URL, a private target, an unknown event", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`too_many_webhooks`", body = ErrorBody),
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateWebhook>,
) -> AppResult<(StatusCode, Json<NewWebhookView>)> {
    let (row, secret) = webhooks::create(&state, user, id, &body.url, &body.events).await?;
    Ok((StatusCode::CREATED, Json(NewWebhookView { webhook: row.into(), secret })))
}

/// List a project's webhooks (without their secrets), newest first.
#[utoipa::path(
    get, path = "/projects/{id}/webhooks", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Paginated<WebhookView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn list_webhooks(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    page: Pagination,
) -> AppResult<Json<Paginated<WebhookView>>> {
    let (rows, total) = webhooks::list(&state, user, id, (page.limit(), page.offset())).await?;
    Ok(Json(page.wrap(rows.into_iter().map(WebhookView::from).collect(), total)))
}

/// Delete a webhook; its deliveries still pending are not sent.
#[utoipa::path(
    delete, path = "/projects/{id}/webhooks/{wid}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("wid" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn delete_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, wid)): Path<(Uuid, Uuid)>,
) -> AppResult<StatusCode> {
    webhooks::delete(&state, user, id, wid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries, newest first, with how each went.
#[utoipa::path(
    get, path = "/projects/{id}/webhooks/{wid}/deliveries", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("wid" = Uuid, Path), PageQuery),
    responses((status = 200, body = Paginated<DeliveryView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, wid)): Path<(Uuid, Uuid)>,
    page: Pagination,
) -> AppResult<Json<Paginated<DeliveryView>>> {
    let (rows, total) = webhooks::deliveries(&state, user, (id, wid), (page.limit(), page.offset())).await?;
    Ok(Json(page.wrap(rows.into_iter().map(DeliveryView::from).collect(), total)))
}
