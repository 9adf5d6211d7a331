//! The `upload_tokens` table: one-time tokens for direct uploads (migration 0010). Only the
//! SHA-256 of a token is kept; redeeming is one conditional update, so of two uploads racing
//! with the same token exactly one gets it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadTokenRow {
    pub id: Uuid,
    pub project_id: Uuid,
    /// `file`, `image` or `any`.
    pub kind: String,
    pub max_bytes: i64,
    /// JSON list of the accepted types; NULL: any the kind takes.
    pub content_types: Option<String>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, project_id, kind, max_bytes, content_types, expires_at";

pub struct NewUploadToken<'a> {
    pub project_id: Uuid,
    /// The key that asked for it: disabling or deleting the key ends its tokens too.
    pub api_key_id: Uuid,
    pub token_hash: &'a str,
    pub kind: &'a str,
    pub max_bytes: i64,
    pub content_types: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

#[tracing::instrument(skip(db, token))]
pub async fn insert(db: &Db, token: &NewUploadToken<'_>) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO upload_tokens (id, project_id, api_key_id, token_hash, kind, max_bytes, content_types, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(token.project_id)
        .bind(token.api_key_id)
        .bind(token.token_hash)
        .bind(token.kind)
        .bind(token.max_bytes)
        .bind(token.content_types)
        .bind(token.expires_at)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Marks the unused, unexpired token with this hash used, and answers it, when the key that
/// issued it is still enabled and its project live (one statement: the race guarantee holds);
/// `None` for any other token (the caller cannot tell which, and should not).
#[tracing::instrument(skip(db, token_hash))]
pub async fn redeem(db: &Db, token_hash: &str) -> Result<Option<UploadTokenRow>, sqlx::Error> {
    let now = Utc::now();
    let sql = format!(
        "UPDATE upload_tokens SET used_at = $1
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
           AND EXISTS (SELECT 1 FROM api_keys k WHERE k.id = upload_tokens.api_key_id AND k.enabled)
           AND EXISTS (SELECT 1 FROM projects p WHERE p.id = upload_tokens.project_id AND p.deleted_at IS NULL)
         RETURNING {COLUMNS}"
    );
    dispatch!(db, |pool| sqlx::query_as::<_, UploadTokenRow>(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(token_hash)
        .fetch_optional(pool)
        .await)
}

/// The project of the token with this hash, used or expired too (for CORS: a page holding a
/// used token must be able to read its 401, and the token is a secret all the same), until the
/// cleanup deletes it.
#[tracing::instrument(skip(db, token_hash))]
pub async fn project_of(db: &Db, token_hash: &str) -> Result<Option<Uuid>, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query_scalar::<_, Uuid>("SELECT project_id FROM upload_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await)
}

/// Deletes the tokens that expired before `before` (used or not); how many went.
#[tracing::instrument(skip(db))]
pub async fn purge_expired(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query("DELETE FROM upload_tokens WHERE expires_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}
