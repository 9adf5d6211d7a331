//! How stored blobs reach clients. A public project's URLs are plain (`/blobs/{key}` on the
//! filesystem, the bucket's URL on S3). A private project's are signed and expire after its
//! `url_ttl_seconds`: `/blobs/{key}?exp=…&sig=…` on the filesystem ([`signing`]), presigned GETs
//! on S3. Every answer signs afresh; `GET /blobs` looks the key's project up in [`owners`], a
//! memory of a second that a change of the project in this process empties, so switching a
//! project to private refuses its unsigned URLs at once (within a second on other processes).

pub mod negotiate;
pub mod owners;
pub mod signing;
pub mod variants;

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::AppState;
use crate::db::projects;
use crate::error::{Error, Result};
use crate::projects::service::Project;
use crate::projects::settings::Visibility;
use crate::storage::BlobKey;

/// Keys never change content: a public blob may be cached forever.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The URLs of one project's blobs, in one answer (and the one other setting of how its File
/// answers look: whether they show GPS).
pub struct Links<'a> {
    state: &'a AppState,
    /// `Some(ttl)`: the project is private, its URLs signed for that long.
    signed_for: Option<Duration>,
    /// The project's `keep_gps` now: turning it off hides positions analysed before.
    pub keep_gps: bool,
}

impl<'a> Links<'a> {
    pub fn of(state: &'a AppState, project: &Project) -> Links<'a> {
        let settings = &project.settings;
        let signed_for = (settings.visibility == Visibility::Private)
            .then(|| Duration::from_secs(u64::from(settings.url_ttl_seconds)));
        Links { state, signed_for, keep_gps: settings.keep_gps }
    }

    /// The links of the live project `id`'s blobs.
    pub async fn of_project(state: &'a AppState, id: Uuid) -> Result<Links<'a>> {
        Ok(Links::of(state, &crate::projects::service::get_by_key(state, id).await?))
    }

    /// The URL a client fetches `key` from (`""` for a key that cannot be one, which stored
    /// rows never hold). A private URL that cannot be presigned is a 503, never the unsigned URL
    /// instead (it would not work, and it is not the answer).
    pub async fn url(&self, key: &str) -> Result<String> {
        let Ok(key) = BlobKey::parse(key) else { return Ok(String::new()) };
        let store = self.state.store.as_ref();
        let Some(ttl) = self.signed_for else { return Ok(store.public_url(&key)) };
        if let Some(url) = store.presigned_get(&key, ttl).await? {
            return Ok(url);
        }
        Ok(self.signed(&format!("/blobs/{key}"), ttl))
    }

    /// The `/v/{file_id}/{variant}` URL of a variant (signed for a private project): the one a
    /// `format: "auto"` variant is fetched by, whose answer follows the request's `Accept`.
    pub fn variant_url(&self, file_id: Uuid, variant: &str) -> String {
        let path = variants::path(file_id, variant);
        match self.signed_for {
            Some(ttl) => self.signed(&path, ttl),
            None => format!("{}{path}", self.state.config.public_base_url),
        }
    }

    fn signed(&self, path: &str, ttl: Duration) -> String {
        let exp = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
        let query = self.state.url_signer.query(path, exp);
        format!("{}{path}?{query}", self.state.config.public_base_url)
    }
}

/// The project whose blobs live under `key` (`{slug}-{project id}/…`), when it is live.
async fn owner_of(state: &AppState, key: &BlobKey) -> Result<Option<Arc<Project>>> {
    let Some(id) = crate::storage::keys::project_id_of(key.as_str()) else { return Ok(None) };
    if let Some(project) = state.owners.get(id) {
        return Ok(Some(project));
    }
    let generation = state.owners.generation();
    let Some(row) = projects::find(&state.db, id).await? else { return Ok(None) };
    let project = Arc::new(Project::from_row(row)?);
    state.owners.put(id, Arc::clone(&project), generation);
    Ok(Some(project))
}

/// Whether a page of `origin` may use `path`, a delivery route of one project (`/blobs/{key}`,
/// `/v/{file_id}/{variant}`, `/upload/direct/{token}`): `origin` is among that project's `cors_origins`.
pub async fn cors_allows(state: &AppState, path: &str, origin: &str) -> Result<bool> {
    let project = if let Some(key) = path.strip_prefix("/blobs/") {
        match BlobKey::parse(key) {
            Ok(key) => owner_of(state, &key).await?,
            Err(_) => None,
        }
    } else if let Some(rest) = path.strip_prefix("/v/") {
        variants::project_of_path(state, rest).await?.map(Arc::new)
    } else if let Some(token) = path.strip_prefix("/upload/direct/") {
        match crate::files::direct::project_of(state, token).await? {
            Some(id) => crate::projects::service::get_by_key(state, id).await.ok().map(Arc::new),
            None => None,
        }
    } else {
        None
    };
    Ok(project.is_some_and(|p| p.settings.cors_origins.iter().any(|o| o == origin)))
}

/// Whether `GET /blobs/{key}` with this `exp`/`sig` may answer, and its `Cache-Control`: a live
/// public project's blob for anyone (cached for ever: keys never change content), a private
/// project's only with a valid signature (cached privately until it expires), 403 otherwise; and
/// 404 for a key of no live project (soft-deleted, or outside the key layout): failing closed,
/// a deleted private project's blobs never become readable unsigned.
pub async fn blob_access(state: &AppState, key: &BlobKey, exp: Option<&str>, sig: Option<&str>) -> Result<String> {
    let Some(project) = owner_of(state, key).await? else {
        return Err(Error::NotFound(format!("no blob at {key}")));
    };
    if project.settings.visibility == Visibility::Public {
        return Ok(IMMUTABLE.to_owned());
    }
    let now = chrono::Utc::now().timestamp();
    match state.url_signer.verify(&format!("/blobs/{key}"), exp, sig, now) {
        Ok(()) => {
            let left = exp.and_then(|e| e.parse::<i64>().ok()).map_or(0, |e| e - now);
            Ok(format!("private, max-age={left}"))
        }
        Err(why) => {
            tracing::info!(key = %key, reason = %why, "a private blob was refused");
            Err(why.into())
        }
    }
}
