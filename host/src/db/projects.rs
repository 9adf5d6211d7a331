//! The `projects` table. Soft-deleted projects (`deleted_at` set) are invisible to every query
//! here except the ones named `_including_deleted` (for the cleanup).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Arg, Db};
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub owner_id: Uuid,
    /// JSON text of `ProjectSettings` (JSONB on PostgreSQL, TEXT on SQLite; read as text on both).
    pub settings: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, slug, owner_id, CAST(settings AS TEXT) AS settings, created_at, updated_at";

pub struct NewProject<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub owner_id: Uuid,
    pub settings: &'a serde_json::Value,
}

#[tracing::instrument(skip(db, project), fields(name = project.name))]
pub async fn insert(db: &Db, project: &NewProject<'_>) -> Result<ProjectRow, sqlx::Error> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let settings = sqlx::types::Json(project.settings);
    dispatch!(db, |pool| {
        sqlx::query("INSERT INTO projects (id, name, slug, owner_id, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(id)
            .bind(project.name)
            .bind(project.slug)
            .bind(project.owner_id)
            .bind(settings)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    find(db, id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// A live (not soft-deleted) project.
#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<ProjectRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE id = $1 AND deleted_at IS NULL");
    dispatch!(db, |pool| sqlx::query_as::<_, ProjectRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// Live projects whose settings mention `text` as a JSON string (at most `limit`): candidates
/// for a CORS check that has no project to go by (a `/tus/` creation's preflight carries no
/// credentials); the caller parses each one's settings to be sure.
#[tracing::instrument(skip(db))]
pub async fn mentioning(db: &Db, text: &str, limit: i64) -> Result<Vec<ProjectRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE deleted_at IS NULL AND CAST(settings AS TEXT) LIKE $1 ORDER BY id LIMIT $2"
    );
    // `%` and `_` cannot be escaped the same way in both dialects; a wider match is parsed away.
    let pattern = format!("%\"{text}\"%");
    dispatch!(db, |pool| sqlx::query_as::<_, ProjectRow>(sqlx::AssertSqlSafe(sql))
        .bind(pattern)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// One page of the live projects, newest first (only `owner`'s when given), and their number.
#[tracing::instrument(skip(db))]
pub async fn page(
    db: &Db,
    owner: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProjectRow>, i64), sqlx::Error> {
    let from_where = "projects WHERE deleted_at IS NULL AND ($1 IS NULL OR owner_id = $1)";
    super::page(db, COLUMNS, from_where, "id DESC", &[Arg::MaybeUuid(owner)], limit, offset).await
}

/// Every live project (only `owner`'s when given), newest first.
#[tracing::instrument(skip(db))]
pub async fn list_all(db: &Db, owner: Option<Uuid>) -> Result<Vec<ProjectRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE deleted_at IS NULL AND ($1 IS NULL OR owner_id = $1) ORDER BY id DESC"
    );
    dispatch!(db, |pool| sqlx::query_as::<_, ProjectRow>(sqlx::AssertSqlSafe(sql)).bind(owner).fetch_all(pool).await)
}

/// Renames and/or replaces the settings of a live project. The slug never changes.
#[tracing::instrument(skip(db, settings))]
pub async fn update(
    db: &Db,
    id: Uuid,
    name: Option<&str>,
    settings: Option<&serde_json::Value>,
) -> Result<bool, sqlx::Error> {
    let settings = settings.map(sqlx::types::Json);
    let affected = dispatch!(db, |pool| {
        sqlx::query(
            "UPDATE projects SET name = COALESCE($1, name), settings = COALESCE($2, settings), updated_at = $3
             WHERE id = $4 AND deleted_at IS NULL",
        )
        .bind(name)
        .bind(settings)
        .bind(Utc::now())
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

/// Hides a project and disables its keys, in one transaction.
#[tracing::instrument(skip(db))]
pub async fn soft_delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        let mut tx = pool.begin().await?;
        let hidden =
            sqlx::query("UPDATE projects SET deleted_at = $1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("UPDATE api_keys SET enabled = FALSE WHERE project_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(hidden == 1)
    })
}

/// Projects soft-deleted before `cutoff`: what the cleanup purges.
#[tracing::instrument(skip(db))]
pub async fn deleted_before(db: &Db, cutoff: DateTime<Utc>) -> Result<Vec<ProjectRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM projects WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY id");
    dispatch!(db, |pool| sqlx::query_as::<_, ProjectRow>(sqlx::AssertSqlSafe(sql)).bind(cutoff).fetch_all(pool).await)
}

/// Removes a project's rows; files, variants, keys and jobs go with it (ON DELETE CASCADE).
#[tracing::instrument(skip(db))]
pub async fn delete_rows(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}
