//! The project flows. Ownership is checked here: a project its caller may not see is 404, as if
//! it did not exist (API.md: existence is not leaked).

use anyhow::Context;
use uuid::Uuid;

use std::collections::BTreeMap;

use super::settings::ProjectSettings;
use crate::AppState;
use crate::auth::{CurrentUser, api_keys as keygen};
use crate::db::api_keys::{self, ApiKeyRow};
use crate::db::plugins::PluginRow;
use crate::db::projects::{self, NewProject, ProjectRow};
use crate::db::{Db, is_unique_violation};
use crate::error::{Error, Result};
use crate::plugins::registry;
use crate::storage::keys::{project_prefix, slugify};
use crate::storage::{BlobKey, BlobStore};

/// A project with its settings parsed.
#[derive(Debug, Clone)]
pub struct Project {
    pub row: ProjectRow,
    pub settings: ProjectSettings,
}

impl Project {
    pub fn from_row(row: ProjectRow) -> Result<Project> {
        let settings = serde_json::from_str(&row.settings)
            .with_context(|| format!("settings of project {} are corrupt", row.id))?;
        Ok(Project { row, settings })
    }

    /// Where every blob of the project lives.
    pub fn prefix(&self) -> String {
        project_prefix(&self.row.slug, self.row.id)
    }
}

pub fn check_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::validation(field, "must be 1 to 100 characters, without control characters"));
    }
    Ok(name.to_owned())
}

/// Parses and validates settings, including that every plugin they name resolves, for
/// projects of `owner`, to a plugin the owner may use (their own, or a global one), and that
/// each variant's params are ones that plugin declares, with values of their types.
async fn parse_settings(db: &Db, owner: Uuid, raw: serde_json::Value) -> Result<ProjectSettings> {
    let settings = ProjectSettings::from_json(raw, "settings")?;
    let mut resolved: BTreeMap<&str, PluginRow> = BTreeMap::new();
    for (i, plugin) in settings.plugins() {
        match registry::resolve(db, owner, plugin).await? {
            Ok(row) => resolved.insert(plugin, row),
            Err(why) => return Err(Error::validation(format!("settings.variants[{i}].plugin"), why)),
        };
    }
    for (i, variant) in settings.variants.iter().enumerate() {
        // A 0.1.0 plugin declares nothing: its params are handed over unchecked, as before.
        let Some(declared) = resolved.get(variant.plugin.as_str()).and_then(PluginRow::declared_params) else {
            continue;
        };
        let given = variant.params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        if let Err((param, why)) = mbk_standard::params::check_all(&declared, given) {
            let plugin = &resolved[variant.plugin.as_str()];
            let why = format!("{why} ({} {})", plugin.name, plugin.version);
            return Err(Error::validation(format!("settings.variants[{i}].params.{param}"), why));
        }
    }
    Ok(settings)
}

/// What each variant's `plugin` resolves to now, by variant name (one that no longer resolves,
/// its last version deleted, is left out: its renders fail with the reason).
pub async fn resolved_plugins(state: &AppState, project: &Project) -> Result<BTreeMap<String, PluginRow>> {
    // One look-up per distinct reference (most variants name the standard plugin alike).
    let mut by_reference: BTreeMap<&str, Option<PluginRow>> = BTreeMap::new();
    for (_, reference) in project.settings.plugins() {
        let row = registry::resolve(&state.db, project.row.owner_id, reference).await?.ok();
        by_reference.insert(reference, row);
    }
    Ok(project
        .settings
        .variants
        .iter()
        .filter_map(|v| Some((v.name.as_str().to_owned(), by_reference.get(v.plugin.as_str())?.clone()?)))
        .collect())
}

pub async fn create(
    state: &AppState,
    user: CurrentUser,
    name: &str,
    settings: Option<serde_json::Value>,
) -> Result<Project> {
    let name = check_name("name", name)?;
    let settings = match settings {
        None | Some(serde_json::Value::Null) => ProjectSettings::default(),
        Some(raw) => parse_settings(&state.db, user.id, raw).await?,
    };
    let json = serde_json::to_value(&settings).context("serialise settings")?;
    let row = projects::insert(
        &state.db,
        &NewProject { name: &name, slug: &slugify(&name), owner_id: user.id, settings: &json },
    )
    .await?;
    Project::from_row(row)
}

/// The project, if the caller may see it (its owner, or su).
pub async fn get(state: &AppState, user: CurrentUser, id: Uuid) -> Result<Project> {
    match projects::find(&state.db, id).await? {
        Some(row) if user.is_su() || row.owner_id == user.id => Project::from_row(row),
        _ => Err(Error::not_found("project", id)),
    }
}

/// A live project by id, whoever asks (for key-authenticated routes, where the key decided).
pub async fn get_by_key(state: &AppState, id: Uuid) -> Result<Project> {
    let row = projects::find(&state.db, id).await?.ok_or_else(|| Error::not_found("project", id))?;
    Project::from_row(row)
}

pub async fn list(state: &AppState, user: CurrentUser, limit: i64, offset: i64) -> Result<(Vec<Project>, i64)> {
    let owner = (!user.is_su()).then_some(user.id);
    let (rows, total) = projects::page(&state.db, owner, limit, offset).await?;
    Ok((rows.into_iter().map(Project::from_row).collect::<Result<_>>()?, total))
}

pub async fn update(
    state: &AppState,
    user: CurrentUser,
    id: Uuid,
    name: Option<&str>,
    settings: Option<serde_json::Value>,
) -> Result<Project> {
    let owner = get(state, user, id).await?.row.owner_id;
    let name = name.map(|n| check_name("name", n)).transpose()?;
    let settings = match settings {
        None => None,
        Some(raw) => {
            let settings = parse_settings(&state.db, owner, raw).await?;
            Some(serde_json::to_value(settings).context("serialise settings")?)
        }
    };
    let updated = projects::update(&state.db, id, name.as_deref(), settings.as_ref()).await?;
    state.owners.forget(id);
    if !updated {
        return Err(Error::not_found("project", id));
    }
    get(state, user, id).await
}

/// Soft delete (hidden, keys disabled; purged by the cleanup after 30 days), or permanent:
/// every blob under the project's prefix first, then the rows. When storage fails the rows stay,
/// so nothing becomes an untracked orphan; the caller may retry.
pub async fn delete(state: &AppState, user: CurrentUser, id: Uuid, permanent: bool) -> Result<()> {
    let project = get(state, user, id).await?;
    projects::soft_delete(&state.db, id).await?;
    state.owners.forget(id);
    if !permanent {
        return Ok(());
    }
    // Keys are off now (soft deleted first): no upload may land while the blobs are removed.
    delete_prefix(state.store.as_ref(), &project.prefix()).await?;
    projects::delete_rows(&state.db, id).await?;
    Ok(())
}

/// Removes every object under `prefix`.
pub async fn delete_prefix(store: &dyn BlobStore, prefix: &str) -> Result<usize> {
    let objects = store.list(prefix).await?;
    for object in &objects {
        store.delete(&BlobKey::parse(&object.key)?).await?;
    }
    Ok(objects.len())
}

/// A new key; its secret is returned here and never again.
pub async fn create_key(
    state: &AppState,
    user: CurrentUser,
    project_id: Uuid,
    name: &str,
) -> Result<(ApiKeyRow, String)> {
    get(state, user, project_id).await?;
    let name = check_name("name", name)?;
    // A prefix collision (2^-48 per pair) is retried rather than answered as an error.
    for _ in 0..3 {
        let key = keygen::generate();
        match api_keys::insert(&state.db, project_id, &name, &key.prefix, &key.hash).await {
            Ok(row) => return Ok((row, key.key)),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(anyhow::anyhow!("could not find a free key prefix")))
}

pub async fn list_keys(
    state: &AppState,
    user: CurrentUser,
    project_id: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ApiKeyRow>, i64)> {
    get(state, user, project_id).await?;
    Ok(api_keys::page(&state.db, project_id, limit, offset).await?)
}

pub async fn set_key_enabled(
    state: &AppState,
    user: CurrentUser,
    project_id: Uuid,
    key_id: Uuid,
    enabled: bool,
) -> Result<ApiKeyRow> {
    get(state, user, project_id).await?;
    if !api_keys::set_enabled(&state.db, project_id, key_id, enabled).await? {
        return Err(Error::not_found("key", key_id));
    }
    api_keys::find(&state.db, project_id, key_id).await?.ok_or_else(|| Error::not_found("key", key_id))
}

pub async fn delete_key(state: &AppState, user: CurrentUser, project_id: Uuid, key_id: Uuid) -> Result<()> {
    get(state, user, project_id).await?;
    if !api_keys::delete(&state.db, project_id, key_id).await? {
        return Err(Error::not_found("key", key_id));
    }
    Ok(())
}

/// Queues a `sync_project_variants` job for the project; its id. While one waits, that one's id
/// (idempotent: a sync reads the settings when it runs, so the waiting one does what was asked).
pub async fn request_sync(state: &AppState, user: CurrentUser, project_id: Uuid) -> Result<Uuid> {
    get(state, user, project_id).await?;
    let job = crate::db::jobs::enqueue_project_sync(&state.db, project_id).await?;
    state.wake.notify_waiters();
    Ok(job.id)
}
