//! The `files` and `variants` tables. An upload's rows are written by the files service in one
//! [`Tx`]: [`usage_for_update`], [`insert`], [`insert_pending_variant`], then the job.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use super::siblings::{Sibling, Siblings};
use super::status::{FileStatus, VariantStatus};
use super::{Arg, Db, Tx};
use crate::{dispatch, dispatch_tx};

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
    #[sqlx(try_from = "String")]
    pub status: FileStatus,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the standard plugin saw of an image (migration 0014), as JSON: see
    /// [`crate::files::analysis`] and [`super::file_analysis`].
    pub analysis: Option<String>,
    /// `{"x","y"}` as JSON, or NULL.
    pub focal_point: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VariantRow {
    pub id: Uuid,
    pub file_id: Uuid,
    pub name: String,
    pub storage_key: String,
    #[sqlx(try_from = "String")]
    pub status: VariantStatus,
    pub format: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub size: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What rendered it (migration 0007; NULL until rendered, and for variants rendered before).
    pub plugin_id: Option<Uuid>,
    pub plugin_name: Option<String>,
    pub plugin_version: Option<String>,
    /// The digest of what ran: the plugin's, or `native` for the builtin rendered natively.
    pub plugin_sha256: Option<String>,
    pub spec_hash: Option<String>,
    /// A `format: "auto"` variant's siblings (migration 0011), as JSON: see [`Siblings`].
    pub formats: Option<String>,
}

/// What a render stored for a variant: its own blob (for `auto`, the JPEG or PNG) and, for
/// `auto`, every sibling.
#[derive(Debug, Clone)]
pub struct Made<'a> {
    pub storage_key: &'a str,
    pub width: i32,
    pub height: i32,
    pub size: i64,
    pub siblings: Option<&'a Siblings>,
}

/// What made a rendered variant: the plugin and the hash of the spec it was rendered to.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub plugin_id: Uuid,
    pub plugin_name: String,
    pub plugin_version: String,
    pub sha256: String,
    pub spec_hash: String,
}

const FILE_COLUMNS: &str = "id, project_id, kind, filename, mime_type, size, sha256, storage_key, status, width, height, created_at, updated_at, \
     analysis, focal_point";
const VARIANT_COLUMNS: &str = "id, file_id, name, storage_key, status, format, width, height, size, error, created_at, \
     plugin_id, plugin_name, plugin_version, plugin_sha256, spec_hash, formats";

pub struct NewFile<'a> {
    pub id: Uuid,
    pub project_id: Uuid,
    pub kind: &'a str,
    pub filename: &'a str,
    pub mime_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub storage_key: &'a str,
    pub status: FileStatus,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

pub struct NewVariant {
    pub name: String,
    pub storage_key: String,
    pub format: String,
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

/// The bytes and files a live project holds, read under a lock on its row so that concurrent
/// uploads cannot together pass a quota that each alone respects (SQLite: the write lock that
/// [`Db::begin`] takes). `None` when the project is gone or deleted.
#[tracing::instrument(skip(tx))]
pub async fn usage_for_update(tx: &mut Tx<'_>, project_id: Uuid) -> Result<Option<(i64, i64)>, sqlx::Error> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE").bind(project_id).execute(&mut **tx).await?;
    }
    dispatch_tx!(tx, |conn| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT CAST(COALESCE((SELECT SUM(size) FROM files WHERE project_id = $1), 0) AS BIGINT),
                    (SELECT COUNT(*) FROM files WHERE project_id = $1)
             FROM projects WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(project_id)
        .fetch_optional(&mut *conn)
        .await
    })
}

/// Writes a file row, made at `now`.
#[tracing::instrument(skip_all, fields(project = %file.project_id, file = %file.id))]
pub async fn insert(tx: &mut Tx<'_>, file: &NewFile<'_>, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    dispatch_tx!(tx, |conn| {
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
        .bind(file.status.as_str())
        .bind(file.width)
        .bind(file.height)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })
}

/// Adds a pending variant row of `file_id`, made at `now`: the one INSERT of a variant.
#[tracing::instrument(skip(tx, variant))]
pub async fn insert_pending_variant(
    tx: &mut Tx<'_>,
    file_id: Uuid,
    variant: &NewVariant,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    dispatch_tx!(tx, |conn| {
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
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<FileRow>, sqlx::Error> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// A project's files (optionally of one kind): binds project id, kind.
const FILES_OF: &str = "files WHERE project_id = $1 AND ($2 IS NULL OR kind = $2)";

/// One page of a project's files, newest first, optionally of one kind, and their number.
#[tracing::instrument(skip(db))]
pub async fn page(
    db: &Db,
    project_id: Uuid,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<FileRow>, i64), sqlx::Error> {
    let args = [Arg::Uuid(project_id), Arg::MaybeText(kind)];
    super::page(db, FILE_COLUMNS, FILES_OF, "id DESC", &args, limit, offset).await
}

/// The variants of the files of one [`page`] (same filters), in one query.
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
           (SELECT id FROM {FILES_OF} ORDER BY id DESC LIMIT $3 OFFSET $4)
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
pub async fn mark_variant_ready(db: &Db, id: Uuid, made: &Made<'_>, made_by: &Provenance) -> Result<bool, sqlx::Error> {
    let formats = made.siblings.map(|s| serde_json::to_string(s).unwrap_or_default());
    dispatch!(db, |pool| {
        sqlx::query(
            "UPDATE variants SET status = 'ready', width = $1, height = $2, size = $3, plugin_sha256 = $4, error = NULL, updated_at = $5,
                 plugin_id = $7, plugin_name = $8, plugin_version = $9, spec_hash = $10, storage_key = $11, formats = $12
             WHERE id = $6",
        )
        .bind(made.width)
        .bind(made.height)
        .bind(made.size)
        .bind(&made_by.sha256)
        .bind(Utc::now())
        .bind(id)
        .bind(made_by.plugin_id)
        .bind(&made_by.plugin_name)
        .bind(&made_by.plugin_version)
        .bind(&made_by.spec_hash)
        .bind(made.storage_key)
        .bind(&formats)
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
pub async fn set_status(db: &Db, id: Uuid, status: FileStatus) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE files SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Every storage key a project's rows name (originals, files, variants and their siblings):
/// what the cleanup keeps.
#[tracing::instrument(skip(db))]
pub async fn storage_keys(db: &Db, project_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let rows = dispatch!(db, |pool| {
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT storage_key, NULL FROM files WHERE project_id = $1
             UNION ALL
             SELECT v.storage_key, v.formats FROM variants v JOIN files f ON f.id = v.file_id WHERE f.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await
    })?;
    let mut keys = Vec::with_capacity(rows.len());
    for (key, formats) in rows {
        keys.extend(super::siblings::parse(formats.as_deref()).into_values().map(|s| s.key));
        keys.push(key);
    }
    Ok(keys)
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
    super::count_by_status(db, "variants").await
}

/// Whether any file, variant (or sibling of one) or plugin row names `key`. A sibling is found
/// by its key in the JSON (`_` in a pattern matches any character: at worst an orphan is kept).
#[tracing::instrument(skip(db))]
pub async fn key_named(db: &Db, key: &str) -> Result<bool, sqlx::Error> {
    let in_json = format!("%{}%", serde_json::to_string(key).unwrap_or_default().replace('%', "_"));
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT COUNT(*) FROM files WHERE storage_key = $1) + (SELECT COUNT(*) FROM variants WHERE storage_key = $1)
                  + (SELECT COUNT(*) FROM plugins WHERE storage_key = $1)
                  + (SELECT COUNT(*) FROM variants WHERE formats LIKE $2)",
        )
        .bind(key)
        .bind(in_json)
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

/// Adds a pending variant row (a variant the settings gained after the upload), committed.
#[tracing::instrument(skip(db, variant))]
pub async fn insert_variant(db: &Db, file_id: Uuid, variant: &NewVariant) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    insert_pending_variant(&mut tx, file_id, variant, Utc::now()).await?;
    tx.commit().await
}

#[tracing::instrument(skip(db))]
pub async fn delete_variant(db: &Db, id: Uuid) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| sqlx::query("DELETE FROM variants WHERE id = $1").bind(id).execute(pool).await.map(|_| ()))
}
