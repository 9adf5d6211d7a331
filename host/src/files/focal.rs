//! `PATCH /files/{id}`: an image's focal point, around which its `gravity: focal` variants are
//! cropped. Setting it re-renders exactly those of its variants whose crop it moves (`cover`
//! with `focal` gravity), through the file's sync job: they stay ready, and served, until the
//! new crop replaces them.

use uuid::Uuid;

use super::service::StoredFile;
use crate::AppState;
use crate::auth::Caller;
use crate::db::{file_analysis, files, jobs};
use crate::error::{Error, Result};
use crate::projects::service::Project;
use crate::projects::variant_gravity::{FocalPoint, VariantGravity};
use crate::projects::{Fit, ProjectSettings};

/// Sets (or with `None` clears) the focal point of image `id`, if `caller` may see it (404
/// otherwise). The answer's `job_id` is the re-render's, when one was needed.
pub async fn set(state: &AppState, caller: Caller, id: Uuid, focal: Option<FocalPoint>) -> Result<StoredFile> {
    let file = super::access::visible(state, caller, id).await?;
    if file.kind != "image" {
        return Err(Error::validation("focal_point", "only images have a focal point"));
    }
    if let Some(point) = focal
        && !point.is_valid()
    {
        let field = if (0.0..=1.0).contains(&point.x) { "focal_point.y" } else { "focal_point.x" };
        return Err(Error::validation(field, "must be within 0..=1"));
    }
    let json = focal.map(|p| serde_json::json!({ "x": p.x, "y": p.y }).to_string());
    if !file_analysis::set_focal_point(&state.db, id, json.as_deref()).await? {
        return Err(Error::not_found("file", id));
    }
    let project = crate::projects::service::get_by_key(state, file.project_id).await?;
    let job_id = match moves_a_crop(&project) {
        true => {
            Some(jobs::insert(&state.db, Some(file.project_id), Some(id), jobs::kinds::SYNC_FILE_VARIANTS).await?.id)
        }
        false => None,
    };
    let file = files::find(&state.db, id).await?.ok_or_else(|| Error::not_found("file", id))?;
    let variants = files::variants_of(&state.db, id).await?;
    Ok(StoredFile { file, variants, job_id })
}

/// Whether some variant of the project is cropped around the focal point.
fn moves_a_crop(project: &Project) -> bool {
    let ProjectSettings { variants, .. } = &project.settings;
    variants.iter().any(|v| v.fit == Fit::Cover && v.gravity == VariantGravity::Focal)
}
