//! The two columns of `files` that say what an image is rather than what was uploaded
//! (migration 0014): the analysis its render made, and the focal point its owner set.

use chrono::Utc;
use uuid::Uuid;

use super::Db;
use crate::dispatch;

/// Keeps `analysis` (JSON) as what file `id` is. False when the file is gone.
#[tracing::instrument(skip(db, analysis))]
pub async fn set_analysis(db: &Db, id: Uuid, analysis: &str) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE files SET analysis = $1, updated_at = $2 WHERE id = $3")
            .bind(analysis)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
    })
}

/// Sets (or with `None` clears) file `id`'s focal point (JSON). False when the file is gone.
#[tracing::instrument(skip(db))]
pub async fn set_focal_point(db: &Db, id: Uuid, focal_point: Option<&str>) -> Result<bool, sqlx::Error> {
    dispatch!(db, |pool| {
        sqlx::query("UPDATE files SET focal_point = $1, updated_at = $2 WHERE id = $3")
            .bind(focal_point)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
    })
}
