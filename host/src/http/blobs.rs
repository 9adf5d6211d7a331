//! Serving stored objects over HTTP: `GET /blobs/{*key}` (the filesystem backend's URLs: plain
//! for public projects, signed for private ones, see [`crate::delivery`]) and the bytes of
//! `GET /files/{id}/content`. ETag with `If-None-Match` (304), single `Range` (206, or 416 with
//! `Content-Range: bytes */size`), immutable caching for public blobs.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::Path;
use crate::AppState;
use crate::delivery::signing::query_value;
use crate::error::Error;
use crate::files::sniff::mime_for_key;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;
use crate::storage::{BlobKey, BlobStore, ByteRange, StorageError};

/// axum's catch-all `{*key}` has no OpenAPI spelling, so the route is added by hand and its
/// documentation through `ApiDoc`'s `paths(...)` (as `/blobs/{key}`).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().route("/blobs/{*key}", axum::routing::get(get_blob)).routes(routes!(get_variant))
}

/// A rendered variant by its file and name: the same URL whatever the variant's format, size or
/// plugin (a sync's re-render replaces what it answers). Public projects: no credentials;
/// private: `exp`/`sig` signed over `/v/{file_id}/{variant}`. The filesystem store answers the
/// bytes, S3 a 302 to the bucket.
#[utoipa::path(
    get, path = "/v/{file_id}/{variant}", tag = "files", security(()),
    params(("file_id" = Uuid, Path), ("variant" = String, Path),
           ("exp" = Option<i64>, Query, description = "Private projects: when the signed URL expires (Unix seconds)"),
           ("sig" = Option<String>, Query, description = "Private projects: the URL's signature"),
           ("Accept" = Option<String>, Header, description = "`format: \"auto\"` variants: AVIF to clients naming `image/avif`, else WebP to those naming `image/webp`, else the JPEG (PNG with alpha); q-values honoured; an animated original offers no AVIF (only its WebP moves). Answered with `Vary: Accept`"),
           ("Range" = Option<String>, Header), ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The variant's bytes (filesystem)", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range"),
        (status = 302, description = "To the bucket (S3)"),
        (status = 304, description = "Not modified"),
        (status = 403, description = "`forbidden`: a private project's variant without a valid, unexpired signature", body = ErrorBody),
        (status = 404, description = "No such file or variant, or not rendered (yet)", body = ErrorBody),
    )
)]
async fn get_variant(
    State(state): State<AppState>,
    Path((file_id, variant)): Path<(Uuid, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> AppResult<Response> {
    let query = query.as_deref();
    let (exp, sig) = (query_value(query, "exp"), query_value(query, "sig"));
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let delivered = crate::delivery::variants::deliver(&state, (file_id, &variant), (exp, sig), accept).await?;
    let mut response = match delivered.redirect {
        Some(url) => {
            let mut response = StatusCode::FOUND.into_response();
            let h = response.headers_mut();
            h.insert(header::LOCATION, HeaderValue::from_str(&url).map_err(|e| Error::Internal(e.into()))?);
            if let Ok(v) = HeaderValue::from_str(&delivered.cache_control) {
                h.insert(header::CACHE_CONTROL, v);
            }
            response
        }
        None => serve(state.store.as_ref(), &delivered.key, &headers, &delivered.cache_control).await?,
    };
    if delivered.varies_by_accept {
        response.headers_mut().append(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// A stored object (filesystem backend only; on S3 the bucket serves these URLs): anyone's for a
/// public project, only with a valid `exp`/`sig` for a private one.
#[utoipa::path(
    get, path = "/blobs/{key}", tag = "files", security(()),
    params(("key" = String, Path, description = "Storage key, e.g. `my-app-0193…/images/thumbnail/0193….webp`"),
           ("exp" = Option<i64>, Query, description = "Private projects: when the signed URL expires (Unix seconds)"),
           ("sig" = Option<String>, Query, description = "Private projects: the URL's signature (base64url HMAC-SHA256)"),
           ("Range" = Option<String>, Header, description = "A single byte range, e.g. `bytes=0-1023`"),
           ("If-None-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range"),
        (status = 304, description = "Not modified"),
        (status = 403, description = "`forbidden`: a private project's blob without a valid, unexpired signature", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 416, description = "Range not satisfiable", body = ErrorBody),
    )
)]
pub async fn get_blob(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> AppResult<Response> {
    let not_found = || Error::NotFound(format!("no blob at {}", super::log::loggable_path(&key)));
    if state.store.backend() != "filesystem" {
        return Err(not_found().into());
    }
    let key = BlobKey::parse(&key).map_err(|_| not_found())?;
    // Registered plugins' components are not public (an admin's plugin may be proprietary).
    if key.as_str().starts_with(crate::plugins::registry::PLUGIN_PREFIX) {
        return Err(not_found().into());
    }
    let query = query.as_deref();
    let (exp, sig) = (query_value(query, "exp"), query_value(query, "sig"));
    let cache_control = crate::delivery::blob_access(&state, &key, exp, sig).await?;
    serve(state.store.as_ref(), &key, &headers, &cache_control).await
}

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let weakless = |s: &str| s.trim().trim_start_matches("W/").to_owned();
    if_none_match.split(',').any(|candidate| candidate.trim() == "*" || weakless(candidate) == weakless(etag))
}

/// Answers with the object under `key`, honouring `If-None-Match` and `Range`.
pub async fn serve(
    store: &dyn BlobStore,
    key: &BlobKey,
    request: &HeaderMap,
    cache_control: &str,
) -> AppResult<Response> {
    let not_found = |e: StorageError| match e {
        StorageError::NotFound(_) => Error::NotFound(format!("no blob at {key}")),
        other => other.into(),
    };
    let if_none_match = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if let Some(inm) = if_none_match {
        let meta = store.head(key).await.map_err(not_found)?;
        if let Some(etag) = meta.etag.as_deref().filter(|etag| etag_matches(inm, etag)) {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(cache_control) {
                h.insert(header::CACHE_CONTROL, v);
            }
            if let Ok(v) = HeaderValue::from_str(etag) {
                h.insert(header::ETAG, v);
            }
            return Ok(response);
        }
    }
    let range = request.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(ByteRange::parse_header);
    let object = store.get(key, range).await.map_err(not_found)?;

    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    let (content_type, disposition) = crate::storage::served_as(mime_for_key(key.as_str()));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(disposition) = disposition {
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(object.content_length()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // Uploaded files are the public's bytes on our origin: never let a browser run them.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if let Some(etag) = object.meta.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(header::ETAG, etag);
    }
    if let Some(modified) = object.meta.last_modified.and_then(|t| HeaderValue::from_str(&http_date(t)).ok()) {
        h.insert(header::LAST_MODIFIED, modified);
    }
    if let Some((first, last)) = object.range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{}", object.meta.size)) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    let length = object.content_length();
    *response.body_mut() = if length <= crate::storage::fs::WHOLE_READ_MAX {
        // A small object answers from memory as one body of known length: hyper writes headers
        // and bytes together and knows the response is complete without polling a stream again.
        Body::from(whole(object.body, length).await.map_err(not_found)?)
    } else {
        Body::from_stream(object.body)
    };
    Ok(response)
}

/// The `length` bytes of `body` in one buffer (no copy when the store gave one chunk); a body
/// that ends short of, or runs past, `length` is an error, never an answer that belies its
/// `Content-Length`.
async fn whole(mut body: crate::storage::ByteStream, length: u64) -> Result<bytes::Bytes, StorageError> {
    use futures_util::TryStreamExt;
    let first = body.try_next().await.map_err(StorageError::backend)?.unwrap_or_default();
    let all = match body.try_next().await.map_err(StorageError::backend)? {
        None => first,
        Some(second) => {
            let mut buf = bytes::BytesMut::with_capacity(length as usize);
            buf.extend_from_slice(&first);
            buf.extend_from_slice(&second);
            while let Some(chunk) = body.try_next().await.map_err(StorageError::backend)? {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > length {
                    break;
                }
            }
            buf.freeze()
        }
    };
    if all.len() as u64 != length {
        let why = format!("the store gave {} bytes of an object of {length}", all.len());
        return Err(StorageError::backend(anyhow::anyhow!(why)));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_forms() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
