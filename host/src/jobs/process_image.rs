//! `process_image`: render the pending variants of one uploaded image. The job orchestrates: it
//! loads the file and its project, hands them to the pipeline ([`pipeline::render_pending`]:
//! group by plugin, render, verify, store, record) and maps what was settled to the job's result.
//! A re-run only does what is missing.

use std::sync::Arc;

use uuid::Uuid;

use super::Transient;
use crate::AppState;
use crate::db::files::{self, FileRow};
use crate::db::projects::{self, ProjectRow};
use crate::pipeline::{self, Renderer};
use crate::projects::service::Project;

pub use crate::pipeline::Outcome;

/// Why every variant of a file fails when its project's stored settings cannot be read.
pub const CORRUPT_SETTINGS: &str = "the project's stored settings are corrupt";

pub async fn run(state: &AppState, renderer: &Arc<Renderer>, file_id: Uuid) -> Result<Outcome, Transient> {
    let Some(file) = files::find(&state.db, file_id).await? else { return Ok(Outcome::Gone) };
    let Some(row) = projects::find(&state.db, file.project_id).await? else { return Ok(Outcome::Gone) };
    render(state, renderer, &file, row).await
}

/// Renders `file` against the settings of its project `row` (`sync_file_variants` renders so too).
pub(super) async fn render(
    state: &AppState,
    renderer: &Arc<Renderer>,
    file: &FileRow,
    row: ProjectRow,
) -> Result<Outcome, Transient> {
    match Project::from_row(row) {
        Ok(project) => Ok(pipeline::render_pending(state, renderer, file, &project).await?),
        // Settings that no longer parse are a fault to see, not a project that went away: the
        // pending variants fail (so the job fails) and the cause goes to the log.
        Err(e) => {
            tracing::error!(file = %file.id, error = %format_args!("{e:#}"), "{CORRUPT_SETTINGS}");
            Ok(pipeline::fail_pending(state, file.id, CORRUPT_SETTINGS).await?)
        }
    }
}

/// The job's result: failed for good (with the first reason) when a variant failed; otherwise
/// completed (a file gone is nothing left to do).
pub fn verdict(outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Settled { failed, reason, .. } if failed > 0 => {
            Err(format!("{failed} variant(s) failed: {}", reason.unwrap_or_default()))
        }
        _ => Ok(()),
    }
}
