//! The `plugins` table (registry; the plugin issue fills it).

use super::Db;
use crate::dispatch;

/// Whether any version of a plugin with this name is registered.
#[tracing::instrument(skip(db))]
pub async fn name_exists(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    let n = dispatch!(db, |pool| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM plugins WHERE name = $1").bind(name).fetch_one(pool).await
    })?;
    Ok(n > 0)
}
