//! Direct uploads: a backend holding a project key asks for a one-time upload token
//! (`POST /upload-tokens`) and hands it to a browser, which uploads with it alone
//! (`POST /upload/direct/{token}`), never seeing the key. A token names what it takes (`file`,
//! `image` or `any`, at most `max_bytes`, optionally only some content types), expires within an
//! hour, and works once: the upload that redeems it uses it up, whatever its outcome.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::Wanted;
use crate::AppState;
use crate::auth::ProjectKey;
use crate::auth::tokens::{hash_secret as hash, new_secret};
use crate::db::upload_tokens::{self, NewUploadToken};
use crate::error::{Error, Result};

/// The longest a token may live, and how long it lives when the request does not say.
pub const MAX_EXPIRES_IN: i64 = 3600;
const MAX_CONTENT_TYPES: usize = 32;
const PREFIX: &str = "mbku_";
/// What `kind: image` can be: the types an image upload is sniffed as.
const IMAGE_TYPES: [&str; 6] = [
    super::sniff::JPEG.mime,
    super::sniff::PNG.mime,
    super::sniff::GIF.mime,
    super::sniff::WEBP.mime,
    super::sniff::AVIF.mime,
    super::sniff::TIFF.mime,
];

/// What a token is asked for with.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// `file`, `image` or `any`.
    pub kind: String,
    pub max_bytes: i64,
    pub content_types: Option<Vec<String>>,
    /// Seconds, 1..=3600; `None`: 3600.
    pub expires_in: Option<i64>,
}

pub struct Issued {
    /// Shown once: only its hash is kept.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// `image/png`-like: a type and a subtype of token characters, lower-cased.
fn content_type(raw: &str) -> Option<String> {
    let t = raw.trim().to_ascii_lowercase();
    let (main, sub) = t.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    (token(main) && token(sub) && t.len() <= 127).then_some(t)
}

/// Issues a token for uploads to `key`'s project.
pub async fn issue(state: &AppState, key: ProjectKey, request: TokenRequest) -> Result<Issued> {
    if !matches!(request.kind.as_str(), "file" | "image" | "any") {
        return Err(Error::validation("kind", format!("must be file, image or any, got {:?}", request.kind)));
    }
    if request.max_bytes < 1 {
        return Err(Error::validation("max_bytes", format!("must be at least 1, got {}", request.max_bytes)));
    }
    let expires_in = request.expires_in.unwrap_or(MAX_EXPIRES_IN);
    if !(1..=MAX_EXPIRES_IN).contains(&expires_in) {
        return Err(Error::validation("expires_in", format!("must be 1..={MAX_EXPIRES_IN} seconds, got {expires_in}")));
    }
    let content_types = match request.content_types {
        None => None,
        Some(list) if list.is_empty() || list.len() > MAX_CONTENT_TYPES => {
            return Err(Error::validation("content_types", format!("must hold 1 to {MAX_CONTENT_TYPES} types")));
        }
        Some(list) => {
            let mut parsed = Vec::with_capacity(list.len());
            for (i, raw) in list.iter().enumerate() {
                let t = content_type(raw).ok_or_else(|| {
                    Error::validation(format!("content_types[{i}]"), format!("not a media type: {raw:?}"))
                })?;
                if request.kind == "image" && !IMAGE_TYPES.contains(&t.as_str()) {
                    let why = format!("{t} is no image type the host takes ({})", IMAGE_TYPES.join(", "));
                    return Err(Error::validation(format!("content_types[{i}]"), why));
                }
                parsed.push(t);
            }
            Some(serde_json::to_string(&parsed).map_err(|e| Error::Internal(e.into()))?)
        }
    };
    let token = new_secret(PREFIX);
    let expires_at = Utc::now() + chrono::Duration::seconds(expires_in);
    let row = NewUploadToken {
        project_id: key.project_id,
        api_key_id: key.key_id,
        token_hash: &hash(&token),
        kind: &request.kind,
        max_bytes: request.max_bytes,
        content_types: content_types.as_deref(),
        expires_at,
    };
    upload_tokens::insert(&state.db, &row).await?;
    Ok(Issued { token, expires_at })
}

/// The project `token` was issued for, used or expired too (for CORS: see the db function).
pub async fn project_of(state: &AppState, token: &str) -> Result<Option<Uuid>> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    Ok(crate::db::upload_tokens::project_of(&state.db, &hash(token)).await?)
}

/// Uses `token` up: the project it uploads to and what it takes; 401 when it is unknown, used
/// or expired (one answer for all three).
pub async fn redeem(state: &AppState, token: &str) -> Result<(Uuid, Wanted)> {
    let refused = || Error::Unauthorized("the upload token is unknown, used or expired".into());
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Err(refused());
    }
    let row = upload_tokens::redeem(&state.db, &hash(token)).await?.ok_or_else(refused)?;
    Ok((row.project_id, Wanted::stored(&row.kind, Some(row.max_bytes), row.content_types.as_deref())?))
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn content_types_are_media_types() {
        assert_eq!(content_type(" Image/PNG ").as_deref(), Some("image/png"));
        assert_eq!(content_type("application/vnd.api+json").as_deref(), Some("application/vnd.api+json"));
        assert_eq!(content_type("image"), None);
        assert_eq!(content_type("image/"), None);
        assert_eq!(content_type("image/png; q=1"), None);
    }
}
