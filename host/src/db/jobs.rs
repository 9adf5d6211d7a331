//! The `jobs` table: what the jobs API shows. The worker keeps it current (jobs issue).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

pub const STATUSES: [&str; 4] = ["pending", "processing", "completed", "failed"];

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub file_id: Option<Uuid>,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, file_id, kind, status, attempts, error, created_at, updated_at";

#[tracing::instrument(skip(db))]
pub async fn insert(
    db: &Db,
    project_id: Option<Uuid>,
    file_id: Option<Uuid>,
    kind: &str,
) -> Result<JobRow, sqlx::Error> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO jobs (id, project_id, file_id, kind, status, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
        )
        .bind(id)
        .bind(project_id)
        .bind(file_id)
        .bind(kind)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    find(db, id).await?.ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// Sets a job's status (and its error, attempts), for the worker.
#[tracing::instrument(skip(db, error))]
pub async fn set_status(
    db: &Db,
    id: Uuid,
    status: &str,
    attempts: i32,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE jobs SET status = $1, attempts = $2, error = $3, updated_at = $4 WHERE id = $5")
            .bind(status)
            .bind(attempts)
            .bind(error)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// A project's jobs, newest first, optionally of one status.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    project_id: Uuid,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE project_id = $1 AND ($2 IS NULL OR status = $2) ORDER BY id DESC LIMIT $3 OFFSET $4"
    );
    dispatch!(db, |pool| {
        sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

#[tracing::instrument(skip(db))]
pub async fn count(db: &Db, project_id: Uuid, status: Option<&str>) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE project_id = $1 AND ($2 IS NULL OR status = $2)")
            .bind(project_id)
            .bind(status)
            .fetch_one(pool)
            .await
    })
}
