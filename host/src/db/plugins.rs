//! The `plugins` table: the registry. The builtin `mbk-standard` has a row of its own (fixed id,
//! refreshed at start-up) so that it lists, and is refused deletion, like any other. A row's
//! `owner_id` is the admin who registered it; NULL is global (the builtin, what a su registered).
//! Names and versions are unique per owner (migration 0006).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Db;
use crate::dispatch;
use crate::plugins::Param;

/// The builtin plugin's id, the same in every deployment.
pub const BUILTIN_ID: Uuid = Uuid::from_u128(0x6d626b2d_7374_4000_8000_000000000001);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PluginRow {
    pub id: Uuid,
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub size: i64,
    pub world: String,
    pub builtin: bool,
    pub storage_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The admin it belongs to; `None`: global.
    pub owner_id: Option<Uuid>,
    /// The params it declares, JSON (see [`PluginRow::declared_params`]); NULL for a 0.1.0
    /// component, which declares none.
    pub params: Option<String>,
}

impl PluginRow {
    /// The params the plugin takes; `None`: undeclared (world 0.1.0), its params go unchecked.
    pub fn declared_params(&self) -> Option<Vec<Param>> {
        let json = self.params.as_deref()?;
        match serde_json::from_str(json) {
            Ok(params) => Some(params),
            Err(e) => {
                // Written by `params_json` only: unreadable means a bug, not a bad upload.
                tracing::error!(plugin = %self.id, error = %e, "a plugin's params declaration is unreadable");
                None
            }
        }
    }
}

/// A declaration as its column keeps it.
pub fn params_json(params: &[Param]) -> String {
    serde_json::to_string(params).unwrap_or_else(|e| panic!("params serialise: {e}"))
}

const COLUMNS: &str = "id, name, version, sha256, size, world, builtin, storage_key, created_at, owner_id, params";

pub struct NewPlugin<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
    pub size: i64,
    pub world: &'a str,
    /// JSON of the declared params (`params_json`); `None` for a 0.1.0 component.
    pub params: Option<&'a str>,
    pub storage_key: &'a str,
    /// `None`: global (a su registers).
    pub owner_id: Option<Uuid>,
}

/// Writes (or refreshes) the builtin's row: its version, digest, world and params (JSON, see
/// [`params_json`]) follow the running build.
#[tracing::instrument(skip(db))]
pub async fn ensure_builtin(
    db: &Db,
    version: &str,
    sha256: &str,
    size: i64,
    world: &str,
    params: &str,
) -> Result<(), sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query(
            "INSERT INTO plugins (id, name, version, sha256, size, world, builtin, storage_key, created_at, params)
             VALUES ($1, 'mbk-standard', $2, $3, $4, $5, TRUE, NULL, $6, $7)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, sha256 = excluded.sha256,
                 size = excluded.size, world = excluded.world, params = excluded.params",
        )
        .bind(BUILTIN_ID)
        .bind(version)
        .bind(sha256)
        .bind(size)
        .bind(world)
        .bind(Utc::now())
        .bind(params)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Inserts a registered plugin; `None` when its owner (or the global scope) has that name and
/// version already.
#[tracing::instrument(skip(db, plugin))]
pub async fn insert(db: &Db, plugin: &NewPlugin<'_>) -> Result<Option<PluginRow>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO plugins (id, name, version, sha256, size, world, builtin, storage_key, created_at, owner_id, params)
         VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
    );
    dispatch!(db, |pool| {
        sqlx::query_as::<_, PluginRow>(sqlx::AssertSqlSafe(sql))
            .bind(Uuid::now_v7())
            .bind(plugin.name)
            .bind(plugin.version)
            .bind(plugin.sha256)
            .bind(plugin.size)
            .bind(plugin.world)
            .bind(plugin.storage_key)
            .bind(Utc::now())
            .bind(plugin.owner_id)
            .bind(plugin.params)
            .fetch_optional(pool)
            .await
    })
}

/// The plugins `owner` sees: the global ones and, with `Some`, theirs; with `all`, every one.
/// The builtin first, then by name and newest version first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, owner: Option<Uuid>, all: bool) -> Result<Vec<PluginRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM plugins WHERE $1 OR owner_id IS NULL OR owner_id = $2
         ORDER BY builtin DESC, name, created_at DESC, id DESC"
    );
    dispatch!(db, |pool| sqlx::query_as::<_, PluginRow>(sqlx::AssertSqlSafe(sql))
        .bind(all)
        .bind(owner)
        .fetch_all(pool)
        .await)
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &Db, id: Uuid) -> Result<Option<PluginRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM plugins WHERE id = $1");
    dispatch!(db, |pool| sqlx::query_as::<_, PluginRow>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)
}

/// The versions of `name` that projects of `owner` may name, newest first: the owner's own, and
/// the global ones (a reference is looked for in the owner's first, so nobody else's newer
/// version can shadow them).
#[tracing::instrument(skip(db))]
pub async fn versions_for(db: &Db, owner: Uuid, name: &str) -> Result<(Vec<PluginRow>, Vec<PluginRow>), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM plugins WHERE name = $1 AND (owner_id = $2 OR owner_id IS NULL)
         ORDER BY owner_id IS NULL, created_at DESC, id DESC"
    );
    let rows: Vec<PluginRow> = dispatch!(db, |pool| sqlx::query_as::<_, PluginRow>(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .bind(owner)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().partition(|r| r.owner_id.is_some()))
}

/// The first key of the advisory locks taken per plugin name ("mbk\x01").
const PLUGIN_NAME_LOCKS: i32 = 0x6d62_6b01;

/// What [`delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Yes,
    /// No such registered (non-builtin) plugin.
    NotFound,
    /// Kept: it is the last version of its name and `keep_last` was asked.
    LastOfName,
}

/// Deletes registered plugin `id` (named `name`). With `keep_last`, only while another version
/// of the name stays registered in its scope (its owner's, or the global one): the check and the delete are one step per name (a per-name
/// advisory lock on PostgreSQL; SQLite runs one writer at a time), so two concurrent deletes of
/// the last two versions cannot both pass.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, id: Uuid, name: &str, keep_last: bool) -> Result<Deleted, sqlx::Error> {
    const DELETE: &str = "DELETE FROM plugins WHERE id = $1 AND builtin = FALSE
         AND (NOT $2 OR EXISTS (SELECT 1 FROM plugins o WHERE o.name = $3 AND o.id <> $1
             AND o.owner_id IS NOT DISTINCT FROM (SELECT owner_id FROM plugins WHERE id = $1)))";
    let deleted = match db {
        Db::Sqlite(pool) => {
            sqlx::query(DELETE).bind(id).bind(keep_last).bind(name).execute(pool).await?.rows_affected() == 1
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // Each statement must see what the previous holder of the lock committed, whatever
            // the server's default isolation.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").execute(&mut *tx).await?;
            // Two-key form: our class of locks, then the name.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(PLUGIN_NAME_LOCKS)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let done =
                sqlx::query(DELETE).bind(id).bind(keep_last).bind(name).execute(&mut *tx).await?.rows_affected() == 1;
            tx.commit().await?;
            done
        }
    };
    if deleted {
        return Ok(Deleted::Yes);
    }
    Ok(match find(db, id).await? {
        Some(row) if !row.builtin && row.name == name => Deleted::LastOfName,
        _ => Deleted::NotFound,
    })
}

/// How many rows name the object `key` (plugins sharing the same bytes share one object).
#[tracing::instrument(skip(db))]
pub async fn count_with_key(db: &Db, key: &str) -> Result<i64, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM plugins WHERE storage_key = $1")
            .bind(key)
            .fetch_one(pool)
            .await
    })
}
