//! `/files`: list, fetch, download and delete files (the project's key, its owner, or su).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
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
pub use crate::files::view::FileView;
use crate::files::{access, focal};
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;
use crate::projects::variant_gravity::FocalPoint;

/// How long a presigned download URL works.
pub const PRESIGN_TTL: Duration = Duration::from_secs(300);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files))
        .routes(routes!(get_file, patch_file, delete_file))
        .routes(routes!(get_content))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilesQuery {
    /// Required with a user token; implied by a project key.
    #[param(value_type = Option<Uuid>)]
    pub project_id: Option<String>,
    /// `file` or `image`.
    #[param(inline, value_type = Option<FileKindFilter>)]
    pub kind: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

/// The values of `?kind=` (documentation only: another value gets the contract's 400).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FileKindFilter {
    File,
    Image,
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
    let project_id = access::project_of(caller, q.project_id.as_deref())?;
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

/// What `PATCH /files/{id}` changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchFile {
    /// The point `gravity: focal` variants are cropped around, or `null` to clear it (they are
    /// then centred). Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<FocalPoint>, required = true)]
    pub focal_point: Option<Option<FocalPoint>>,
}

/// A field that may be `null` but not absent: `Some(None)` for `null`, `None` when missing.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<FocalPoint>>, D::Error> {
    Option::<FocalPoint>::deserialize(d).map(Some)
}

/// Set an image's focal point; its `cover` variants with `gravity: focal` are rendered again
/// around it (the answer's `job_id`), staying ready until then.
#[utoipa::path(
    patch, path = "/files/{id}", tag = "files", security(("api_key" = []), ("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PatchFile,
    responses(
        (status = 200, body = FileView),
        (status = 400, description = "No `focal_point`, a coordinate outside 0..=1, or not an image", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
async fn patch_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchFile>,
) -> AppResult<Json<FileView>> {
    let Some(point) = body.focal_point else {
        return Err(Error::validation("focal_point", "is required (null clears it)").into());
    };
    let stored = focal::set(&state, caller, id, point).await?;
    let links = Links::of_project(&state, stored.file.project_id).await?;
    Ok(Json(FileView::new(stored, &links).await?))
}
