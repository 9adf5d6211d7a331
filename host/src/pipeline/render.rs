//! The render entry point: from a file's pending variants to settled ones ([`render_pending`]).
//!
//! Group the variants by plugin and render each group in one call (decode once), resolving each
//! plugin (the standard one as its component or natively, a registered one from the registry, in
//! the sandbox with no fallback), off the async runtime; verify what came back
//! ([`super::verify`]); store each result, then mark its row `ready` (format, size, dimensions,
//! the digest of what rendered it) or `failed` (the reason). The file becomes `ready` when every
//! variant has settled (`failed` when all failed). Variants already `ready` are left alone, so a
//! re-run only does what is missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use super::metering::{self, Meter};
use super::stored::{self, Planned};
use super::{Renderer, alpha, analysed, provenance};
use crate::AppState;
use crate::db::files::{self, FileRow, Provenance, VariantRow};
use crate::db::plugin_runs::{self, NewPluginRun};
use crate::db::plugins::PluginRow;
use crate::db::status::{FileStatus, VariantStatus};
use crate::files::service::StoredFile;
use crate::files::view::announce;
use crate::plugins::registry::{self, Unavailable};
use crate::plugins::{Limits, Output, PluginFailure, RenderError, RenderOutput, Rendered, Spec};
use crate::projects::VariantSpec;
use crate::projects::service::Project;
use crate::projects::variant_gravity::FocalPoint;
use crate::storage::{self, BlobKey};
use crate::webhooks::{self, Event};

/// What a render did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file or its project is gone (deleted while rendering included): nothing to do.
    Gone,
    /// Every variant settled; the counts of this run, and the first failure's reason.
    Settled { rendered: usize, failed: usize, reason: Option<String> },
}

/// Why a render stopped before every variant settled: the store or the database did not answer,
/// or every plugin sandbox of this process was in use. Not the input's fault nor the plugin's:
/// running it again later finishes it (what was rendered stays ready and is not rendered again).
#[derive(Debug, thiserror::Error)]
pub enum Retry {
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Busy(String),
}

/// The counts of one run; the first failure's reason is the one the job reports.
#[derive(Default)]
struct Tally {
    rendered: usize,
    failed: usize,
    reason: Option<String>,
}

impl Tally {
    fn failed(&mut self, count: usize, why: String) {
        self.failed += count;
        self.reason.get_or_insert(why);
    }
}

/// Renders, stores and records every variant of `file` that is not `ready`, against the
/// settings of `project` (the file's).
pub async fn render_pending(
    state: &AppState,
    renderer: &Arc<Renderer>,
    file: &FileRow,
    project: &Project,
) -> Result<Outcome, Retry> {
    render_with_outdated(state, renderer, file, project, &[]).await
}

/// [`render_pending`], and also the `outdated` ready variants (a sync found their plugin or spec
/// changed). An outdated variant stays `ready` and served while it renders again; a new render
/// that fails leaves it as it was (counted as failed in the outcome), never takes it offline.
pub async fn render_with_outdated(
    state: &AppState,
    renderer: &Arc<Renderer>,
    file: &FileRow,
    project: &Project,
    outdated: &[Uuid],
) -> Result<Outcome, Retry> {
    let pending: Vec<VariantRow> = files::variants_of(&state.db, file.id)
        .await?
        .into_iter()
        .filter(|v| v.status != VariantStatus::Ready || outdated.contains(&v.id))
        .collect();
    let mut tally = Tally::default();
    // Variants grouped by plugin (one call per plugin: decode once); variants whose settings
    // vanished fail alone.
    let mut groups: BTreeMap<String, Vec<(VariantRow, &VariantSpec)>> = BTreeMap::new();
    for variant in pending {
        match project.settings.variants.iter().find(|s| s.name.as_str() == variant.name) {
            Some(s) => groups.entry(s.plugin.clone()).or_default().push((variant, s)),
            None => {
                let why = format!("{}: the project's settings no longer name this variant", variant.name);
                fail_unless_ready(state, project, &variant, &why).await?;
                tally.failed(1, why);
            }
        }
    }

    // An image rendered before analyses existed gets one from its next job, whatever it renders.
    let unanalysed = file.kind == "image" && file.analysis.is_none();
    if !groups.is_empty() || unanalysed {
        match state.store.get_bytes(&BlobKey::parse(&file.storage_key)?).await {
            Ok(original) => {
                let has_alpha = alpha::may_have_alpha(&original);
                let focal = crate::files::analysis::focal_point(file);
                let mut analysed = false;
                for (plugin, variants) in groups {
                    let work: Vec<Planned> =
                        variants.into_iter().map(|(variant, s)| stored::plan(variant, s, has_alpha, focal)).collect();
                    let group = Group { project, plugin: &plugin, work: &work };
                    let rendered = render_group(state, renderer, group, &original, &mut tally).await?;
                    match rendered {
                        GroupOutcome::Gone => return Ok(Outcome::Gone),
                        GroupOutcome::Done { analysed: by_this } => analysed |= by_this,
                    }
                }
                // Not when every variant failed (the original does not decode) or the budget is spent.
                let all_failed = tally.failed > 0 && tally.rendered == 0;
                if unanalysed && !analysed && !all_failed {
                    analysed::analyse_only(state, renderer, project, file, original).await?;
                }
            }
            // Gone from the store (not unreachable): no retry brings it back.
            Err(storage::StorageError::NotFound(_)) => {
                let why = "the original is missing from the store".to_owned();
                let work: Vec<&VariantRow> = groups.values().flatten().map(|(v, _)| v).collect();
                for variant in &work {
                    fail_unless_ready(state, project, variant, &why).await?;
                }
                tally.failed(work.len(), why);
            }
            Err(e) => return Err(e.into()),
        }
    }

    let all = files::variants_of(&state.db, file.id).await?;
    let all_failed = !all.is_empty() && all.iter().all(|v| v.status == VariantStatus::Failed);
    let status = if all_failed { FileStatus::Failed } else { FileStatus::Ready };
    files::set_status(&state.db, file.id, status).await?;
    if file.status == FileStatus::Processing {
        let event = if all_failed { Event::FileFailed } else { Event::FileReady };
        // Read again: the render has just kept the file's analysis.
        let settled = files::find(&state.db, file.id).await?.unwrap_or_else(|| FileRow { status, ..file.clone() });
        announce(state, project, &StoredFile { file: settled, variants: all, job_id: None }, event).await;
    }
    let Tally { rendered, failed, reason } = tally;
    Ok(Outcome::Settled { rendered, failed, reason })
}

/// Fails every variant of the file that is not `ready` with `why` (its project's settings cannot
/// be read, so nothing can be rendered).
pub async fn fail_pending(state: &AppState, file_id: Uuid, why: &str) -> Result<Outcome, Retry> {
    let pending =
        files::variants_of(&state.db, file_id).await?.into_iter().filter(|v| v.status != VariantStatus::Ready).count();
    if pending > 0 {
        files::give_up(&state.db, file_id, why).await?;
    }
    Ok(Outcome::Settled { rendered: 0, failed: pending, reason: Some(why.into()) })
}

/// The variants of a file of `project` that one plugin reference renders.
struct Group<'a> {
    project: &'a Project,
    plugin: &'a str,
    work: &'a [Planned],
}

/// How one plugin's group went.
enum GroupOutcome {
    /// The file was deleted while rendering.
    Gone,
    /// Every variant of the group settled; `analysed`: the file's analysis was kept too.
    Done { analysed: bool },
}

/// Renders one plugin's group and records each variant, and the file's analysis when the plugin
/// made one (the standard plugin is asked for it: see [`run_plugin`]).
async fn render_group(
    state: &AppState,
    renderer: &Arc<Renderer>,
    group: Group<'_>,
    original: &Bytes,
    tally: &mut Tally,
) -> Result<GroupOutcome, Retry> {
    let Group { project, plugin, work } = group;
    let nothing = GroupOutcome::Done { analysed: false };
    let budget = project.settings.quotas.max_render_seconds_per_day;
    let results = match metering::over_budget(&state.db, project.row.id, budget).await? {
        Some(why) => Err(PluginFailure::Invalid(why)),
        None => Ok(()),
    };
    let (results, made_by) = match results {
        Ok(()) => {
            let specs: Vec<Spec> = work.iter().flat_map(|w| w.specs.iter().cloned()).collect();
            run_plugin(state, renderer, (project, plugin), original.clone(), specs).await?
        }
        Err(over) => (Err(over), None),
    };
    let Output { variants: results, analysis } = match results {
        Ok(output) => output,
        // No sandbox free: the job runs again later.
        Err(busy) if busy.is_transient() => return Err(Retry::Busy(busy.to_string())),
        Err(whole) => {
            for planned in work {
                fail_unless_ready(state, project, &planned.variant, &whole.to_string()).await?;
            }
            let names: Vec<&str> = work.iter().map(|w| w.variant.name.as_str()).collect();
            tally.failed(work.len(), format!("{}: {whole}", names.join(", ")));
            return Ok(nothing);
        }
    };
    // Results come only from a plugin that ran, so `made_by` is known here.
    let Some((plugin_row, digest)) = made_by else { return Ok(nothing) };
    // Only the builtin's word on what the image is counts. Analysed (even when what it said was
    // refused): asking again in this job would be refused the same way.
    let analysed = plugin_row.builtin && analysis.is_some();
    if let (true, Some(analysis), Some(planned)) = (plugin_row.builtin, analysis, work.first()) {
        analysed::keep(state, project, planned.variant.file_id, analysis).await?;
    }
    let mut results = results.into_iter();
    for planned in work {
        // One result per spec, in order: an `auto` variant is ready only when every sibling is.
        let mine: Result<Vec<Rendered>, RenderError> = results.by_ref().take(planned.specs.len()).collect();
        let variant = &planned.variant;
        match mine {
            Ok(rendered) => {
                let provenance = Provenance {
                    plugin_id: plugin_row.id,
                    plugin_name: plugin_row.name.clone(),
                    plugin_version: plugin_row.version.clone(),
                    sha256: digest.clone(),
                    spec_hash: planned.spec_hash.clone(),
                };
                if !stored::store(state, planned, rendered, &provenance).await? {
                    // Deleted while rendering.
                    return Ok(GroupOutcome::Gone);
                }
                tally.rendered += 1;
                let (project, file) = (project.row.id, variant.file_id);
                webhooks::variant_event(state, project, file, &variant.name, Event::VariantReady).await;
            }
            Err(e) => {
                fail_unless_ready(state, project, variant, &e.to_string()).await?;
                tally.failed(1, format!("{}: {e}", variant.name));
            }
        }
    }
    Ok(GroupOutcome::Done { analysed })
}

/// A variant's render failed: `failed` with the reason, unless it was rendered before (an
/// outdated one rendering again), which keeps serving what it had.
async fn fail_unless_ready(
    state: &AppState,
    project: &Project,
    variant: &VariantRow,
    why: &str,
) -> Result<(), sqlx::Error> {
    if variant.status == VariantStatus::Ready {
        tracing::warn!(variant = %variant.id, reason = why, "rendering an outdated variant again failed; it keeps its render");
        return Ok(());
    }
    files::mark_variant_failed(&state.db, variant.id, why).await?;
    webhooks::variant_event(state, project.row.id, variant.file_id, &variant.name, Event::VariantFailed).await;
    Ok(())
}

/// Resolves `plugin` for `project`'s owner (see [`registry::resolve`]: their own versions of
/// the name, else the global ones, as the pin says) and runs it over `specs`: the results, and
/// the plugin that ran with the digest of what ran ("native" for the standard plugin rendered
/// natively). A plugin that cannot be had fails its variants; one that is not reachable now
/// (store, database, sandboxes) is a retry.
pub(super) async fn run_plugin(
    state: &AppState,
    renderer: &Arc<Renderer>,
    (project, plugin): (&Project, &str),
    original: Bytes,
    specs: Vec<Spec>,
) -> Result<(RenderOutput, Option<(PluginRow, String)>), Retry> {
    let limits = Limits { max_pixels: state.config.max_image_pixels, max_frames: state.config.max_animation_frames };
    let engine = Arc::clone(renderer);
    let variants = specs.len() as i32;
    let row = match registry::resolve(&state.db, project.row.owner_id, plugin).await? {
        Ok(row) => row,
        Err(why) => return Ok((Err(PluginFailure::Invalid(format!("plugin {plugin:?}: {why}"))), None)),
    };
    if row.builtin {
        let digest =
            renderer.standard_component().map(|c| c.sha256.clone()).unwrap_or_else(|| provenance::NATIVE.into());
        // The standard plugin says what the image is in the same call (one decode).
        let (results, meter) =
            off_runtime(move || engine.render_standard_metered(&original, limits, &specs, true)).await;
        record_run(state, project, (&row, &digest), variants, meter).await?;
        return Ok((results, Some((row, digest))));
    }
    match registry::load(state, renderer.plugins(), row.clone()).await {
        Ok(compiled) => {
            let digest = compiled.sha256.clone();
            let (results, meter) =
                off_runtime(move || engine.render_with_metered(&compiled, &original, limits, &specs)).await;
            record_run(state, project, (&row, &digest), variants, meter).await?;
            Ok((results, Some((row, digest))))
        }
        Err(Unavailable::Permanent(why)) => {
            Ok((Err(PluginFailure::Invalid(format!("plugin {plugin:?}: {why}"))), None))
        }
        Err(Unavailable::Storage(e)) => Err(e.into()),
        Err(Unavailable::Database(e)) => Err(e.into()),
        Err(Unavailable::Busy(why)) => Err(Retry::Busy(why)),
    }
}

/// One plugin call, counted: a `plugin_runs` row (for its job's `plugin_runs` and the project's
/// budget) and the per-plugin histogram of `/metrics`.
async fn record_run(
    state: &AppState,
    project: &Project,
    (plugin, sha256): (&PluginRow, &str),
    variants: i32,
    meter: Meter,
) -> Result<(), sqlx::Error> {
    crate::metrics::plugin_seconds(&plugin.name, meter.ms as f64 / 1000.0);
    let run = NewPluginRun {
        job_id: metering::current_job(),
        project_id: project.row.id,
        plugin_id: plugin.id,
        plugin_name: &plugin.name,
        plugin_version: &plugin.version,
        sha256,
        variants,
        ms: meter.ms,
        cpu_ms: meter.cpu_ms,
        peak_memory_bytes: meter.peak_memory_bytes.map(|b| b as i64),
    };
    plugin_runs::insert(&state.db, &run).await
}

/// Rendering is CPU-bound: never on the async runtime's threads. A panic of the host's own
/// code is logged; tenants read a stable reason, not the panic's text. Measured where it runs.
async fn off_runtime(render: impl FnOnce() -> (RenderOutput, Option<u64>) + Send + 'static) -> (RenderOutput, Meter) {
    tokio::task::spawn_blocking(move || metering::measured(render)).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the render task panicked");
        (Err(PluginFailure::Trap("the renderer crashed".into())), Meter::default())
    })
}

/// The plugin-facing spec of a variant's settings, for a file whose focal point is `focal` (for
/// `auto`, see [`stored::plan`]).
pub fn to_spec(v: &VariantSpec, focal: Option<FocalPoint>) -> Spec {
    Spec {
        gravity: v.gravity.for_file(focal),
        name: v.name.as_str().to_owned(),
        width: v.width,
        height: v.height,
        fit: v.fit,
        format: v.format.representative(),
        quality: v.quality,
        params: v.params.iter().map(|(k, val)| (k.clone(), val.clone())).collect(),
    }
}
