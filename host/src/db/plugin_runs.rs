//! The `plugin_runs` table: one row per plugin call of a render (migration 0008). A job lists
//! its own; a project's daily render budget sums its day.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginRunRow {
    pub job_id: Option<Uuid>,
    pub plugin_name: String,
    pub plugin_version: String,
    pub sha256: String,
    pub variants: i32,
    pub ms: i64,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
}

pub struct NewPluginRun<'a> {
    pub job_id: Option<Uuid>,
    pub project_id: Uuid,
    pub plugin_id: Uuid,
    pub plugin_name: &'a str,
    pub plugin_version: &'a str,
    pub sha256: &'a str,
    pub variants: i32,
    pub ms: i64,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
}

#[tracing::instrument(skip(db, run))]
pub async fn insert(db: &Db, run: &NewPluginRun<'_>) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO plugin_runs (id, job_id, project_id, plugin_id, plugin_name, plugin_version, sha256, variants,
                 ms, cpu_ms, peak_memory_bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(Uuid::now_v7())
        .bind(run.job_id)
        .bind(run.project_id)
        .bind(run.plugin_id)
        .bind(run.plugin_name)
        .bind(run.plugin_version)
        .bind(run.sha256)
        .bind(run.variants)
        .bind(run.ms)
        .bind(run.cpu_ms)
        .bind(run.peak_memory_bytes)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// The plugin wall milliseconds of `project`'s renders since `since`.
#[tracing::instrument(skip(db))]
pub async fn ms_since(db: &Db, project_id: Uuid, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(ms), 0) AS BIGINT) FROM plugin_runs WHERE project_id = $1 AND created_at >= $2",
        )
        .bind(project_id)
        .bind(since)
        .fetch_one(pool)
        .await
    })
}

/// The runs of these jobs, oldest first (one query for a page of jobs).
#[tracing::instrument(skip(db, jobs))]
pub async fn of_jobs(db: &Db, jobs: &[Uuid]) -> Result<Vec<PluginRunRow>, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=jobs.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT job_id, plugin_name, plugin_version, sha256, variants, ms, cpu_ms, peak_memory_bytes
         FROM plugin_runs WHERE job_id IN ({}) ORDER BY id",
        placeholders.join(", ")
    );
    dispatch!(db, |pool| {
        let mut query = sqlx::query_as::<_, PluginRunRow>(sqlx::AssertSqlSafe(sql.clone()));
        for id in jobs {
            query = query.bind(*id);
        }
        query.fetch_all(pool).await
    })
}

/// Deletes the runs made before `before`; how many.
#[tracing::instrument(skip(db))]
pub async fn delete_before(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("DELETE FROM plugin_runs WHERE created_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Deletes a (purged) project's runs; how many.
#[tracing::instrument(skip(db))]
pub async fn delete_of_project(db: &Db, project_id: Uuid) -> Result<u64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("DELETE FROM plugin_runs WHERE project_id = $1")
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
}
