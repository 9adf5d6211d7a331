//! What an image is, from the pipeline's side: keeping the analysis the builtin made in the
//! call that rendered the variants (checked, GPS only where the project keeps it; see
//! [`crate::files::analysis`]), and one call of the builtin with no variants for an image whose
//! job rendered nothing with it.

use std::sync::Arc;

use bytes::Bytes;

use super::{Renderer, Retry, metering};
use crate::AppState;
use crate::db::files::FileRow;
use crate::plugins::Output;
use crate::projects::service::Project;
use crate::projects::settings::STANDARD_PLUGIN;

/// The analysis of an image whose job renders nothing with the standard plugin: one call of it
/// with no variants (the decode at its smallest scale). Its failure costs the image only its
/// placeholders and metadata, never its variants: logged, not retried.
pub(super) async fn analyse_only(
    state: &AppState,
    renderer: &Arc<Renderer>,
    project: &Project,
    file: &FileRow,
    original: Bytes,
) -> Result<(), Retry> {
    let budget = project.settings.quotas.max_render_seconds_per_day;
    if metering::over_budget(&state.db, project.row.id, budget).await?.is_some() {
        return Ok(());
    }
    let (output, _) =
        super::render::run_plugin(state, renderer, (project, STANDARD_PLUGIN), original, Vec::new()).await?;
    match output {
        Ok(Output { analysis: Some(analysis), .. }) => {
            keep(state, project, file.id, analysis).await?;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(file = %file.id, error = %e, "the image could not be analysed"),
    }
    Ok(())
}

/// Keeps what the plugin saw of the file (checked; GPS only when the project keeps it). False
/// when the analysis was refused (it does not describe an image) or the file is gone.
pub(super) async fn keep(
    state: &AppState,
    project: &Project,
    file_id: uuid::Uuid,
    analysis: crate::plugins::Analysis,
) -> Result<bool, sqlx::Error> {
    let Some(stored) = crate::files::analysis::to_stored(analysis, project.settings.keep_gps) else {
        tracing::warn!(file = %file_id, "the plugin's analysis was refused");
        return Ok(false);
    };
    let json = serde_json::to_string(&stored).unwrap_or_default();
    crate::db::file_analysis::set_analysis(&state.db, file_id, &json).await
}
