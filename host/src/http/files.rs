//! `/files`: list, fetch, download and delete files (the project's key, its owner, or su).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::{Path, Query};
use super::pagination::{Paginated, Pagination};
use crate::AppState;
use crate::auth::Caller;
use crate::delivery::Links;
use crate::error::Error;
use crate::files::access;
use crate::files::service::StoredFile;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;

/// How long a presigned download URL works.
pub const PRESIGN_TTL: Duration = Duration::from_secs(300);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_files)).routes(routes!(get_file, delete_file)).routes(routes!(get_content))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    /// Public URL; valid once `status` is `ready`.
    pub url: String,
    /// `pending`, `ready` or `failed`.
    #[schema(example = "pending")]
    pub status: String,
    #[schema(example = "webp")]
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Why rendering failed (`status: failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What rendered it, once rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<MadeBy>,
}

/// The plugin that rendered a variant: its name, version and the digest of what ran (`native`
/// for the builtin rendered natively).
#[derive(Debug, Serialize, ToSchema)]
pub struct MadeBy {
    #[schema(example = "mbk-standard")]
    pub name: String,
    #[schema(example = "0.1.0")]
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    pub id: Uuid,
    pub project_id: Uuid,
    /// `file` or `image`.
    #[schema(example = "image")]
    pub kind: String,
    /// The client's file name, for display only.
    #[schema(example = "holiday.jpg")]
    pub filename: String,
    /// Sniffed from the bytes.
    #[schema(example = "image/jpeg")]
    pub mime_type: String,
    pub size: i64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// `processing` (images with variants still pending), `ready`, or `failed`.
    #[schema(example = "processing")]
    pub status: String,
    /// Public URL of the original.
    pub url: String,
    /// Upright width (EXIF orientation applied), images only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    pub variants: BTreeMap<String, VariantView>,
    /// The `process_image` job (upload answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl FileView {
    /// The answer for `stored`, its URLs as `links` makes them (signed for a private project).
    pub async fn new(stored: StoredFile, links: &Links<'_>) -> crate::error::Result<FileView> {
        let f = stored.file;
        let mut variants = BTreeMap::new();
        for v in stored.variants {
            let view = VariantView {
                url: links.url(&v.storage_key).await?,
                status: v.status.to_string(),
                format: v.format,
                width: v.width,
                height: v.height,
                size: v.size,
                error: v.error,
                plugin: match (v.plugin_name, v.plugin_version, v.plugin_sha256) {
                    (Some(name), Some(version), Some(sha256)) => Some(MadeBy { name, version, sha256 }),
                    _ => None,
                },
            };
            variants.insert(v.name, view);
        }
        Ok(FileView {
            url: links.url(&f.storage_key).await?,
            id: f.id,
            project_id: f.project_id,
            kind: f.kind,
            filename: f.filename,
            mime_type: f.mime_type,
            size: f.size,
            sha256: f.sha256,
            status: f.status.to_string(),
            width: f.width,
            height: f.height,
            variants,
            job_id: stored.job_id,
            created_at: f.created_at,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// Required with a user token; implied by a project key.
    #[param(value_type = Option<Uuid>)]
    pub project_id: Option<String>,
    /// `file` or `image`.
    pub kind: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

/// A project's files, newest first.
#[utoipa::path(
    get, path = "/files", tag = "files", security(("api_key" = []), ("bearer" = [])), params(FilesQuery),
    responses(
        (status = 200, body = Paginated<FileView>),
        (status = 400, description = "Bad project_id, kind or pagination", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "A project the caller may not see", body = ErrorBody),
    )
)]
async fn list_files(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<FilesQuery>,
) -> AppResult<Json<Paginated<FileView>>> {
    let page = Pagination::parse(q.page.as_deref(), q.per_page.as_deref())?;
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k @ ("file" | "image")) => Some(k),
        Some(other) => return Err(Error::validation("kind", format!("must be file or image, got {other:?}")).into()),
    };
    let project_id = match (q.project_id.as_deref(), caller) {
        (Some(raw), _) => {
            Uuid::parse_str(raw).map_err(|_| Error::validation("project_id", format!("not a UUID: {raw:?}")))?
        }
        (None, Caller::Key(key)) => key.project_id,
        (None, Caller::User(_)) => {
            return Err(Error::validation("project_id", "required when authenticating with a user token").into());
        }
    };
    access::check_project_access(&state, caller, project_id).await?;
    let (items, total) = access::list(&state, project_id, kind, page.limit(), page.offset()).await?;
    let links = Links::of_project(&state, project_id).await?;
    let mut views = Vec::with_capacity(items.len());
    for stored in items {
        views.push(FileView::new(stored, &links).await?);
    }
    Ok(Json(page.wrap(views, total)))
}

/// A file with its variants.
#[utoipa::path(
    get, path = "/files/{id}", tag = "files", security(("api_key" = []), ("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = FileView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_file(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> AppResult<Json<FileView>> {
    let stored = access::get(&state, caller, id).await?;
    let links = Links::of_project(&state, stored.file.project_id).await?;
    Ok(Json(FileView::new(stored, &links).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// A variant's name; absent: the original.
    pub variant: Option<String>,
}

/// The bytes of the original or of a variant. S3: 302 to a presigned URL (5 minutes);
/// filesystem: 200 with the bytes (Range and ETag honoured).
#[utoipa::path(
    get, path = "/files/{id}/content", tag = "files", security(("api_key" = []), ("bearer" = [])),
    params(("id" = Uuid, Path), ContentQuery),
    responses(
        (status = 200, description = "The bytes (filesystem backend)"),
        (status = 302, description = "Redirect to a presigned URL (S3 backend)"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown file or variant", body = ErrorBody),
        (status = 409, description = "`variant_not_ready`", body = ErrorBody),
    )
)]
async fn get_content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<ContentQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let key = access::content_key(&state, caller, id, q.variant.as_deref()).await?;
    if let Some(url) = state.store.presigned_get(&key, PRESIGN_TTL).await? {
        let mut response = StatusCode::FOUND.into_response();
        let location = HeaderValue::from_str(&url).map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
        response.headers_mut().insert(header::LOCATION, location);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    super::blobs::serve(state.store.as_ref(), &key, &headers, "private, no-cache").await
}

/// Delete a file: the original and every variant, from storage and database.
#[utoipa::path(
    delete, path = "/files/{id}", tag = "files", security(("api_key" = []), ("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "Storage failed; the file is kept so the delete can be retried", body = ErrorBody),
    )
)]
async fn delete_file(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    access::delete(&state, caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
