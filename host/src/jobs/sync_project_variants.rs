//! `sync_project_variants`: plan the sync of every image of the project (see
//! [`super::sync_file_variants::plan`]) and fan out one `sync_file_variants` job per image that
//! it changes, or that has no analysis yet; the summed plan is the job's report (re-rendered,
//! added, removed, unchanged).

use uuid::Uuid;

use super::sync_file_variants::{self, Report};
use crate::AppState;
use crate::db::status::FileStatus;
use crate::db::{files, jobs, projects};
use crate::projects::service::Project;

/// The ids of the `sync_file_variants` jobs made, and what they will change.
pub async fn run(state: &AppState, project_id: Uuid) -> Result<(Vec<Uuid>, Report), sqlx::Error> {
    let mut made = Vec::new();
    let mut report = Report::default();
    let Some(row) = projects::find(&state.db, project_id).await? else { return Ok((made, report)) };
    // Settings that no longer parse: every image's job fails its variants with the reason.
    let project = Project::from_row(row).ok();
    for file_id in files::image_ids(&state.db, project_id).await? {
        if let (Some(project), Some(file)) = (&project, files::find(&state.db, file_id).await?) {
            let plan = sync_file_variants::plan(state, &file, project).await?;
            report.add(plan.report);
            // An image from before analyses existed gets its analysis from its file's sync (one
            // that never decoded, `failed`, would only fail again).
            let unanalysed = file.analysis.is_none() && file.status == FileStatus::Ready;
            if !plan.report.changes_anything() && !unanalysed {
                continue;
            }
        }
        made.push(jobs::insert(&state.db, Some(project_id), Some(file_id), jobs::kinds::SYNC_FILE_VARIANTS).await?.id);
    }
    Ok((made, report))
}
