//! Direct uploads (see [`crate::files::direct`]): `POST /upload-tokens` with a project key, and
//! `POST /upload/direct/{token}` with the token alone (for browsers).

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Json;
use super::extract::Path;
use super::upload::{UploadForm, open, receive_opened, refused};
use crate::AppState;
use crate::auth::ProjectKey;
use crate::files::direct::{self, TokenRequest};
use crate::http::error::{AppError, AppResult, ErrorBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload_token))
        // Streaming, bounded by the token and the project's quotas (as `/upload/*`).
        .merge(OpenApiRouter::new().routes(routes!(upload_direct)).layer(DefaultBodyLimit::disable()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadTokenRequest {
    /// `file` (stored as `/upload/file` stores), `image` (as `/upload/image`: an image only, its
    /// variants rendered) or `any` (an image when the bytes are one, a file otherwise).
    #[schema(example = "image", pattern = "^(file|image|any)$")]
    pub kind: String,
    /// The largest upload the token takes (the project's `max_file_bytes` applies too).
    #[schema(example = 10485760, minimum = 1)]
    pub max_bytes: i64,
    /// Only these types, as sniffed from the bytes (e.g. `["image/jpeg", "image/png"]`).
    #[schema(min_items = 1, max_items = 32)]
    pub content_types: Option<Vec<String>>,
    /// Seconds until the token expires, 1..=3600 (default 3600).
    #[schema(example = 600, minimum = 1, maximum = 3600)]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTokenView {
    /// Shown once; works for one upload.
    #[schema(example = "mbku_3q2-…")]
    pub token: String,
    /// Where the browser posts the multipart `file`, with no other credentials.
    pub upload_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A one-time token for one upload to the key's project, for a browser to upload with directly.
#[utoipa::path(
    post, path = "/upload-tokens", tag = "upload", security(("api_key" = [])),
    request_body = UploadTokenRequest,
    responses(
        (status = 201, body = UploadTokenView),
        (status = 400, description = "`validation_failed`, naming the field", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
async fn create_upload_token(
    State(state): State<AppState>,
    key: ProjectKey,
    Json(body): Json<UploadTokenRequest>,
) -> AppResult<(StatusCode, Json<UploadTokenView>)> {
    let request = TokenRequest {
        kind: body.kind,
        max_bytes: body.max_bytes,
        content_types: body.content_types,
        expires_in: body.expires_in,
    };
    let issued = direct::issue(&state, key, request).await?;
    let upload_url = format!("{}/upload/direct/{}", state.config.public_base_url, issued.token);
    Ok((StatusCode::CREATED, Json(UploadTokenView { token: issued.token, upload_url, expires_at: issued.expires_at })))
}

/// Upload with a one-time token (no other credentials): as `/upload/file` or `/upload/image`, as
/// the token's `kind` says, within its `max_bytes` and `content_types`. The token is used up by
/// this request whatever its outcome.
#[utoipa::path(
    post, path = "/upload/direct/{token}", tag = "upload", security(()),
    params(("token" = String, Path, description = "The token from `POST /upload-tokens`")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored (an image's variants pending)", body = super::files::FileView),
        (status = 400, body = ErrorBody),
        (status = 401, description = "The token is unknown, used or expired", body = ErrorBody),
        (status = 409, description = "`quota_exceeded`", body = ErrorBody),
        (status = 413, description = "Over the token's max_bytes or the project's max_file_bytes", body = ErrorBody),
        (status = 415, description = "Not of the token's kind or content types, or not multipart/form-data", body = ErrorBody),
    )
)]
async fn upload_direct(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    // The body's framing is checked before the token is used up: a wrong Content-Type costs no token.
    let multipart = match open(&headers, multipart) {
        Ok(multipart) => multipart,
        Err(e) => return refused(e),
    };
    match direct::redeem(&state, &token).await {
        Ok((project_id, wanted)) => receive_opened(state, project_id, wanted, multipart).await,
        Err(e) => refused(AppError(e)),
    }
}
