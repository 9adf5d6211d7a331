//! The `tus_uploads` and `tus_parts` tables: resumable uploads (migration 0013). An upload's
//! offset only moves in [`record_part`], one transaction that is fenced by the offset the PATCH
//! started from, so of two PATCHes racing from one offset exactly one lands; the part it stored
//! is recorded in the same transaction, and only recorded parts are ever read back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::{dispatch, dispatch_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TusUploadRow {
    pub id: Uuid,
    pub project_id: Uuid,
    /// The key that created it; `None` when an upload token did.
    pub api_key_id: Option<Uuid>,
    /// The SHA-256 of the upload token that created it (that token keeps authorising it).
    pub upload_token_hash: Option<String>,
    pub length: i64,
    pub upload_offset: i64,
    /// The `Upload-Metadata` header as the client sent it (HEAD echoes it).
    pub metadata: Option<String>,
    pub filename: Option<String>,
    /// `file`, `image` or `any`.
    pub kind: String,
    /// An upload token's `max_bytes` and `content_types` (JSON list).
    pub max_bytes: Option<i64>,
    pub content_types: Option<String>,
    /// The File it became, once finished.
    pub file_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, api_key_id, upload_token_hash, length, upload_offset, metadata, filename, kind, \
     max_bytes, content_types, file_id, expires_at, created_at";

/// One stored PATCH body: bytes `start_offset..start_offset + size` of the upload.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PartRow {
    pub start_offset: i64,
    pub size: i64,
    pub storage_key: String,
}

#[tracing::instrument(skip(db, upload), fields(upload = %upload.id, project = %upload.project_id))]
pub async fn insert(db: &Db, upload: &TusUploadRow) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO tus_uploads (id, project_id, api_key_id, upload_token_hash, length, upload_offset, metadata,
                 filename, kind, max_bytes, content_types, file_id, expires_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
        )
        .bind(upload.id)
        .bind(upload.project_id)
        .bind(upload.api_key_id)
        .bind(upload.upload_token_hash.as_deref())
        .bind(upload.length)
        .bind(upload.upload_offset)
        .bind(upload.metadata.as_deref())
        .bind(upload.filename.as_deref())
        .bind(upload.kind.as_str())
        .bind(upload.max_bytes)
        .bind(upload.content_types.as_deref())
        .bind(upload.file_id)
        .bind(upload.expires_at)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<TusUploadRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tus_uploads WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, TusUploadRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// The upload's parts in byte order.
#[tracing::instrument(skip(db))]
pub async fn parts(db: &Db, upload_id: Uuid) -> Result<Vec<PartRow>, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query_as::<_, PartRow>(
        "SELECT start_offset, size, storage_key FROM tus_parts WHERE upload_id = $1 ORDER BY start_offset"
    )
    .bind(upload_id)
    .fetch_all(pool)
    .await)
}

/// Records `part` (stored from `expected` on) and moves the offset to its end, when the upload
/// is still unfinished at `expected`; whether it did (`false`: another PATCH got there first, the
/// upload finished or is gone, and nothing was written).
/// The bytes and the number of a project's uploads that are unfinished and unexpired: what they
/// will add when they finish, counted against the quotas before one more is begun.
#[tracing::instrument(skip(db))]
pub async fn unfinished(db: &Db, project_id: Uuid) -> Result<(i64, i64), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT CAST(COALESCE(SUM(length), 0) AS BIGINT), COUNT(*) FROM tus_uploads
             WHERE project_id = $1 AND file_id IS NULL AND expires_at > $2",
        )
        .bind(project_id)
        .bind(Utc::now())
        .fetch_one(pool)
        .await
    })
}

#[tracing::instrument(skip(db, part))]
pub async fn record_part(db: &Db, upload_id: Uuid, expected: i64, part: &PartRow) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let moved = dispatch_tx!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE tus_uploads SET upload_offset = $1, updated_at = $2
             WHERE id = $3 AND upload_offset = $4 AND file_id IS NULL AND upload_offset + $5 <= length",
        )
        .bind(expected + part.size)
        .bind(now)
        .bind(upload_id)
        .bind(expected)
        .bind(part.size)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if moved != 1 {
        return Ok(false); // the dropped transaction rolls back
    }
    dispatch_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO tus_parts (upload_id, start_offset, size, storage_key, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(upload_id)
        .bind(part.start_offset)
        .bind(part.size)
        .bind(part.storage_key.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok(true)
}

/// Takes the lease of turning the finished, not yet converted upload into a File until `until`;
/// `false` when it is not finished, converted already, or another request holds the lease.
#[tracing::instrument(skip(db))]
pub async fn claim_completion(db: &Db, upload_id: Uuid, until: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| sqlx::query(
        "UPDATE tus_uploads SET completing_until = $1, updated_at = $2
         WHERE id = $3 AND file_id IS NULL AND upload_offset = length
           AND (completing_until IS NULL OR completing_until < $2)"
    )
    .bind(until)
    .bind(now)
    .bind(upload_id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1))
}

/// Gives the lease of [`claim_completion`] back (the conversion failed and may be retried).
#[tracing::instrument(skip(db))]
pub async fn release_completion(db: &Db, upload_id: Uuid) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| sqlx::query("UPDATE tus_uploads SET completing_until = NULL WHERE id = $1")
        .bind(upload_id)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Notes the File a finished upload became; `false` when one was noted already.
#[tracing::instrument(skip(db))]
pub async fn set_file(db: &Db, upload_id: Uuid, file_id: Uuid) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
        "UPDATE tus_uploads SET file_id = $1, updated_at = $2 WHERE id = $3 AND file_id IS NULL AND upload_offset = length"
    )
    .bind(file_id)
    .bind(Utc::now())
    .bind(upload_id)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
    })
}

/// Forgets the upload's parts (after their objects were deleted).
#[tracing::instrument(skip(db))]
pub async fn delete_parts(db: &Db, upload_id: Uuid) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| sqlx::query("DELETE FROM tus_parts WHERE upload_id = $1")
        .bind(upload_id)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Deletes the upload and its part rows (after the parts' objects were deleted).
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, upload_id: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    dispatch_tx!(&mut tx, |conn| {
        sqlx::query("DELETE FROM tus_parts WHERE upload_id = $1").bind(upload_id).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM tus_uploads WHERE id = $1").bind(upload_id).execute(&mut *conn).await?;
    });
    tx.commit().await
}

/// Uploads that expired before `before`, finished or not, at most `limit` of them, oldest first.
#[tracing::instrument(skip(db))]
pub async fn expired(db: &Db, before: DateTime<Utc>, limit: i64) -> Result<Vec<TusUploadRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tus_uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2");
    dispatch!(db, |pool| sqlx::query_as::<_, TusUploadRow>(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// The storage keys of a project's recorded parts (the orphan scan must leave them alone).
#[tracing::instrument(skip(db))]
pub async fn part_keys_of_project(db: &Db, project_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query_scalar::<_, String>(
        "SELECT p.storage_key FROM tus_parts p JOIN tus_uploads u ON u.id = p.upload_id WHERE u.project_id = $1"
    )
    .bind(project_id)
    .fetch_all(pool)
    .await)
}

/// Whether a recorded part has this storage key.
#[tracing::instrument(skip(db))]
pub async fn part_named(db: &Db, key: &str) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tus_parts WHERE storage_key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .map(|n| n > 0))
}
