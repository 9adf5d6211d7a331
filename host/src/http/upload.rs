//! `POST /upload/file` and `POST /upload/image`: multipart field `file`, with a project key.
//! The body streams through (no size limit here: the project's quotas are the limit).

use std::time::Duration;

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::files::FileView;
use crate::AppState;
use crate::auth::ProjectKey;
use crate::error::Error;
use crate::files::service::{self, ChunkSource, Kind, Wanted};
use crate::http::error::ErrorBody;
use crate::http::error::{AppError, AppResult};

/// A client that sends nothing for this long is cut off (slow-body attacks hold a connection
/// and a temp file open otherwise).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_file))
        .routes(routes!(upload_image))
        // Streaming uploads are bounded by the project's quotas, not by axum's 2 MB default.
        .layer(DefaultBodyLimit::disable())
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file. Its type is sniffed from the bytes; the client's Content-Type is ignored.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

struct FieldSource<'a> {
    field: Field<'a>,
}

#[async_trait::async_trait]
impl ChunkSource for FieldSource<'_> {
    async fn next_chunk(&mut self) -> crate::error::Result<Option<Bytes>> {
        match tokio::time::timeout(IDLE_TIMEOUT, self.field.chunk()).await {
            Err(_) => Err(Error::Stalled(format!("the upload stalled for {} s", IDLE_TIMEOUT.as_secs()))),
            Ok(Err(e)) => Err(Error::Malformed(format!("the upload was cut short or malformed: {}", e.body_text()))),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }
}

/// An upload refused before its body was read to the end: the rest of the body is still on the
/// wire, so the connection cannot carry another request. Say so, or a client that reuses it
/// sees its next request fail.
pub(crate) fn refused(e: AppError) -> Response {
    let mut response = e.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An upload to `project_id` of what `wanted` takes: the answer, or the refusal (see [`refused`]).
async fn receive(
    state: AppState,
    project_id: Uuid,
    wanted: Wanted,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match open(headers, multipart) {
        Ok(multipart) => receive_opened(state, project_id, wanted, multipart).await,
        Err(e) => refused(e),
    }
}

/// [`receive`] of a body [`open`] took already.
pub(crate) async fn receive_opened(
    state: AppState,
    project_id: Uuid,
    wanted: Wanted,
    mut multipart: Multipart,
) -> Response {
    let answer = receive_inner(&state, project_id, &wanted, &mut multipart).await;
    answer_or_refuse(&mut multipart, answer).await
}

/// The multipart body of an upload handler, or why not: 415 when the body is not
/// `multipart/form-data`, 400 when it claims to be but cannot be read (no boundary). Answer the
/// error with [`refused`].
pub(crate) fn open(headers: &HeaderMap, multipart: Result<Multipart, MultipartRejection>) -> AppResult<Multipart> {
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(
            Error::UnsupportedMediaType("expected a multipart/form-data body with a `file` field".into()).into()
        );
    }
    Ok(multipart.map_err(|e| Error::Malformed(format!("malformed multipart body: {}", e.body_text())))?)
}

/// The answer of a multipart handler; a refusal reads on a little first (see [`drain`]) and
/// closes the connection (see [`refused`]).
pub(crate) async fn answer_or_refuse(multipart: &mut Multipart, answer: AppResult<impl IntoResponse>) -> Response {
    match answer {
        Ok(answer) => answer.into_response(),
        Err(e) => {
            drain(multipart).await;
            refused(e)
        }
    }
}

/// How much of a refused upload is still read (and thrown away) before answering.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads (and drops) what is left of a refused upload, within a budget. A client that is still
/// sending when the server answers and closes gets a reset and may never see the answer; reading
/// on a little (as HTTP servers' lingering close does) lets typical clients see their 413/409.
pub(crate) async fn drain(multipart: &mut Multipart) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut budget = DRAIN_BYTES;
    while let Ok(Ok(Some(mut field))) = tokio::time::timeout_at(deadline, multipart.next_field()).await {
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, field.chunk()).await {
            budget = match budget.checked_sub(chunk.len()) {
                Some(left) => left,
                None => return,
            };
        }
    }
}

async fn receive_inner(
    state: &AppState,
    project_id: Uuid,
    wanted: &Wanted,
    multipart: &mut Multipart,
) -> AppResult<(StatusCode, Json<FileView>)> {
    loop {
        let Some(field) = next_part(multipart.next_field()).await? else {
            return Err(Error::validation("file", "the multipart field `file` is required").into());
        };
        if field.name() != Some("file") {
            continue; // other fields are ignored (and skipped unread)
        }
        let filename = field.file_name().map(str::to_owned);
        let mut source = FieldSource { field };
        // One look-up for both; the links first: a failure after the upload would answer an
        // error for a stored file.
        let project = service::uploading_to(state, project_id).await?;
        let links = crate::delivery::Links::of(state, &project);
        let stored = service::upload(state, &project, wanted, filename.as_deref(), &mut source).await?;
        return Ok((StatusCode::CREATED, Json(FileView::new(stored, &links).await?)));
    }
}

/// A multipart read (the next field, or a field's next chunk) with the idle timeout; its errors
/// as 408 and 400.
pub(crate) async fn next_part<T>(
    read: impl Future<Output = Result<Option<T>, axum::extract::multipart::MultipartError>>,
) -> AppResult<Option<T>> {
    let read = tokio::time::timeout(IDLE_TIMEOUT, read)
        .await
        .map_err(|_| Error::Stalled(format!("the upload stalled for {} s", IDLE_TIMEOUT.as_secs())))?;
    Ok(read.map_err(|e| Error::Malformed(format!("malformed multipart body: {}", e.body_text())))?)
}

/// Upload any file.
#[utoipa::path(
    post, path = "/upload/file", tag = "upload", security(("api_key" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "No `file` field, or a malformed or cut-off body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "`quota_exceeded`: the project's max_total_bytes or max_files", body = ErrorBody),
        (status = 413, description = "Over the project's max_file_bytes", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
    )
)]
async fn upload_file(
    State(state): State<AppState>,
    key: ProjectKey,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    receive(state, key.project_id, Wanted::kind(Kind::File), &headers, multipart).await
}

/// Upload an image (JPEG, PNG, WebP, GIF, AVIF, TIFF, HEIC/HEIF, JPEG XL). Its variants are
/// rendered in the background; the answer lists each with its future URL and `status: pending`.
#[utoipa::path(
    post, path = "/upload/image", tag = "upload", security(("api_key" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; variants pending", body = FileView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "`quota_exceeded`", body = ErrorBody),
        (status = 413, description = "Over the project's max_file_bytes", body = ErrorBody),
        (status = 415, description = "Not a decodable image of a supported type, or over the pixel limit", body = ErrorBody),
    )
)]
async fn upload_image(
    State(state): State<AppState>,
    key: ProjectKey,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    receive(state, key.project_id, Wanted::kind(Kind::Image), &headers, multipart).await
}
