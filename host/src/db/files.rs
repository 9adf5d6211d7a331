//! The `files` and `variants` tables, and the quota-checked insert of an upload.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: String,
    pub filename: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub storage_key: String,
    pub status: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VariantRow {
    pub id: Uuid,
    pub file_id: Uuid,
    pub name: String,
    pub storage_key: String,
    pub status: String,
    pub format: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub size: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const FILE_COLUMNS: &str = "id, project_id, kind, filename, mime_type, size, sha256, storage_key, status, width, height, created_at, updated_at";
const VARIANT_COLUMNS: &str = "id, file_id, name, storage_key, status, format, width, height, size, error, created_at";

pub struct NewFile<'a> {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: &'a str,
    pub filename: &'a str,
    pub mime_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub storage_key: &'a str,
    pub status: &'a str,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

pub struct NewVariant {
    pub name: String,
    pub storage_key: String,
    pub format: String,
}

/// The limits an insert must respect (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_total_bytes: Option<i64>,
    pub max_files: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The rows were written; the `process_image` job's id when one was made.
    Ok { job_id: Option<Uuid> },
    /// A quota would be passed; nothing was written. The message says which.
    QuotaExceeded(String),
    /// The project was deleted meanwhile; nothing was written.
    ProjectGone,
}

/// Bytes and files a project holds now.
#[tracing::instrument(skip(db))]
pub async fn usage(db: &Db, project_id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), COUNT(*) FROM files WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_one(pool)
        .await
    })
}

/// Writes the file row, its pending variant rows and (with `job`) its `process_image` job in one
/// transaction, after checking the quotas under a lock on the project, so that concurrent
/// uploads cannot together pass a quota that each alone respects.
#[tracing::instrument(skip_all, fields(project = %file.project_id, file = %file.id))]
pub async fn insert_checked(
    db: &Db,
    file: &NewFile<'_>,
    variants: &[NewVariant],
    limits: Limits,
    job: bool,
) -> Result<Inserted, sqlx::Error> {
    let now = Utc::now();
    let job_id = job.then(Uuid::now_v7);
    let job_sql = format!(
        "INSERT INTO jobs (id, project_id, file_id, kind, status, attempts, created_at, updated_at, fair_round)
         VALUES ($1, $2, $3, 'process_image', 'pending', 0, $4, $4, {})",
        super::jobs::fair_round(db, "$2")
    );
    // The same statements on both backends; only the way to take the lock differs.
    macro_rules! write {
        ($tx:ident) => {{
            let live: Option<(i64, i64)> = sqlx::query_as(
                "SELECT CAST(COALESCE((SELECT SUM(size) FROM files WHERE project_id = $1), 0) AS BIGINT),
                        (SELECT COUNT(*) FROM files WHERE project_id = $1)
                 FROM projects WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(file.project_id)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some((bytes, files)) = live else { return Ok(Inserted::ProjectGone) };
            if let Some(max) = limits.max_files
                && files + 1 > max
            {
                return Ok(Inserted::QuotaExceeded(format!("the project holds {files} of at most {max} files")));
            }
            if let Some(max) = limits.max_total_bytes
                && bytes + file.size > max
            {
                return Ok(Inserted::QuotaExceeded(format!(
                    "storing {} more bytes would pass the project's limit of {max} bytes ({bytes} used)",
                    file.size
                )));
            }
            sqlx::query(
                "INSERT INTO files (id, project_id, kind, filename, mime_type, size, sha256, storage_key, status, width, height, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(file.id)
            .bind(file.project_id)
            .bind(file.kind)
            .bind(file.filename)
            .bind(file.mime_type)
            .bind(file.size)
            .bind(file.sha256)
            .bind(file.storage_key)
            .bind(file.status)
            .bind(file.width)
            .bind(file.height)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            for v in variants {
                sqlx::query(
                    "INSERT INTO variants (id, file_id, name, storage_key, status, format, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)",
                )
                .bind(Uuid::now_v7())
                .bind(file.id)
                .bind(&v.name)
                .bind(&v.storage_key)
                .bind(&v.format)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            }
            if let Some(job_id) = job_id {
                sqlx::query(sqlx::AssertSqlSafe(job_sql.clone()))
                .bind(job_id)
                .bind(file.project_id)
                .bind(file.id)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            }
            $tx.commit().await?;
            Ok(Inserted::Ok { job_id })
        }};
    }
    match db {
        // IMMEDIATE takes the write lock up front: two deferred transactions that both read and
        // then write would deadlock into SQLITE_BUSY.
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            write!(tx)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE")
                .bind(file.project_id)
                .execute(&mut *tx)
                .await?;
            write!(tx)
        }
    }
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<FileRow>, sqlx::Error> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// A project's files, newest first, optionally of one kind.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &Db,
    project_id: Uuid,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<FileRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE project_id = $1 AND ($2 IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3 OFFSET $4"
    );
    dispatch!(db, |pool| {
        sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(kind)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

#[tracing::instrument(skip(db))]
pub async fn count(db: &Db, project_id: Uuid, kind: Option<&str>) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM files WHERE project_id = $1 AND ($2 IS NULL OR kind = $2)")
            .bind(project_id)
            .bind(kind)
            .fetch_one(pool)
            .await
    })
}

/// The variants of the files of one page of [`list`] (same filters), in one query.
#[tracing::instrument(skip(db))]
pub async fn variants_of_page(
    db: &Db,
    project_id: Uuid,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<VariantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VARIANT_COLUMNS} FROM variants WHERE file_id IN
           (SELECT id FROM files WHERE project_id = $1 AND ($2 IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3 OFFSET $4)
         ORDER BY id"
    );
    dispatch!(db, |pool| {
        sqlx::query_as::<_, VariantRow>(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(kind)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
    })
}

#[tracing::instrument(skip(db))]
pub async fn variants_of(db: &Db, file_id: Uuid) -> Result<Vec<VariantRow>, sqlx::Error> {
    let sql = format!("SELECT {VARIANT_COLUMNS} FROM variants WHERE file_id = $1 ORDER BY id");
    dispatch!(db, |pool| sqlx::query_as::<_, VariantRow>(sqlx::AssertSqlSafe(sql)).bind(file_id).fetch_all(pool).await)
}

/// Removes a file's rows (its variants go with it). False when it was already gone.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

/// A variant rendered and stored: its row becomes `ready` with what was made. False when the
/// row is gone (its file or project was deleted meanwhile).
#[tracing::instrument(skip(db))]
pub async fn mark_variant_ready(
    db: &Db,
    id: Uuid,
    width: i32,
    height: i32,
    size: i64,
    plugin_sha256: &str,
) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "UPDATE variants SET status = 'ready', width = $1, height = $2, size = $3, plugin_sha256 = $4, error = NULL, updated_at = $5
             WHERE id = $6",
        )
        .bind(width)
        .bind(height)
        .bind(size)
        .bind(plugin_sha256)
        .bind(Utc::now())
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// A variant that could not be rendered: `failed`, with the reason (cut to 2 KiB: a plugin's
/// message can be as long as it likes).
#[tracing::instrument(skip(db))]
pub async fn mark_variant_failed(db: &Db, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE variants SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3")
            .bind(super::clip(error))
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

#[tracing::instrument(skip(db))]
pub async fn set_status(db: &Db, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE files SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Every storage key a project's rows name (originals, files, variants): what the cleanup keeps.
#[tracing::instrument(skip(db))]
pub async fn storage_keys(db: &Db, project_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT storage_key FROM files WHERE project_id = $1
             UNION ALL
             SELECT v.storage_key FROM variants v JOIN files f ON f.id = v.file_id WHERE f.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await
    })
}

/// Giving up on a file's job, in two statements shared by the worker's give-up ([`give_up`]) and
/// the stale reclaim's ([`super::jobs::reclaim_stale`]), which runs them in its own transaction.
/// Binds: reason, now, file id.
pub(crate) const GIVE_UP_VARIANTS: &str =
    "UPDATE variants SET status = 'failed', error = $1, updated_at = $2 WHERE file_id = $3 AND status = 'pending'";
/// Binds: now, file id. `failed` when no variant is ready, else `ready`.
pub(crate) const GIVE_UP_FILE: &str = "UPDATE files SET updated_at = $1, status = CASE WHEN EXISTS
         (SELECT 1 FROM variants WHERE file_id = $2 AND status = 'ready') THEN 'ready' ELSE 'failed' END
     WHERE id = $2 AND status = 'processing'";

/// A file whose job gave up: its variants still pending fail with `reason`, and the file is
/// settled (`failed` when no variant is ready, else `ready`), so nothing stays `processing`.
#[tracing::instrument(skip(db))]
pub async fn give_up(db: &Db, file_id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(GIVE_UP_VARIANTS).bind(super::clip(reason)).bind(now).bind(file_id).execute(&mut *tx).await?;
        sqlx::query(GIVE_UP_FILE).bind(now).bind(file_id).execute(&mut *tx).await?;
        tx.commit().await
    })
}

/// Variants per status over every project (for `GET /metrics`).
#[tracing::instrument(skip(db))]
pub async fn variants_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, (String, i64)>("SELECT status, COUNT(*) FROM variants GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await
    })
}

/// Whether any file, variant or plugin row names `key`.
#[tracing::instrument(skip(db))]
pub async fn key_named(db: &Db, key: &str) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT COUNT(*) FROM files WHERE storage_key = $1) + (SELECT COUNT(*) FROM variants WHERE storage_key = $1)
                  + (SELECT COUNT(*) FROM plugins WHERE storage_key = $1)",
        )
        .bind(key)
        .fetch_one(pool)
        .await
        .map(|n| n > 0)
    })
}

/// Ids of a project's images, oldest first.
#[tracing::instrument(skip(db))]
pub async fn image_ids(db: &Db, project_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM files WHERE project_id = $1 AND kind = 'image' ORDER BY id")
            .bind(project_id)
            .fetch_all(pool)
            .await
    })
}

/// Adds a pending variant row (a variant the settings gained after the upload).
#[tracing::instrument(skip(db, variant))]
pub async fn insert_variant(db: &Db, file_id: Uuid, variant: &NewVariant) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO variants (id, file_id, name, storage_key, status, format, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(file_id)
        .bind(&variant.name)
        .bind(&variant.storage_key)
        .bind(&variant.format)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

#[tracing::instrument(skip(db))]
pub async fn delete_variant(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| sqlx::query("DELETE FROM variants WHERE id = $1").bind(id).execute(pool).await.map(|_| ()))
}
