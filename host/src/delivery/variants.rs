//! `GET /v/{file_id}/{variant}`: a variant by its file and name, the one URL of it that stays the
//! same when the project changes the variant's format, size or plugin (a re-render replaces what
//! it answers; its ETag says so). Public projects: no credentials. Private: the `exp`/`sig` of
//! the path, as `/blobs` takes them. On the filesystem the host answers the bytes; on S3 a 302 to
//! the bucket (the public URL, or a presigned GET for a private project). A `format: "auto"`
//! variant answers the sibling the request's `Accept` takes best ([`super::negotiate`]), with
//! `Vary: Accept`.

use uuid::Uuid;

use super::negotiate;
use crate::AppState;
use crate::db::files::VariantRow;
use crate::db::status::VariantStatus;
use crate::db::{files, projects};
use crate::error::{Error, Result};
use crate::files::analysis::ImageFacts;
use crate::projects::VariantFormat;
use crate::projects::service::Project;
use crate::projects::settings::Visibility;
use crate::storage::BlobKey;

/// A public variant may change under its `/v/` URL (a sync re-renders it): cached for an hour,
/// then revalidated by its ETag.
pub const PUBLIC_VARIANT: &str = "public, max-age=3600";

/// How a `/v/` request is answered.
pub struct Delivered {
    pub key: BlobKey,
    pub cache_control: String,
    /// `Some(url)`: a 302 there (S3); `None`: the host serves the key's bytes.
    pub redirect: Option<String>,
    /// The answer depends on `Accept` (a `format: "auto"` variant): caches must key on it.
    pub varies_by_accept: bool,
}

/// The path `/v/` URLs are signed over.
pub fn path(file_id: Uuid, variant: &str) -> String {
    format!("/v/{file_id}/{variant}")
}

/// The rendered variant `name` of file `file_id`, if the request may have it: 404 for a file of
/// no live project, an unknown name or a variant not rendered (yet); 403 for a private project's
/// without a valid signature.
pub async fn deliver(
    state: &AppState,
    (file_id, name): (Uuid, &str),
    (exp, sig): (Option<&str>, Option<&str>),
    accept: Option<&str>,
) -> Result<Delivered> {
    let not_found = || Error::NotFound(format!("no variant {name:?} of file {file_id}"));
    let file = files::find(&state.db, file_id).await?.ok_or_else(not_found)?;
    let project = projects::find(&state.db, file.project_id).await?.ok_or_else(not_found)?;
    let project = Project::from_row(project)?;
    let variant =
        files::variants_of(&state.db, file_id).await?.into_iter().find(|v| v.name == name).ok_or_else(not_found)?;
    if variant.status != VariantStatus::Ready {
        return Err(Error::NotFound(format!("variant {name:?} of file {file_id} is not rendered: {}", variant.status)));
    }
    let varies_by_accept = variant.format == VariantFormat::AUTO;
    // Only an auto variant has siblings to choose from: the analysis is read for it alone.
    let animated = varies_by_accept && ImageFacts::of(&file, false).and_then(|facts| facts.animated).unwrap_or(false);
    let key = BlobKey::parse(&sibling_for(&variant, accept, animated))?;
    let store = state.store.as_ref();
    if project.settings.visibility == Visibility::Public {
        let redirect = (store.backend() != "filesystem").then(|| store.public_url(&key));
        return Ok(Delivered { key, cache_control: PUBLIC_VARIANT.to_owned(), redirect, varies_by_accept });
    }
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = state.url_signer.verify(&path(file_id, name), exp, sig, now) {
        tracing::info!(file = %file_id, variant = name, reason = %why, "a private variant was refused");
        return Err(why.into());
    }
    let left = exp.and_then(|e| e.parse::<i64>().ok()).map_or(0, |e| e - now).max(1);
    let redirect = match store.backend() {
        "filesystem" => None,
        // The bucket's own signature, for no longer than the request's.
        _ => store.presigned_get(&key, std::time::Duration::from_secs(left as u64)).await?,
    };
    Ok(Delivered { key, cache_control: format!("private, max-age={left}"), redirect, varies_by_accept })
}

/// The key to answer with: the variant's own, or the sibling `accept` takes best. Of an
/// `animated` original only the WebP moves (the AVIF is its first frame), so it offers no AVIF.
fn sibling_for(variant: &VariantRow, accept: Option<&str>, animated: bool) -> String {
    let siblings = variant.siblings();
    // Best first, as the render made them, the fallback (the row's own key) last.
    let offered: Vec<&str> = ["avif", "webp", "jpeg", "png"]
        .into_iter()
        .filter(|f| siblings.contains_key(*f) && !(animated && *f == "avif"))
        .collect();
    negotiate::choose(accept, &offered)
        .and_then(|format| siblings.get(format))
        .map_or_else(|| variant.storage_key.clone(), |sibling| sibling.key.clone())
}

/// The project whose file a `/v/{file_id}/…` path names, when it is live (for CORS).
pub async fn project_of_path(state: &AppState, rest: &str) -> Result<Option<Project>> {
    let Some(id) = rest.split('/').next().and_then(|id| Uuid::parse_str(id).ok()) else { return Ok(None) };
    let Some(file) = files::find(&state.db, id).await? else { return Ok(None) };
    Ok(crate::projects::service::get_by_key(state, file.project_id).await.ok())
}
