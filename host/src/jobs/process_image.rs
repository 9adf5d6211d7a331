//! `process_image`: render the pending variants of one uploaded image.
//!
//! Load the original once, group the variants by plugin and render each group in one call
//! (decode once; custom plugins run in the sandbox with no fallback), store each result, then
//! mark its row `ready` (format, size, dimensions, the plugin's digest) or `failed` (the reason). The file becomes `ready` when every variant has settled
//! (`failed` when all failed). Variants already `ready` are left alone, so a re-run only does
//! what is missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::db::files::{self, VariantRow};
use crate::db::projects;
use crate::pipeline::Renderer;
use crate::plugins::registry::{self, Unavailable};
use crate::plugins::{PluginFailure, Spec};
use crate::projects::service::Project;
use crate::projects::settings::STANDARD_PLUGIN;
use crate::storage::BlobKey;
use crate::{AppState, storage};

/// Why every variant of a file fails when its project's stored settings cannot be read.
pub const CORRUPT_SETTINGS: &str = "the project's stored settings are corrupt";

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file or its project is gone: nothing to do.
    Gone,
    /// Every variant settled; the counts of this run, and the first failure's reason.
    Settled { rendered: usize, failed: usize, reason: Option<String> },
}

/// Failures worth a retry (the store or the database did not answer).
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the job ran past its limit of {0:?}")]
    TimedOut(std::time::Duration),
    /// Every plugin sandbox of this process was in use.
    #[error("{0}")]
    Busy(String),
}

impl Transient {
    /// What a tenant is shown (the job's and its variants' `error`): a stable reason. The
    /// detail (a store endpoint, a bucket, a path, the SQL a database refused) is for the log
    /// only, where the worker writes it.
    pub fn public_reason(&self) -> String {
        match self {
            Transient::Storage(_) => "storage unavailable".into(),
            Transient::Database(_) => "database unavailable".into(),
            Transient::TimedOut(_) => self.to_string(),
            Transient::Busy(_) => "every plugin sandbox was busy".into(),
        }
    }
}

fn to_spec(v: &crate::projects::VariantSpec) -> Spec {
    Spec {
        name: v.name.as_str().to_owned(),
        width: v.width,
        height: v.height,
        fit: v.fit,
        format: v.format,
        quality: v.quality,
        params: v.params.iter().map(|(k, val)| (k.clone(), val.clone())).collect(),
    }
}

pub async fn run(state: &AppState, renderer: &Arc<Renderer>, file_id: Uuid) -> Result<Outcome, Transient> {
    let Some(file) = files::find(&state.db, file_id).await? else { return Ok(Outcome::Gone) };
    let Some(row) = projects::find(&state.db, file.project_id).await? else { return Ok(Outcome::Gone) };
    let pending: Vec<VariantRow> =
        files::variants_of(&state.db, file_id).await?.into_iter().filter(|v| v.status != "ready").collect();
    let project = match Project::from_row(row) {
        Ok(project) => project,
        // Settings that no longer parse are a fault to see, not a project that went away: the
        // pending variants fail (so the job fails) and the cause goes to the log.
        Err(e) => {
            tracing::error!(file = %file_id, error = %format_args!("{e:#}"), "{CORRUPT_SETTINGS}");
            if !pending.is_empty() {
                files::give_up(&state.db, file_id, CORRUPT_SETTINGS).await?;
            }
            return Ok(Outcome::Settled { rendered: 0, failed: pending.len(), reason: Some(CORRUPT_SETTINGS.into()) });
        }
    };

    let (mut rendered, mut failed) = (0, 0);
    let mut reason: Option<String> = None;
    let mut fail = |why: String| {
        reason.get_or_insert(why);
    };
    // Variants grouped by plugin (one call per plugin: decode once); variants whose settings
    // vanished fail alone.
    let mut groups: BTreeMap<String, Vec<(VariantRow, Spec)>> = BTreeMap::new();
    for variant in pending {
        match project.settings.variants.iter().find(|s| s.name.as_str() == variant.name) {
            Some(s) => groups.entry(s.plugin.clone()).or_default().push((variant, to_spec(s))),
            None => {
                let why = format!("{}: the project's settings no longer name this variant", variant.name);
                files::mark_variant_failed(&state.db, variant.id, &why).await?;
                fail(why);
                failed += 1;
            }
        }
    }

    let original = if groups.is_empty() {
        None
    } else {
        match state.store.get_bytes(&BlobKey::parse(&file.storage_key)?).await {
            Ok(bytes) => Some(bytes),
            // Gone from the store (not unreachable): no retry brings it back.
            Err(storage::StorageError::NotFound(_)) => {
                let why = "the original is missing from the store".to_owned();
                for (variant, _) in groups.values().flatten() {
                    files::mark_variant_failed(&state.db, variant.id, &why).await?;
                    failed += 1;
                }
                fail(why);
                groups.clear();
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    for (plugin, work) in groups {
        let original = original.clone().unwrap_or_default();
        let specs: Vec<Spec> = work.iter().map(|(_, s)| s.clone()).collect();
        let max_pixels = state.config.max_image_pixels;
        let engine = Arc::clone(renderer);
        // CPU-bound: never on the async runtime's threads. Custom plugins never fall back.
        let (results, digest) = if plugin == STANDARD_PLUGIN {
            let digest = renderer.standard_component().map(|c| c.sha256.clone()).unwrap_or_else(|| "native".into());
            let call = tokio::task::spawn_blocking(move || engine.render_standard(&original, max_pixels, &specs));
            (call.await.unwrap_or_else(|e| Err(PluginFailure::Trap(format!("render task: {e}")))), digest)
        } else {
            match registry::load(state, renderer.plugins(), &plugin).await {
                Ok(compiled) => {
                    let digest = compiled.sha256.clone();
                    let call = tokio::task::spawn_blocking(move || {
                        engine.render_with(&compiled, &original, max_pixels, &specs)
                    });
                    (call.await.unwrap_or_else(|e| Err(PluginFailure::Trap(format!("render task: {e}")))), digest)
                }
                Err(Unavailable::Permanent(why)) => {
                    (Err(PluginFailure::Invalid(format!("plugin {plugin:?}: {why}"))), String::new())
                }
                Err(Unavailable::Storage(e)) => return Err(e.into()),
                Err(Unavailable::Database(e)) => return Err(e.into()),
                Err(Unavailable::Busy(why)) => return Err(Transient::Busy(why)),
            }
        };
        match results {
            // No sandbox free: not the input's fault nor the plugin's; the job runs again later
            // (variants rendered so far stay ready and are not rendered again).
            Err(busy) if busy.is_transient() => return Err(Transient::Busy(busy.to_string())),
            Err(whole) => {
                for (variant, _) in &work {
                    files::mark_variant_failed(&state.db, variant.id, &whole.to_string()).await?;
                    failed += 1;
                }
                let names: Vec<&str> = work.iter().map(|(v, _)| v.name.as_str()).collect();
                fail(format!("{}: {whole}", names.join(", ")));
            }
            Ok(results) => {
                for ((variant, _), result) in work.iter().zip(results) {
                    match result {
                        Ok(out) => {
                            let key = BlobKey::parse(&variant.storage_key)?;
                            let size = out.bytes.len() as i64;
                            state.store.put_bytes(&key, &out.mime, out.bytes.into()).await?;
                            let recorded = files::mark_variant_ready(
                                &state.db,
                                variant.id,
                                out.width as i32,
                                out.height as i32,
                                size,
                                &digest,
                            )
                            .await?;
                            if !recorded {
                                // Deleted while rendering: leave no object without a row.
                                state.store.delete(&key).await?;
                                return Ok(Outcome::Gone);
                            }
                            rendered += 1;
                        }
                        Err(e) => {
                            files::mark_variant_failed(&state.db, variant.id, &e.to_string()).await?;
                            fail(format!("{}: {e}", variant.name));
                            failed += 1;
                        }
                    }
                }
            }
        }
    }

    let all = files::variants_of(&state.db, file_id).await?;
    let status = if !all.is_empty() && all.iter().all(|v| v.status == "failed") { "failed" } else { "ready" };
    files::set_status(&state.db, file_id, status).await?;
    Ok(Outcome::Settled { rendered, failed, reason })
}
