//! Resumable uploads at `/tus/` (TUS 1.0.0; the protocol's logic is [`crate::files::tus`]):
//! `OPTIONS` (capabilities), `POST` (creation, with an optional first chunk), `HEAD` (the offset),
//! `PATCH` (a chunk), `DELETE` (termination). Authorised by `X-API-Key` or `Upload-Token`.
//! Every answer carries `Tus-Resumable`; a request without `Tus-Resumable: 1.0.0` (but OPTIONS)
//! is 412 with `Tus-Version`. Errors have the contract's body.

use axum::body::{Body, BodyDataStream};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures_util::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{API_KEY_HEADER, Path};
use super::log;
use super::upload::IDLE_TIMEOUT;
use crate::AppState;
use crate::auth::ProjectKey;
use crate::error::Error;
use crate::files::service::ChunkSource;
use crate::files::tus::{self, Creation, Credential, Upload};
use crate::http::error::{AppResult, ErrorBody, error_response};

static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
static TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
static TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
static TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
static UPLOAD_FILE_ID: HeaderName = HeaderName::from_static("upload-file-id");
const UPLOAD_TOKEN: &str = "upload-token";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload, endpoint_options))
        .routes(routes!(upload_status, append_chunk, terminate_upload, upload_options))
        // The endpoint without its slash, as some clients are configured (not in the spec twice).
        .route("/tus", post(create_upload).options(endpoint_options))
        .layer(axum::middleware::from_fn(protocol))
        // Streaming: bounded by Upload-Length and the project's quotas, not axum's 2 MB default.
        .layer(DefaultBodyLimit::disable())
}

/// `Tus-Resumable` on every answer; 412 for a tus request of another protocol version (a method
/// tus does not use gets its 405 whatever the header says).
async fn protocol(request: Request, next: Next) -> Response {
    let version = request.headers().get(&TUS_RESUMABLE).and_then(|v| v.to_str().ok());
    // The endpoint takes POST (creation); an upload HEAD, PATCH and DELETE.
    let endpoint = request.uri().path().trim_end_matches('/').ends_with("/tus");
    let spoken = match *request.method() {
        Method::POST => endpoint,
        Method::HEAD | Method::PATCH | Method::DELETE => !endpoint,
        _ => false,
    };
    let mut response = if !spoken || version == Some(tus::VERSION) {
        next.run(request).await
    } else {
        let message = format!("this server speaks tus {}: send Tus-Resumable: {}", tus::VERSION, tus::VERSION);
        let mut refused = error_response(StatusCode::PRECONDITION_FAILED, "precondition_failed", &message);
        refused.headers_mut().insert(TUS_VERSION.clone(), HeaderValue::from_static(tus::VERSION));
        refused
    };
    response.headers_mut().insert(TUS_RESUMABLE.clone(), HeaderValue::from_static(tus::VERSION));
    response
}

/// The credential of a tus request: `X-API-Key`, or else `Upload-Token`.
struct TusCredential(Credential);

impl FromRequestParts<AppState> for TusCredential {
    type Rejection = super::error::AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if parts.headers.contains_key(API_KEY_HEADER) {
            return Ok(TusCredential(Credential::Key(ProjectKey::from_request_parts(parts, state).await?)));
        }
        let Some(token) = parts.headers.get(UPLOAD_TOKEN) else {
            return Err(Error::Unauthorized("send X-API-Key or Upload-Token".into()).into());
        };
        let token = token.to_str().map_err(|_| Error::Unauthorized("malformed Upload-Token header".into()))?;
        // The token is a secret: the log says only how the request was authorised.
        log::note(parts, "credential=upload-token".to_owned());
        Ok(TusCredential(Credential::Token(token.trim().to_owned())))
    }
}

/// The body of a PATCH (or of a creation with upload), chunk by chunk, with the idle timeout.
struct BodySource(BodyDataStream);

#[async_trait::async_trait]
impl ChunkSource for BodySource {
    async fn next_chunk(&mut self) -> crate::error::Result<Option<Bytes>> {
        loop {
            match tokio::time::timeout(IDLE_TIMEOUT, self.0.next()).await {
                Err(_) => return Err(Error::Stalled(format!("the body stalled for {} s", IDLE_TIMEOUT.as_secs()))),
                Ok(Some(Err(e))) => return Err(Error::Malformed(format!("the body was cut short: {e}"))),
                Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
                Ok(Some(Ok(chunk))) => return Ok(Some(chunk)),
                Ok(None) => return Ok(None),
            }
        }
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> AppResult<Option<&'h str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => Ok(Some(v.to_str().map_err(|_| Error::validation(name.as_str(), "not ASCII"))?.trim())),
    }
}

/// A non-negative integer header (`Upload-Length`, `Upload-Offset`), required.
fn number(headers: &HeaderMap, name: &HeaderName) -> AppResult<i64> {
    let raw = text(headers, name)?.ok_or_else(|| Error::validation(name.as_str(), "required"))?;
    let n: i64 = raw.parse().map_err(|_| Error::validation(name.as_str(), "must be a non-negative integer"))?;
    if n < 0 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::validation(name.as_str(), "must be a non-negative integer").into());
    }
    Ok(n)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_offset_stream(headers: &HeaderMap) -> bool {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    value.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(OFFSET_STREAM)
}

fn put(headers: &mut HeaderMap, name: &HeaderName, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(name.clone(), v);
    }
}

/// The headers every answer about an upload carries.
fn describe(headers: &mut HeaderMap, upload: &Upload) {
    put(headers, &UPLOAD_OFFSET, upload.upload_offset);
    match upload.file_id {
        Some(file_id) => put(headers, &UPLOAD_FILE_ID, file_id),
        // An IMF-fixdate (RFC 9110), as the expiration extension says.
        None => put(headers, &UPLOAD_EXPIRES, upload.expires_at.format("%a, %d %b %Y %H:%M:%S GMT")),
    }
}

/// Capabilities. `Tus-Max-Size` is given when the request's credentials name a project with a
/// `max_file_bytes`.
#[utoipa::path(
    options, path = "/tus/", tag = "upload", security(()),
    params(
        ("X-API-Key" = Option<String>, Header, description = "A project key (optional: for `Tus-Max-Size`)"),
    ),
    responses((status = 204, description = "Capabilities", headers(
        ("Tus-Resumable" = String, description = "`1.0.0`"),
        ("Tus-Version" = String, description = "`1.0.0`"),
        ("Tus-Extension" = String, description = "`creation,creation-with-upload,termination,expiration`"),
        ("Tus-Max-Size" = i64, description = "The project's `max_file_bytes`, when the request names a project"),
    )))
)]
async fn endpoint_options(State(state): State<AppState>, parts: Parts) -> Response {
    capabilities(&state, parts).await
}

async fn capabilities(state: &AppState, mut parts: Parts) -> Response {
    let named = parts.headers.contains_key(API_KEY_HEADER) || parts.headers.contains_key(UPLOAD_TOKEN);
    let credential = match named {
        true => TusCredential::from_request_parts(&mut parts, state).await.ok().map(|c| c.0),
        false => None,
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(TUS_VERSION.clone(), HeaderValue::from_static(tus::VERSION));
    h.insert(TUS_EXTENSION.clone(), HeaderValue::from_static(tus::EXTENSIONS));
    if let Some(max) = tus::max_size(state, credential.as_ref()).await {
        put(h, &TUS_MAX_SIZE, max);
    }
    response
}

/// Capabilities, as for the endpoint.
#[utoipa::path(
    options, path = "/tus/{id}", tag = "upload", security(()),
    // Any id: a browser's preflight is answered before the upload is looked up.
    params(("id" = String, Path, description = "The upload")),
    responses((status = 204, description = "Capabilities, as `OPTIONS /tus/`"))
)]
async fn upload_options(State(state): State<AppState>, parts: Parts) -> Response {
    capabilities(&state, parts).await
}

/// Creates an upload (`creation`), optionally with its first chunk as the body
/// (`creation-with-upload`, `Content-Type: application/offset+octet-stream`). `Upload-Metadata`
/// keys used: `filename`, `kind` (`file`, `image` or `any`; an upload token's kind bounds it).
/// An `Upload-Token` is redeemed by this request, and authorises this upload only.
#[utoipa::path(
    post, path = "/tus/", tag = "upload", security(("api_key" = []), ("upload_token" = [])),
    params(
        ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "`1.0.0`"),
        ("Upload-Length" = i64, Header, minimum = 0, description = "The upload's size in bytes (`Upload-Defer-Length` is not supported)"),
        ("Upload-Metadata" = Option<String>, Header, description = "`filename <base64>,kind <base64>`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "Optional: the first chunk"),
    responses(
        (status = 201, description = "Created", headers(
            ("Location" = String, description = "`{PUBLIC_BASE_URL}/tus/{id}`"),
            ("Upload-Offset" = i64, description = "Bytes stored (with a first chunk)"),
            ("Upload-Expires" = String, description = "When the unfinished upload expires (24 h)"),
            ("Upload-File-Id" = Uuid, description = "The File it became, when the first chunk finished it"),
        )),
        (status = 400, description = "A missing or malformed header, `Upload-Defer-Length`", body = ErrorBody),
        (status = 401, description = "No credential, or the token is unknown, used or expired", body = ErrorBody),
        (status = 409, description = "`quota_exceeded`", body = ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0`", body = ErrorBody),
        (status = 413, description = "`Upload-Length` over the project's `max_file_bytes` or the token's `max_bytes`", body = ErrorBody),
        (status = 415, description = "A body that is not `application/offset+octet-stream`", body = ErrorBody),
    )
)]
async fn create_upload(
    State(state): State<AppState>,
    TusCredential(credential): TusCredential,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    if headers.contains_key(&UPLOAD_DEFER_LENGTH) {
        return Err(Error::validation("Upload-Defer-Length", "not supported: send Upload-Length").into());
    }
    let length = number(&headers, &UPLOAD_LENGTH)?;
    let with_body = content_length(&headers).map_or(headers.contains_key(header::TRANSFER_ENCODING), |n| n > 0);
    if with_body && !is_offset_stream(&headers) {
        return Err(Error::UnsupportedMediaType(format!("a first chunk is sent as {OFFSET_STREAM}")).into());
    }
    let metadata = text(&headers, &UPLOAD_METADATA)?.map(str::to_owned);
    let mut upload = tus::create(&state, &credential, Creation { length, metadata }).await?;
    if with_body && upload.file_id.is_none() {
        let source = Box::new(BodySource(body.into_data_stream()));
        upload = tus::append(&state, &credential, upload.id, 0, content_length(&headers), source).await?;
    }
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    put(h, &header::LOCATION, format!("{}/tus/{}", state.config.public_base_url, upload.id));
    describe(h, &upload);
    Ok(response)
}

/// The upload's offset (`Upload-Offset`) and length; `Upload-File-Id` once finished.
#[utoipa::path(
    head, path = "/tus/{id}", tag = "upload", security(("api_key" = []), ("upload_token" = [])),
    params(
        ("id" = Uuid, Path, description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "`1.0.0`"),
    ),
    responses(
        (status = 200, description = "The upload's state", headers(
            ("Upload-Offset" = i64), ("Upload-Length" = i64),
            ("Upload-Metadata" = String, description = "As sent at creation"),
            ("Upload-Expires" = String, description = "While unfinished"),
            ("Upload-File-Id" = Uuid, description = "The File it became, once finished"),
            ("Cache-Control" = String, description = "`no-store`"),
        )),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, or not the caller's", body = ErrorBody),
        (status = 410, description = "Expired unfinished", body = ErrorBody),
        (status = 412, body = ErrorBody),
    )
)]
async fn upload_status(
    State(state): State<AppState>,
    TusCredential(credential): TusCredential,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let upload = tus::status(&state, &credential, id).await?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    describe(h, &upload);
    put(h, &UPLOAD_LENGTH, upload.length);
    if let Some(metadata) = &upload.metadata {
        put(h, &UPLOAD_METADATA, metadata);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Appends a chunk at `Upload-Offset`. A body cut off keeps what arrived (ask HEAD, resume).
/// The chunk that reaches the length turns the upload into a File (sniffed, within the quotas,
/// an image's variants queued) and the answer names it in `Upload-File-Id`.
#[utoipa::path(
    patch, path = "/tus/{id}", tag = "upload", security(("api_key" = []), ("upload_token" = [])),
    params(
        ("id" = Uuid, Path, description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "`1.0.0`"),
        ("Upload-Offset" = i64, Header, minimum = 0, description = "Where this chunk starts: the upload's offset"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored", headers(
            ("Upload-Offset" = i64, description = "The new offset"),
            ("Upload-Expires" = String, description = "While unfinished"),
            ("Upload-File-Id" = Uuid, description = "The File it became, once finished"),
        )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, or not the caller's", body = ErrorBody),
        (status = 409, description = "`Upload-Offset` is not the upload's offset (or, finishing: `quota_exceeded`)", body = ErrorBody),
        (status = 410, description = "Expired", body = ErrorBody),
        (status = 412, body = ErrorBody),
        (status = 413, description = "Past `Upload-Length`", body = ErrorBody),
        (status = 415, description = "Not `application/offset+octet-stream` (or, finishing: not of the upload's kind)", body = ErrorBody),
    )
)]
async fn append_chunk(
    State(state): State<AppState>,
    TusCredential(credential): TusCredential,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    if !is_offset_stream(&headers) {
        return Err(Error::UnsupportedMediaType(format!("a chunk is sent as {OFFSET_STREAM}")).into());
    }
    let offset = number(&headers, &UPLOAD_OFFSET)?;
    let source = Box::new(BodySource(body.into_data_stream()));
    let upload = tus::append(&state, &credential, id, offset, content_length(&headers), source).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    describe(response.headers_mut(), &upload);
    Ok(response)
}

/// Terminates the upload: its stored chunks are deleted (a File it became stays).
#[utoipa::path(
    delete, path = "/tus/{id}", tag = "upload", security(("api_key" = []), ("upload_token" = [])),
    params(
        ("id" = Uuid, Path, description = "The upload"),
        ("Tus-Resumable" = String, Header, pattern = r"^1\.0\.0$", description = "`1.0.0`"),
    ),
    responses(
        (status = 204, description = "Terminated"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown, or not the caller's", body = ErrorBody),
        (status = 412, body = ErrorBody),
    )
)]
async fn terminate_upload(
    State(state): State<AppState>,
    TusCredential(credential): TusCredential,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    tus::terminate(&state, &credential, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
