//! The `api_keys` table: a key's prefix for lookup and the SHA-256 of the whole key.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Arg, Db};
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, project_id, name, prefix, enabled, created_at, last_used_at";

#[tracing::instrument(skip(db, key_hash))]
pub async fn insert(
    db: &Db,
    project_id: Uuid,
    name: &str,
    prefix: &str,
    key_hash: &str,
) -> Result<ApiKeyRow, sqlx::Error> {
    let id = Uuid::now_v7();
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, enabled, created_at) VALUES ($1, $2, $3, $4, $5, TRUE, $6)",
        )
        .bind(id)
        .bind(project_id)
        .bind(name)
        .bind(prefix)
        .bind(key_hash)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    find(db, project_id, id).await?.ok_or(sqlx::Error::RowNotFound)
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, project_id: Uuid, id: Uuid) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND project_id = $2");
    dispatch!(db, |pool| sqlx::query_as::<_, ApiKeyRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(project_id)
        .fetch_optional(pool)
        .await)
}

/// One page of a project's keys, newest first, and their number.
#[tracing::instrument(skip(db))]
pub async fn page(db: &Db, project_id: Uuid, limit: i64, offset: i64) -> Result<(Vec<ApiKeyRow>, i64), sqlx::Error> {
    let from_where = "api_keys WHERE project_id = $1";
    super::page(db, COLUMNS, from_where, "id DESC", &[Arg::Uuid(project_id)], limit, offset).await
}

#[tracing::instrument(skip(db))]
pub async fn set_enabled(db: &Db, project_id: Uuid, id: Uuid, enabled: bool) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("UPDATE api_keys SET enabled = $1 WHERE id = $2 AND project_id = $3")
            .bind(enabled)
            .bind(id)
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, project_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("DELETE FROM api_keys WHERE id = $1 AND project_id = $2")
            .bind(id)
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

/// What authenticating a key needs: its hash, whether it and its project are live.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyCredential {
    pub id: Uuid,
    pub project_id: Uuid,
    pub key_hash: String,
    pub enabled: bool,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The enabled key with this prefix whose project is live, if any.
#[tracing::instrument(skip_all)]
pub async fn find_live_by_prefix(db: &Db, prefix: &str) -> Result<Option<KeyCredential>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, KeyCredential>(
            "SELECT k.id, k.project_id, k.key_hash, k.enabled, k.last_used_at
             FROM api_keys k JOIN projects p ON p.id = k.project_id
             WHERE k.prefix = $1 AND k.enabled = TRUE AND p.deleted_at IS NULL",
        )
        .bind(prefix)
        .fetch_optional(pool)
        .await
    })
}

/// Records a use, at most once a minute per key (a write per request would serialise SQLite).
#[tracing::instrument(skip(db))]
pub async fn touch(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(now - Duration::minutes(1))
        .execute(pool)
        .await
        .map(|_| ())
    })
}
