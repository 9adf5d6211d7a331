//! `sync_file_variants`: make one image's variants match its project's settings now. Variants
//! the settings no longer name (or name with another format) lose their blob, then their row;
//! variants the settings gained get a pending row; ready variants whose plugin (by digest) or
//! spec (by hash) differs from what made them render again (staying `ready` and served until the
//! new render replaces them; a failed one keeps what it had); pending and failed ones are tried
//! again; the rest are left alone. Idempotent like every job.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::Transient;
use super::process_image::{self, Outcome};
use crate::AppState;
use crate::db::files::{self, FileRow, NewVariant, VariantRow};
use crate::db::projects;
use crate::db::status::VariantStatus;
use crate::pipeline::{self, Renderer, provenance};
use crate::plugins::registry;
use crate::projects::VariantSpec;
use crate::projects::service::Project;
use crate::storage::BlobKey;
use crate::storage::keys::variant_key;

/// What a sync changes (or changed) of one file, or of a project's files summed: the job's
/// `report`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub rerendered: usize,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl Report {
    pub fn changes_anything(&self) -> bool {
        self.rerendered + self.added + self.removed > 0
    }

    pub fn add(&mut self, other: Report) {
        self.rerendered += other.rerendered;
        self.added += other.added;
        self.removed += other.removed;
        self.unchanged += other.unchanged;
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub removed: usize,
    pub added: usize,
    pub render: Outcome,
    pub report: Report,
}

/// What a sync of `file` against `project` would do, found without changing anything.
pub struct Plan<'a> {
    remove: Vec<VariantRow>,
    add: Vec<&'a VariantSpec>,
    /// Ready but outdated.
    rerender: Vec<VariantRow>,
    /// Pending or failed, still named: rendered again, counted as re-rendered.
    retry: usize,
    pub report: Report,
}

pub async fn plan<'a>(state: &AppState, file: &FileRow, project: &'a Project) -> Result<Plan<'a>, sqlx::Error> {
    let wanted = &project.settings.variants;
    let existing = files::variants_of(&state.db, file.id).await?;
    let focal = crate::files::analysis::focal_point(file);
    let same = |v: &VariantRow, s: &VariantSpec| s.name.as_str() == v.name && s.format.as_str() == v.format;
    let mut plan =
        Plan { remove: Vec::new(), add: Vec::new(), rerender: Vec::new(), retry: 0, report: Report::default() };
    for v in existing.iter() {
        let Some(spec) = wanted.iter().find(|s| same(v, s)) else {
            plan.remove.push(v.clone());
            continue;
        };
        if v.status != VariantStatus::Ready {
            plan.retry += 1; // pending or failed: rendered (again) by this sync
            continue;
        }
        let current = match registry::resolve(&state.db, project.row.owner_id, &spec.plugin).await? {
            Ok(plugin) => provenance::is_current(v, &plugin, &pipeline::to_spec(spec, focal)),
            Err(_) => true, // nothing to render it with now: keep what is there
        };
        if current {
            plan.report.unchanged += 1;
        } else {
            plan.rerender.push(v.clone());
        }
    }
    plan.add = wanted.iter().filter(|s| !existing.iter().any(|v| same(v, s))).collect();
    plan.report.removed = plan.remove.len();
    plan.report.added = plan.add.len();
    plan.report.rerendered = plan.rerender.len() + plan.retry;
    Ok(plan)
}

pub async fn run(state: &AppState, renderer: &Arc<Renderer>, file_id: Uuid) -> Result<Option<Synced>, Transient> {
    let Some(file) = files::find(&state.db, file_id).await? else { return Ok(None) };
    let Some(row) = projects::find(&state.db, file.project_id).await? else { return Ok(None) };
    let project = match Project::from_row(row.clone()) {
        Ok(project) => project,
        // Nothing to sync against: the render fails the pending variants with the reason.
        Err(_) => {
            let render = process_image::render(state, renderer, &file, row).await?;
            return Ok(Some(Synced { removed: 0, added: 0, render, report: Report::default() }));
        }
    };
    let plan = plan(state, &file, &project).await?;
    for v in &plan.remove {
        // Blobs first: a row without a blob is retried, a blob without a row would be an orphan.
        for key in v.blob_keys() {
            state.store.delete(&BlobKey::parse(&key)?).await?;
        }
        files::delete_variant(&state.db, v.id).await?;
    }
    for spec in &plan.add {
        let key = variant_key(&project.row.slug, project.row.id, spec.name.as_str(), file_id, spec.format.extension());
        let variant = NewVariant {
            name: spec.name.as_str().to_owned(),
            storage_key: key.to_string(),
            format: spec.format.as_str().to_owned(),
        };
        files::insert_variant(&state.db, file_id, &variant).await?;
    }
    let outdated: Vec<Uuid> = plan.rerender.iter().map(|v| v.id).collect();
    let render = pipeline::render_with_outdated(state, renderer, &file, &project, &outdated).await?;
    let report = plan.report;
    Ok(Some(Synced { removed: report.removed, added: report.added, render, report }))
}
