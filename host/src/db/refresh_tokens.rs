//! The `refresh_tokens` table: SHA-256 hashes of refresh tokens, grouped in one family per login.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip(db, token_hash))]
pub async fn insert(
    db: &Db,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(user_id)
        .bind(family_id)
        .bind(token_hash)
        .bind(Utc::now())
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(id)
}

#[tracing::instrument(skip_all)]
pub async fn find_by_hash(db: &Db, token_hash: &str) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, RefreshTokenRow>(
            "SELECT id, user_id, family_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await
    })
}

/// Revokes one token if it is still active; false when someone else revoked it first (two
/// concurrent refreshes with one token: only one may win, the other is reuse).
#[tracing::instrument(skip(db))]
pub async fn revoke_if_active(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = dispatch!(db, |pool| {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Revokes `old` if it is still active and inserts its successor in the same family, in one
/// transaction; false (and nothing written) when `old` was revoked first.
#[tracing::instrument(skip_all, fields(id = %old.id))]
pub async fn exchange(
    db: &Db,
    old: &RefreshTokenRow,
    successor_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        let mut tx = pool.begin().await?;
        let revoked = sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(old.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if revoked != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(old.user_id)
        .bind(old.family_id)
        .bind(successor_hash)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    })
}

/// Revokes every active token of a login (reuse detection). Returns how many.
#[tracing::instrument(skip(db))]
pub async fn revoke_family(db: &Db, family_id: Uuid) -> Result<u64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(Utc::now())
            .bind(family_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Deletes tokens past their expiry (revoked or not): they can never be used again, and a
/// revoked one no longer needs to be kept for reuse detection once it could not be valid anyway.
#[tracing::instrument(skip(db))]
pub async fn purge_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
}

#[tracing::instrument(skip(db))]
pub async fn count_active_for_user(db: &Db, user_id: Uuid) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(user_id)
        .bind(Utc::now())
        .fetch_one(pool)
        .await
    })
}
