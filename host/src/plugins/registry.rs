//! The plugin registry: admins and su upload components; projects name them for variants (see
//! [`super::pin`] for `name@^1` and the rest). A plugin an admin registers is theirs: only their
//! projects may name it, only they (or a su) may delete it, and another admin's plugin of the same
//! name and version is a different plugin. What a su registers is global. A project of an owner
//! who registered a name renders with the owner's versions of it, never with anyone else's. The
//! bytes live in the blob store under `plugins/{sha256}-{random}.wasm` (the bucket is the source
//! every node's compiled cache is rebuilt from); the row keeps name, version, digest, size, world,
//! owner and the params a 0.2.0 plugin declares (project settings are checked against them).

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::pin::PluginRef;
use super::{CompiledPlugin, PluginEngine, PluginFailure};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::Db;
use crate::db::plugins::{self, Deleted, NewPlugin, PluginRow};
use crate::db::projects;
use crate::error::{Error, Result};
use crate::projects::service::Project;
use crate::projects::settings::STANDARD_PLUGIN;
use crate::storage::{BlobKey, StorageError};

/// The largest component accepted.
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// Where registered components live in the blob store; never served by `GET /blobs`.
pub const PLUGIN_PREFIX: &str = "plugins/";

/// A new object for a plugin's bytes: its digest and a random part, so that knowing a plugin's
/// digest (listed by `GET /plugins`) is not knowing where its bytes are (a public bucket URL).
pub fn plugin_key(sha256: &str) -> BlobKey {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).unwrap_or_else(|e| panic!("the OS random source failed: {e}"));
    BlobKey::parse(&format!("{PLUGIN_PREFIX}{sha256}-{}.wasm", hex::encode(random)))
        .unwrap_or_else(|e| panic!("hex makes a valid key: {e}"))
}

/// Names as variants write them: 1 to 64 of `a-z 0-9 - _`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation("name", "must be 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit"))
    }
}

pub fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::validation("version", "must be 1 to 64 of letters, digits, '.', '-', '+' and '_'"))
    }
}

/// Whether `caller` may see (list, fetch, name in a project) `row`: su every plugin, an admin the
/// global ones and their own, a user the global ones (users register none).
pub fn visible_to(caller: &CurrentUser, row: &PluginRow) -> bool {
    caller.is_su() || row.owner_id.is_none_or(|owner| owner == caller.id)
}

/// The plugin `id` if `caller` may see it.
pub async fn find(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<PluginRow> {
    plugins::find(&state.db, id)
        .await?
        .filter(|row| visible_to(caller, row))
        .ok_or_else(|| Error::not_found("plugin", id))
}

/// Checks, compiles and stores a component registered by `caller` (an admin: theirs; a su:
/// global); its row.
pub async fn register(
    state: &AppState,
    caller: &CurrentUser,
    name: &str,
    version: &str,
    wasm: Bytes,
) -> Result<PluginRow> {
    check_name(name)?;
    check_version(version)?;
    if name == STANDARD_PLUGIN {
        return Err(Error::conflict(format!("{STANDARD_PLUGIN:?} is the builtin plugin's name")));
    }
    let engine = state.plugin_engine()?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    // Compiling takes up to seconds: not on the async runtime. `load` also calls `info()`.
    let checked = {
        let wasm = wasm.clone();
        let engine = Arc::clone(&engine);
        tokio::task::spawn_blocking(move || engine.load(&wasm))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("plugin check panicked: {e}")))?
    };
    let compiled = match checked {
        Ok(compiled) => compiled,
        Err(PluginFailure::Invalid(why)) => return Err(Error::InvalidPlugin(why)),
        Err(busy @ PluginFailure::Busy(_)) => {
            return Err(Error::Unavailable {
                message: "every plugin sandbox is busy; retry later".into(),
                cause: Some(busy.to_string()),
            });
        }
        Err(other) => return Err(Error::InvalidPlugin(format!("calling info() failed: {other}"))),
    };
    let key = plugin_key(&sha256);
    state.store.put_bytes(&key, "application/wasm", wasm.clone()).await?;
    let owner_id = if caller.is_su() { None } else { Some(caller.id) };
    let size = wasm.len() as i64;
    let params = compiled.info.params.as_deref().map(plugins::params_json);
    let row = NewPlugin {
        name,
        version,
        sha256: &sha256,
        size,
        world: compiled.world(),
        params: params.as_deref(),
        storage_key: key.as_str(),
        owner_id,
    };
    match plugins::insert(&state.db, &row).await? {
        Some(row) => {
            // The plugin is registered: a sync that could not be enqueued is logged, not an error.
            if let Err(e) = rerender_upgraded(state, &row).await {
                tracing::warn!(plugin = %row.id, error = %e, "rerender on upgrade: cannot enqueue the syncs");
            }
            Ok(row)
        }
        None => {
            // Same name and version already registered: keep the object only if a row names it.
            if plugins::count_with_key(&state.db, key.as_str()).await? == 0 {
                let _ = state.store.delete(&key).await;
            }
            Err(Error::conflict(format!("plugin {name:?} version {version:?} is already registered")))
        }
    }
}

/// Deletes a plugin: the builtin never, a global one only by a su, another admin's never (403;
/// 404 when the caller cannot see it); the last version of a name that a project's settings
/// still use neither (409).
pub async fn delete(state: &AppState, caller: &CurrentUser, id: Uuid) -> Result<()> {
    let row = find(state, caller, id).await?;
    if row.builtin {
        return Err(Error::Forbidden("the builtin plugin cannot be deleted".into()));
    }
    if !caller.is_su() && row.owner_id != Some(caller.id) {
        return Err(Error::Forbidden("a global plugin is deleted by a su".into()));
    }
    // A version a project's pin resolves to, with no other version meeting the pin, stays.
    if let Some(why) = pinned_only_here(state, &row).await? {
        return Err(Error::conflict(why));
    }
    // A name some project uses keeps its last version (the check and the delete are one step).
    let users: Vec<Uuid> = projects_using(state, &row).await?.into_iter().map(|(p, _)| p.row.id).collect();
    match plugins::delete(&state.db, id, &row.name, !users.is_empty()).await? {
        Deleted::Yes => {}
        Deleted::NotFound => return Err(Error::not_found("plugin", id)),
        Deleted::LastOfName => {
            return Err(Error::conflict(format!(
                "plugin {:?} is named by the settings of {} project(s), e.g. {}, and this is its last version",
                row.name,
                users.len(),
                users[0]
            )));
        }
    }
    // Row first: an object left behind (store down) is an orphan the cleanup removes.
    if let Some(key) = &row.storage_key
        && plugins::count_with_key(&state.db, key).await? == 0
        && let Err(e) = state.store.delete(&BlobKey::parse(key)?).await
    {
        tracing::warn!(key = %key, error = %e, "could not delete a plugin's object; the orphan scan will");
    }
    Ok(())
}

/// Enqueues the sync of every project with `rerender_on_upgrade` that has a variant whose
/// `plugin` now resolves to `new` (just registered): the sync re-renders exactly what it changes.
async fn rerender_upgraded(state: &AppState, new: &PluginRow) -> Result<()> {
    for (project, variants) in projects_using(state, new).await? {
        if !project.settings.rerender_on_upgrade {
            continue;
        }
        for (_, reference) in variants {
            if resolve(&state.db, project.row.owner_id, &reference).await?.is_ok_and(|r| r.id == new.id) {
                let job = crate::db::jobs::enqueue_project_sync(&state.db, project.row.id).await?;
                tracing::info!(project = %project.row.id, job = %job.id, plugin = %new.name, version = %new.version, "rerender on upgrade: sync enqueued");
                state.wake.notify_waiters();
                break;
            }
        }
    }
    Ok(())
}

/// Why `plugin` must stay: a live project's variant resolves to it and, without it, its reference
/// would meet no version (`sepia@1.0.0` with 1.0.0 deleted).
async fn pinned_only_here(state: &AppState, plugin: &PluginRow) -> Result<Option<String>> {
    for (project, variants) in projects_using(state, plugin).await? {
        let owner = project.row.owner_id;
        for (variant, reference) in variants {
            if !resolve(&state.db, owner, &reference).await?.is_ok_and(|r| r.id == plugin.id) {
                continue;
            }
            let Ok(parsed) = PluginRef::parse(&reference) else { continue };
            let (mut own, mut global) = plugins::versions_for(&state.db, owner, &plugin.name).await?;
            own.retain(|r| r.id != plugin.id);
            global.retain(|r| r.id != plugin.id);
            if parsed.choose(&own).or_else(|| parsed.choose(&global)).is_none() {
                return Ok(Some(format!(
                    "variant {variant:?} of project {} names {reference:?}, which only this version meets",
                    project.row.id
                )));
            }
        }
    }
    Ok(None)
}

/// The live projects whose settings name `plugin`'s name in its scope (any project for a global
/// plugin, since one whose owner has none of their own renders with it; the owner's for an owned
/// one), each with its (variant name, reference) pairs naming it, whatever the pin.
async fn projects_using(state: &AppState, plugin: &PluginRow) -> Result<Vec<(Project, Vec<(String, String)>)>> {
    let mut using = Vec::new();
    for row in projects::list_all(&state.db, None).await? {
        if plugin.owner_id.is_some_and(|owner| owner != row.owner_id) {
            continue;
        }
        let project = Project::from_row(row)?;
        let variants: Vec<(String, String)> = project
            .settings
            .variants
            .iter()
            .filter(|v| PluginRef::parse(&v.plugin).is_ok_and(|r| r.name == plugin.name))
            .map(|v| (v.name.as_str().to_owned(), v.plugin.clone()))
            .collect();
        if !variants.is_empty() {
            using.push((project, variants));
        }
    }
    Ok(using)
}

/// The plugin `reference` (a variant's `plugin`) resolves to for projects of `owner` now.
/// `Ok(Err(why))`: it names nothing they may use.
pub async fn resolve(
    db: &Db,
    owner: Uuid,
    reference: &str,
) -> Result<std::result::Result<PluginRow, String>, sqlx::Error> {
    let reference = match PluginRef::parse(reference) {
        Ok(reference) => reference,
        Err(why) => return Ok(Err(why)),
    };
    // The owner's own versions first; the global ones when none of theirs meets the reference.
    let (own, global) = plugins::versions_for(db, owner, &reference.name).await?;
    let chosen = reference.choose(&own).or_else(|| reference.choose(&global));
    Ok(chosen.cloned().ok_or_else(|| reference.unmet()))
}

/// Why a custom plugin could not be had for a render.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// Its variants fail (no retry helps).
    #[error("{0}")]
    Permanent(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Every sandbox was in use when `info()` had to be called: worth a retry.
    #[error("{0}")]
    Busy(String),
}

/// The compiled plugin `row`, from the engine's caches or the store, checked against its
/// recorded digest.
pub async fn load(state: &AppState, engine: &Arc<PluginEngine>, row: PluginRow) -> Result<CompiledPlugin, Unavailable> {
    let name = row.name.clone();
    if let Some(compiled) = engine.loaded(&row.sha256) {
        return Ok(compiled);
    }
    let key =
        row.storage_key.ok_or_else(|| Unavailable::Permanent(format!("plugin {name:?} has no stored component")))?;
    let wasm = state.store.get_bytes(&BlobKey::parse(&key)?).await?;
    if hex::encode(Sha256::digest(&wasm)) != row.sha256 {
        return Err(Unavailable::Permanent(format!("the stored component of {name:?} does not match its digest")));
    }
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || engine.load(&wasm))
        .await
        .map_err(|e| {
            tracing::error!(plugin = %name, error = %e, "loading a plugin panicked");
            Unavailable::Permanent(format!("plugin {name:?} could not be loaded"))
        })?
        .map_err(|e| {
            if e.is_transient() { Unavailable::Busy(e.to_string()) } else { Unavailable::Permanent(e.to_string()) }
        })
}
