//! `sync_project_variants`: fan out one `sync_file_variants` job per image of the project.

use uuid::Uuid;

use crate::AppState;
use crate::db::{files, jobs};

/// The ids of the `sync_file_variants` jobs made, one per image.
pub async fn run(state: &AppState, project_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut made = Vec::new();
    for file_id in files::image_ids(&state.db, project_id).await? {
        made.push(jobs::insert(&state.db, Some(project_id), Some(file_id), jobs::kinds::SYNC_FILE_VARIANTS).await?.id);
    }
    Ok(made)
}
