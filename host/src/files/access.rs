//! Finding, serving and deleting files, for whoever may see them: the project's key, its
//! owner, or su (anyone else gets a 404: existence is not leaked).

use uuid::Uuid;

use super::service::StoredFile;
use crate::AppState;
use crate::auth::Caller;
use crate::db::files::{self, FileRow};
use crate::db::projects;
use crate::db::status::VariantStatus;
use crate::error::{Error, Result};
use crate::storage::BlobKey;
use crate::webhooks::Event;

/// The file, if `caller` may see it: the project's key, its owner, or su. Otherwise 404.
pub async fn visible(state: &AppState, caller: Caller, id: Uuid) -> Result<FileRow> {
    let not_found = || Error::not_found("file", id);
    let file = files::find(&state.db, id).await?.ok_or_else(not_found)?;
    check_project_access(state, caller, file.project_id).await.map_err(|_| not_found())?;
    Ok(file)
}

/// The project a list route (`/files`, `/jobs`) is about: `?project_id=`, or the key's own.
/// A user token must name one.
pub fn project_of(caller: Caller, raw: Option<&str>) -> Result<Uuid> {
    match (raw, caller) {
        (Some(raw), _) => {
            Uuid::parse_str(raw).map_err(|_| Error::validation("project_id", format!("not a UUID: {raw:?}")))
        }
        (None, Caller::Key(key)) => Ok(key.project_id),
        (None, Caller::User(_)) => {
            Err(Error::validation("project_id", "required when authenticating with a user token"))
        }
    }
}

/// 404 unless `caller` may see the project (which must be live).
pub async fn check_project_access(state: &AppState, caller: Caller, project_id: Uuid) -> Result<()> {
    let not_found = || Error::not_found("project", project_id);
    match caller {
        Caller::Key(key) if key.project_id == project_id => Ok(()),
        Caller::Key(_) => Err(not_found()),
        Caller::User(user) => match projects::find(&state.db, project_id).await? {
            Some(p) if user.is_su() || p.owner_id == user.id => Ok(()),
            _ => Err(not_found()),
        },
    }
}

pub async fn get(state: &AppState, caller: Caller, id: Uuid) -> Result<StoredFile> {
    let file = visible(state, caller, id).await?;
    let variants = files::variants_of(&state.db, id).await?;
    Ok(StoredFile { file, variants, job_id: None })
}

/// A page of a project's files with their variants.
pub async fn list(
    state: &AppState,
    project_id: Uuid,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StoredFile>, i64)> {
    let (rows, total) = files::page(&state.db, project_id, kind, limit, offset).await?;
    let mut variants = files::variants_of_page(&state.db, project_id, kind, limit, offset).await?;
    let items = rows
        .into_iter()
        .map(|file| {
            let (mine, rest): (Vec<_>, Vec<_>) = variants.drain(..).partition(|v| v.file_id == file.id);
            variants = rest;
            StoredFile { file, variants: mine, job_id: None }
        })
        .collect();
    Ok((items, total))
}

/// The key of the original, or of a ready variant.
pub async fn content_key(state: &AppState, caller: Caller, id: Uuid, variant: Option<&str>) -> Result<BlobKey> {
    let file = visible(state, caller, id).await?;
    let key = match variant {
        None => file.storage_key,
        Some(name) => {
            let v = files::variants_of(&state.db, id)
                .await?
                .into_iter()
                .find(|v| v.name == name)
                .ok_or_else(|| Error::NotFound(format!("file {id} has no variant {name:?}")))?;
            if v.status != VariantStatus::Ready {
                return Err(Error::Conflict {
                    code: "variant_not_ready",
                    message: format!("variant {name:?} of file {id} is {}", v.status),
                });
            }
            v.storage_key
        }
    };
    Ok(BlobKey::parse(&key)?)
}

/// Removes the original and every variant from storage, then the rows. A storage failure
/// leaves the rows (503), so nothing becomes an untracked orphan and the delete can be retried.
pub async fn delete(state: &AppState, caller: Caller, id: Uuid) -> Result<()> {
    let file = visible(state, caller, id).await?;
    let variants = files::variants_of(&state.db, id).await?;
    for v in &variants {
        for key in v.blob_keys() {
            state.store.delete(&BlobKey::parse(&key)?).await?;
        }
    }
    state.store.delete(&BlobKey::parse(&file.storage_key)?).await?;
    if files::delete(&state.db, id).await?
        && let Ok(project) = crate::projects::service::get_by_key(state, file.project_id).await
    {
        let gone = StoredFile { file, variants, job_id: None };
        super::view::announce(state, &project, &gone, Event::FileDeleted).await;
    }
    Ok(())
}
