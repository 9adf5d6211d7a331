//! The plugin registry: admins upload components; projects name them for variants by name (the
//! most recently registered version of that name renders). The bytes live in the blob store under
//! `plugins/{sha256}-{random}.wasm` (the bucket is the source every node's compiled cache is
//! rebuilt from); the row keeps name, version, digest, size and world.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{CompiledPlugin, PluginEngine, PluginFailure, WORLD};
use crate::AppState;
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

/// Checks, compiles and stores a component; its row.
pub async fn register(state: &AppState, name: &str, version: &str, wasm: Bytes) -> Result<PluginRow> {
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
    match checked {
        Ok(_) => {}
        Err(PluginFailure::Invalid(why)) => return Err(Error::InvalidPlugin(why)),
        Err(busy @ PluginFailure::Busy(_)) => {
            return Err(Error::Unavailable {
                message: "every plugin sandbox is busy; retry later".into(),
                cause: Some(busy.to_string()),
            });
        }
        Err(other) => return Err(Error::InvalidPlugin(format!("calling info() failed: {other}"))),
    }
    let key = plugin_key(&sha256);
    state.store.put_bytes(&key, "application/wasm", wasm.clone()).await?;
    let row =
        NewPlugin { name, version, sha256: &sha256, size: wasm.len() as i64, world: WORLD, storage_key: key.as_str() };
    match plugins::insert(&state.db, &row).await? {
        Some(row) => Ok(row),
        None => {
            // Same name and version already registered: keep the object only if a row names it.
            if plugins::count_with_key(&state.db, key.as_str()).await? == 0 {
                let _ = state.store.delete(&key).await;
            }
            Err(Error::conflict(format!("plugin {name:?} version {version:?} is already registered")))
        }
    }
}

/// Deletes a plugin: the builtin never (403); the last version of a name that a project's
/// settings still use neither (409).
pub async fn delete(state: &AppState, id: Uuid) -> Result<()> {
    let row = plugins::find(&state.db, id).await?.ok_or_else(|| Error::not_found("plugin", id))?;
    if row.builtin {
        return Err(Error::Forbidden("the builtin plugin cannot be deleted".into()));
    }
    // A name some project uses keeps its last version (the check and the delete are one step).
    let users = projects_naming(state, &row.name).await?;
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

/// Ids of the live projects whose settings name `plugin`.
async fn projects_naming(state: &AppState, plugin: &str) -> Result<Vec<Uuid>> {
    let mut users = Vec::new();
    for row in projects::list_all(&state.db, None).await? {
        let project = Project::from_row(row)?;
        if project.settings.plugins().iter().any(|(_, p)| *p == plugin) {
            users.push(project.row.id);
        }
    }
    Ok(users)
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

/// The compiled plugin registered as `name` (latest version), from the engine's caches or the
/// store, checked against its recorded digest.
pub async fn load(state: &AppState, engine: &Arc<PluginEngine>, name: &str) -> Result<CompiledPlugin, Unavailable> {
    let row = plugins::latest(&state.db, name)
        .await?
        .ok_or_else(|| Unavailable::Permanent(format!("no plugin named {name:?} is registered")))?;
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
