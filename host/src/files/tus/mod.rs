//! Resumable uploads: TUS 1.0.0 with the `creation`, `creation-with-upload`, `termination` and
//! `expiration` extensions (the HTTP side is `http/tus.rs`).
//!
//! The state of an upload is its row (`db::tus_uploads`), its bytes are in the blob store: each
//! PATCH body is streamed to the store as one object under the project's folder
//! (`{slug}-{id}/tus/{upload}/{offset}-{part}`, see [`append`]), then recorded with the new offset
//! in one fenced transaction. A host restart loses nothing but the PATCH in flight, and of that
//! only what had not arrived: a body cut off keeps the bytes that did. The PATCH that reaches the
//! length reads the parts back in order through [`service::upload`], so the upload becomes a File
//! exactly as `/upload/*` makes one (sniffed, within the quotas, its variants queued), then the
//! parts go. Unfinished uploads expire ([`EXPIRES_AFTER`]); the daily cleanup removes them.
//!
//! An upload is authorised by a project key (any key of its project) or by the one-time upload
//! token that created it: the token is redeemed by the creation and keeps authorising that
//! upload (tus clients send the same headers with every request), and no other.

mod append;
mod in_flight;
pub mod metadata;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use append::{append, complete};

use super::service::{self, Wanted};
use crate::AppState;
use crate::auth::ProjectKey;
use crate::auth::tokens::hash_secret;
use crate::db::tus_uploads::{self, TusUploadRow};
use crate::error::{Error, Result};
use crate::storage::BlobKey;

pub const VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
/// How long an upload may take from its creation.
pub const EXPIRES_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// Who asks.
#[derive(Debug, Clone)]
pub enum Credential {
    Key(ProjectKey),
    /// An `Upload-Token` header: a token from `POST /upload-tokens`.
    Token(String),
}

/// A new upload as the creation request describes it.
#[derive(Debug, Clone)]
pub struct Creation {
    /// `Upload-Length`.
    pub length: i64,
    /// `Upload-Metadata` as sent.
    pub metadata: Option<String>,
}

/// An upload as HEAD and PATCH report it.
pub type Upload = TusUploadRow;

fn unknown(id: Uuid) -> Error {
    Error::not_found("upload", id)
}

/// What the finished upload may become: the token's kind and limits, narrowed by the metadata.
pub(crate) fn wanted(row: &TusUploadRow) -> Result<Wanted> {
    Wanted::stored(&row.kind, row.max_bytes, row.content_types.as_deref())
}

/// Creates an upload (and, when its length is 0, finishes it at once).
pub async fn create(state: &AppState, credential: &Credential, creation: Creation) -> Result<Upload> {
    if creation.length < 0 {
        return Err(Error::validation("Upload-Length", "must be a non-negative integer"));
    }
    // Checked before a token is redeemed: a malformed request costs no token.
    let meta = match creation.metadata.as_deref() {
        Some(raw) => metadata::parse(raw)?,
        None => metadata::Metadata::default(),
    };
    let (project_id, api_key_id, token_hash, wanted) = match credential {
        Credential::Key(key) => (key.project_id, Some(key.key_id), None, Wanted::default()),
        Credential::Token(token) => {
            let (project_id, wanted) = super::direct::redeem(state, token).await?;
            (project_id, None, Some(hash_secret(token)), wanted)
        }
    };
    let kind = match (wanted.kind, meta.kind.as_deref()) {
        (None, asked) => asked.unwrap_or("any").to_owned(),
        (Some(allowed), None | Some("any")) => allowed.as_str().to_owned(),
        (Some(allowed), Some(asked)) if asked == allowed.as_str() => asked.to_owned(),
        (Some(allowed), Some(asked)) => {
            let why = format!("kind {asked:?}: the upload token takes only {}", allowed.as_str());
            return Err(Error::validation("Upload-Metadata", why));
        }
    };
    let project = service::uploading_to(state, project_id).await?;
    let quotas = &project.settings.quotas;
    let limit = [quotas.max_file_bytes, wanted.max_bytes.map(|n| n as i64)].into_iter().flatten().min();
    if let Some(max) = limit
        && creation.length > max
    {
        return Err(Error::PayloadTooLarge(format!(
            "Upload-Length {} is over this upload's limit of {max} bytes",
            creation.length
        )));
    }
    // Unfinished uploads count as the files they will be: many begun at once cannot together
    // pass a quota that each alone respects (the File's own check runs again at the end).
    let (stored_bytes, stored_files) = crate::db::files::usage(&state.db, project_id).await?;
    let (pending_bytes, pending_files) = tus_uploads::unfinished(&state.db, project_id).await?;
    let (used_bytes, used_files) = (stored_bytes + pending_bytes, stored_files + pending_files);
    if let Some(max) = quotas.max_total_bytes
        && used_bytes + creation.length > max
    {
        let message = format!(
            "{} more bytes would pass the project's limit of {max} bytes ({pending_bytes} of them in unfinished uploads)",
            creation.length
        );
        return Err(Error::Conflict { code: "quota_exceeded", message });
    }
    if let Some(max) = quotas.max_files
        && used_files >= max
    {
        let message =
            format!("the project holds {stored_files} files and {pending_files} unfinished uploads, of at most {max}");
        return Err(Error::Conflict { code: "quota_exceeded", message });
    }
    let content_types = match &wanted.content_types {
        Some(types) => Some(serde_json::to_string(types).map_err(|e| Error::Internal(e.into()))?),
        None => None,
    };
    let now = Utc::now();
    let row = TusUploadRow {
        id: Uuid::now_v7(),
        project_id,
        api_key_id,
        upload_token_hash: token_hash,
        length: creation.length,
        upload_offset: 0,
        metadata: creation.metadata,
        filename: meta.filename,
        kind,
        max_bytes: wanted.max_bytes.map(|n| n as i64),
        content_types,
        file_id: None,
        expires_at: now + EXPIRES_AFTER,
        created_at: now,
    };
    tus_uploads::insert(&state.db, &row).await?;
    if row.length == 0 {
        return complete(state, row).await;
    }
    Ok(row)
}

/// The upload `id`, when `credential` may see it: a key of its project, or the token that made
/// it. Anything else is the same 404 as an unknown id (other tenants' uploads are not revealed).
pub async fn authorised(state: &AppState, credential: &Credential, id: Uuid) -> Result<Upload> {
    let row = tus_uploads::find(&state.db, id).await?.ok_or_else(|| unknown(id))?;
    let allowed = match credential {
        Credential::Key(key) => row.project_id == key.project_id,
        Credential::Token(token) => row.upload_token_hash.as_deref() == Some(hash_secret(token).as_str()),
    };
    if !allowed {
        return Err(unknown(id));
    }
    Ok(row)
}

/// An unfinished upload past its expiry is gone (410) until the cleanup forgets it (404).
pub(crate) fn check_not_expired(row: &Upload, now: DateTime<Utc>) -> Result<()> {
    if row.file_id.is_none() && row.expires_at <= now {
        return Err(Error::Gone(format!("upload {} expired at {}", row.id, row.expires_at.to_rfc3339())));
    }
    Ok(())
}

/// The upload's state (HEAD).
pub async fn status(state: &AppState, credential: &Credential, id: Uuid) -> Result<Upload> {
    // A PATCH of this upload in flight settles first: its offset is the one to resume from.
    let _turn = in_flight::wait_turn(id, std::time::Duration::from_secs(5)).await;
    let row = authorised(state, credential, id).await?;
    check_not_expired(&row, Utc::now())?;
    // Every byte is here but no File yet: the completion failed (the store or the database did
    // not answer) or its process died. Clients take `Upload-Offset == Upload-Length` as done and
    // never send the empty PATCH that would retry it, so HEAD finishes it (or says why not).
    if row.file_id.is_none() && row.length > 0 && row.upload_offset == row.length {
        return complete(state, row).await;
    }
    Ok(row)
}

/// Terminates an upload: its parts and its row go. A File it became stays.
pub async fn terminate(state: &AppState, credential: &Credential, id: Uuid) -> Result<()> {
    let row = authorised(state, credential, id).await?;
    forget(state, row.id).await
}

/// Deletes an upload's stored parts, then its rows. A storage failure leaves the rows (503), so
/// nothing becomes untracked and the call can be repeated.
pub(crate) async fn forget(state: &AppState, id: Uuid) -> Result<()> {
    remove_parts(state, id).await?;
    tus_uploads::delete(&state.db, id).await?;
    Ok(())
}

/// Deletes an upload's stored parts and their rows, keeping the upload's row.
pub(crate) async fn remove_parts(state: &AppState, id: Uuid) -> Result<()> {
    for part in tus_uploads::parts(&state.db, id).await? {
        state.store.delete(&BlobKey::parse(&part.storage_key)?).await?;
    }
    tus_uploads::delete_parts(&state.db, id).await?;
    Ok(())
}

/// The largest upload `credential`'s project takes (`Tus-Max-Size`), when it has a limit and the
/// credential names a live project.
pub async fn max_size(state: &AppState, credential: Option<&Credential>) -> Option<i64> {
    let project_id = match credential? {
        Credential::Key(key) => key.project_id,
        Credential::Token(token) => super::direct::project_of(state, token).await.ok()??,
    };
    let project = service::uploading_to(state, project_id).await.ok()?;
    project.settings.quotas.max_file_bytes
}

/// Whether a page of `origin` may use `/tus/…` (CORS): a request naming an upload goes by that
/// upload's project's `cors_origins`, a creation by its `Upload-Token`'s project; a creation
/// without a token (its preflight never has one: browsers send no credentials with it) by any
/// live project's, since there is no project to go by yet. The answer to the creation itself
/// still comes from the credentials it carries.
pub async fn cors_allows(state: &AppState, upload: Option<Uuid>, token: Option<&str>, origin: &str) -> Result<bool> {
    let project_id = match (upload, token) {
        (Some(id), _) => tus_uploads::find(&state.db, id).await?.map(|row| row.project_id),
        (None, Some(token)) => super::direct::project_of(state, token).await?,
        (None, None) => {
            const CANDIDATES: i64 = 50;
            for row in crate::db::projects::mentioning(&state.db, origin, CANDIDATES).await? {
                let listed = crate::projects::service::Project::from_row(row)
                    .is_ok_and(|p| p.settings.cors_origins.iter().any(|o| o == origin));
                if listed {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
    };
    let Some(project_id) = project_id else { return Ok(false) };
    let project = service::uploading_to(state, project_id).await.ok();
    Ok(project.is_some_and(|p| p.settings.cors_origins.iter().any(|o| o == origin)))
}
