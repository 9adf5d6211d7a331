//! `sync_file_variants`: make one image's variants match its project's settings now. Variants
//! the settings no longer name (or name with another format) lose their blob, then their row;
//! variants the settings gained get a pending row; then the pipeline renders what is not ready
//! (the same entry point as `process_image`). Idempotent like every job.

use std::sync::Arc;

use uuid::Uuid;

use super::Transient;
use super::process_image::{self, Outcome};
use crate::AppState;
use crate::db::files::{self, NewVariant};
use crate::db::projects;
use crate::pipeline::{self, Renderer};
use crate::projects::service::Project;
use crate::storage::BlobKey;
use crate::storage::keys::variant_key;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub removed: usize,
    pub added: usize,
    pub render: Outcome,
}

pub async fn run(state: &AppState, renderer: &Arc<Renderer>, file_id: Uuid) -> Result<Option<Synced>, Transient> {
    let Some(file) = files::find(&state.db, file_id).await? else { return Ok(None) };
    let Some(row) = projects::find(&state.db, file.project_id).await? else { return Ok(None) };
    let project = match Project::from_row(row.clone()) {
        Ok(project) => project,
        // Nothing to sync against: the render fails the pending variants with the reason.
        Err(_) => {
            let render = process_image::render(state, renderer, &file, row).await?;
            return Ok(Some(Synced { removed: 0, added: 0, render }));
        }
    };
    let wanted = &project.settings.variants;

    let mut removed = 0;
    let existing = files::variants_of(&state.db, file_id).await?;
    for v in &existing {
        let still = wanted.iter().any(|s| s.name.as_str() == v.name && s.format.as_str() == v.format);
        if !still {
            // Blob first: a row without a blob is retried, a blob without a row would be an orphan.
            state.store.delete(&BlobKey::parse(&v.storage_key)?).await?;
            files::delete_variant(&state.db, v.id).await?;
            removed += 1;
        }
    }
    let mut added = 0;
    for spec in wanted {
        let present = existing.iter().any(|v| v.name == spec.name.as_str() && v.format == spec.format.as_str());
        if !present {
            let key =
                variant_key(&project.row.slug, project.row.id, spec.name.as_str(), file_id, spec.format.extension());
            let variant = NewVariant {
                name: spec.name.as_str().to_owned(),
                storage_key: key.to_string(),
                format: spec.format.as_str().to_owned(),
            };
            files::insert_variant(&state.db, file_id, &variant).await?;
            added += 1;
        }
    }
    let render = pipeline::render_pending(state, renderer, &file, &project).await?;
    Ok(Some(Synced { removed, added, render }))
}
