//! The `users` table.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Db;
use crate::dispatch;

/// A role of the contract. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Su,
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Su => "su",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "su" => Some(Role::Su),
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; an unknown value would be a corrupted database.
        Role::parse(&self.role).unwrap_or(Role::User)
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
}

#[tracing::instrument(skip(db, user), fields(username = user.username))]
pub async fn insert(db: &Db, user: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    let now = Utc::now();
    dispatch!(db, |pool| {
        sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING id, username, password_hash, role, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(user.username)
        .bind(user.password_hash)
        .bind(user.role.as_str())
        .bind(now)
        .fetch_one(pool)
        .await
    })
}

#[tracing::instrument(skip(db))]
pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, password_hash, role, created_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await
    })
}

#[tracing::instrument(skip(db))]
pub async fn find_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_as::<_, UserRow>("SELECT id, username, password_hash, role, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// One page of users, oldest first (ids are UUIDv7, so id order is creation order), and their
/// number.
#[tracing::instrument(skip(db))]
pub async fn page(db: &Db, limit: i64, offset: i64) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
    super::page(db, "id, username, password_hash, role, created_at", "users", "id", &[], limit, offset).await
}

/// Deletes a user; their refresh tokens go with them (ON DELETE CASCADE). False when absent.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let affected = dispatch!(db, |pool| {
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(affected == 1)
}

/// Projects (including soft-deleted ones) a user owns.
#[tracing::instrument(skip(db))]
pub async fn count_owned_projects(db: &Db, id: Uuid) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM projects WHERE owner_id = $1").bind(id).fetch_one(pool).await
    })
}

#[tracing::instrument(skip(db))]
pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users").fetch_one(pool).await)
}
