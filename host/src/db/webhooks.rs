//! The `webhooks` and `webhook_deliveries` tables (migration 0012). A delivery is made with its
//! `deliver_webhook` job in one transaction ([`enqueue_delivery`]), so an event is either queued
//! with its job or not at all; the job finds its delivery by `job_id`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Arg, Db, jobs};
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    /// JSON list of event names.
    pub events: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl WebhookRow {
    pub fn events(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, project_id, url, events, enabled, created_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    /// `pending` (attempts to come), `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The receiver's status code at the last attempt that got an answer.
    pub response_status: Option<i32>,
    /// Why the last attempt failed, when it did.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event, status, attempts, response_status, error, created_at";

/// What a delivery's job sends: the delivery, its body, and where and with which secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub id: Uuid,
    pub body: String,
    pub attempts: i32,
    pub url: String,
    pub secret: String,
}

#[tracing::instrument(skip(db, secret))]
pub async fn insert(
    db: &Db,
    project_id: Uuid,
    url: &str,
    events: &[String],
    secret: &str,
) -> Result<WebhookRow, sqlx::Error> {
    let id = Uuid::now_v7();
    let events = serde_json::to_string(events).unwrap_or_else(|_| "[]".into());
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO webhooks (id, project_id, url, events, secret, enabled, created_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6)",
        )
        .bind(id)
        .bind(project_id)
        .bind(url)
        .bind(&events)
        .bind(secret)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    find(db, project_id, id).await?.ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, project_id: Uuid, id: Uuid) -> Result<Option<WebhookRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND project_id = $2");
    dispatch!(db, |pool| sqlx::query_as::<_, WebhookRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(project_id)
        .fetch_optional(pool)
        .await)
}

/// One page of a project's webhooks, newest first, and their number.
#[tracing::instrument(skip(db))]
pub async fn page(db: &Db, project_id: Uuid, limit: i64, offset: i64) -> Result<(Vec<WebhookRow>, i64), sqlx::Error> {
    let from_where = "webhooks WHERE project_id = $1";
    super::page(db, COLUMNS, from_where, "id DESC", &[Arg::Uuid(project_id)], limit, offset).await
}

/// Deletes a webhook and its deliveries (their jobs find nothing left to send).
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, project_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("DELETE FROM webhooks WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

/// The enabled webhooks of a project, with the events each takes.
#[tracing::instrument(skip(db))]
pub async fn enabled_of(db: &Db, project_id: Uuid) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE project_id = $1 AND enabled ORDER BY id");
    dispatch!(db, |pool| sqlx::query_as::<_, WebhookRow>(sqlx::AssertSqlSafe(sql))
        .bind(project_id)
        .fetch_all(pool)
        .await)
}

/// Queues one delivery of `event` (its `body`) to `webhook`, with its job, in one transaction.
#[tracing::instrument(skip(db, body))]
pub async fn enqueue_delivery(
    db: &Db,
    webhook: &WebhookRow,
    file_id: Option<Uuid>,
    event: &str,
    body: &str,
) -> Result<Uuid, sqlx::Error> {
    let mut tx = db.begin().await?;
    let job = jobs::enqueue(&mut tx, Some(webhook.project_id), file_id, jobs::kinds::DELIVER_WEBHOOK).await?;
    let id = Uuid::now_v7();
    let now = Utc::now();
    let open = &mut tx;
    crate::dispatch_tx!(open, |conn| {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, job_id, event, body, status, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(id)
        .bind(webhook.id)
        .bind(job)
        .bind(event)
        .bind(body)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })?;
    tx.commit().await?;
    Ok(id)
}

/// What the delivery of job `job_id` sends; `None` when its webhook was deleted (or disabled)
/// since.
#[tracing::instrument(skip(db))]
pub async fn outgoing(db: &Db, job_id: Uuid) -> Result<Option<Outgoing>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, Outgoing>(
            "SELECT d.id, d.body, d.attempts, w.url, w.secret FROM webhook_deliveries d
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.job_id = $1 AND w.enabled",
        )
        .bind(job_id)
        .fetch_optional(pool)
        .await
    })
}

/// A delivery whose job failed without its own last word (taken back after every attempt, timed
/// out, the database away on its last attempt): `failed`, not `pending` for ever. Binds: reason,
/// now, job id.
pub(crate) const FAIL_BY_JOB: &str = "UPDATE webhook_deliveries SET status = 'failed', error = $1, updated_at = $2 WHERE job_id = $3 AND status = 'pending'";

/// [`FAIL_BY_JOB`] on its own.
#[tracing::instrument(skip(db))]
pub async fn fail_by_job(db: &Db, job_id: Uuid, why: &str) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(FAIL_BY_JOB).bind(super::clip(why)).bind(Utc::now()).bind(job_id).execute(pool).await.map(|_| ())
    })
}

/// Records one attempt of delivery `id`: its status after it, the receiver's code, the reason.
#[tracing::instrument(skip(db))]
pub async fn record_attempt(
    db: &Db,
    id: Uuid,
    status: &str,
    response_status: Option<i32>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, response_status = $2, error = $3, updated_at = $4
             WHERE id = $5",
        )
        .bind(status)
        .bind(response_status)
        .bind(error.map(super::clip))
        .bind(Utc::now())
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// One page of a webhook's deliveries, newest first, and their number.
#[tracing::instrument(skip(db))]
pub async fn deliveries(
    db: &Db,
    webhook_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<DeliveryRow>, i64), sqlx::Error> {
    let from_where = "webhook_deliveries WHERE webhook_id = $1";
    super::page(db, DELIVERY_COLUMNS, from_where, "id DESC", &[Arg::Uuid(webhook_id)], limit, offset).await
}
