//! [`AppError`]: the one error type of the HTTP layer, written as the contract's error body
//! `{"error": {"code": "...", "message": "..."}}`.
//!
//! 5xx causes never reach the client: the response carries a generic message and the cause rides
//! along in a response extension ([`ErrorCause`]) so the request log writes it once, on the line of
//! the request that failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `bad_request`: the request cannot be understood (malformed JSON, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// 400 `validation_failed`: understood but a field is wrong; the message names the field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409 with a specific code (`conflict`, `quota_exceeded`, `variant_not_ready`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 408: the client stopped sending (a stalled upload).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    RangeNotSatisfiable { message: String, size: Option<u64> },
    #[error("{0}")]
    InvalidPlugin(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 503: a dependency (database, storage) does not answer, or every plugin sandbox is busy.
    /// The cause is logged, not shown.
    #[error("{message}")]
    Unavailable { message: String, cause: Option<String> },
    /// 500: a bug or an unexpected failure. The cause is logged, not shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} {id} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict { code: "conflict", message: message.into() }
    }

    pub fn unavailable(message: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable { message: message.into(), cause: Some(cause.to_string()) }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::InvalidPlugin(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation { .. } => "validation_failed",
            Self::Conflict { code, .. } => code,
            Self::InvalidPlugin(_) => "invalid_plugin",
            other => code_for_status(other.status()),
        }
    }
}

/// The contract's code for a status, used for errors that did not start as an [`AppError`]
/// (axum's own rejections, layers) so that every error body looks the same.
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        422 => "invalid_plugin",
        429 => "rate_limited",
        503 => "unavailable",
        504 => "timeout",
        other if (400..500).contains(&other) => "bad_request",
        _ => "internal",
    }
}

/// The error body of the contract.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `validation_failed`, `quota_exceeded`.
    #[schema(example = "not_found")]
    pub code: String,
    /// Human-readable explanation; for validation errors it names the field.
    #[schema(example = "file 0193a3c2-7c1e-7b5e-9a43-5f0c2e0d1a11 not found")]
    pub message: String,
}

/// The cause of a 5xx, attached to the response for the request log (never serialised).
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.to_owned() } };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, cause) = match &self {
            Self::Internal(e) => ("internal server error".to_owned(), Some(format!("{e:#}"))),
            Self::Unavailable { message, cause } => (message.clone(), cause.clone()),
            other => (other.to_string(), None),
        };
        let mut response = error_response(status, self.code(), &message);
        match &self {
            Self::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // Every 503 of ours is a moment of overload or an outage worth retrying.
            Self::Unavailable { .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_SECS));
            }
            Self::RangeNotSatisfiable { size: Some(size), .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

/// `Retry-After` of a 503.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_overloaded(&e) {
            return AppError::unavailable("the database is busy; retry in a moment", e);
        }
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                AppError::unavailable("the database is unavailable", e)
            }
            other => AppError::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<crate::storage::StorageError> for AppError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as S;
        match e {
            S::NotFound(key) => AppError::NotFound(format!("object {key} not found")),
            S::InvalidKey(message) => AppError::validation("key", message),
            S::RangeNotSatisfiable { size } => {
                AppError::RangeNotSatisfiable { message: "the requested range is not satisfiable".into(), size }
            }
            S::Backend(cause) => AppError::unavailable("the blob store is unavailable", format!("{cause:#}")),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_contract() {
        assert_eq!(AppError::BadRequest("x".into()).code(), "bad_request");
        assert_eq!(AppError::validation("settings.variants[0].quality", "1..=100").code(), "validation_failed");
        assert_eq!(AppError::Unauthorized("x".into()).code(), "unauthorized");
        assert_eq!(AppError::Forbidden("x".into()).code(), "forbidden");
        assert_eq!(AppError::not_found("file", 1).code(), "not_found");
        assert_eq!(AppError::conflict("x").code(), "conflict");
        assert_eq!(AppError::Conflict { code: "quota_exceeded", message: "x".into() }.code(), "quota_exceeded");
        assert_eq!(AppError::PayloadTooLarge("x".into()).code(), "payload_too_large");
        assert_eq!(AppError::UnsupportedMediaType("x".into()).code(), "unsupported_media_type");
        assert_eq!(AppError::InvalidPlugin("x".into()).code(), "invalid_plugin");
        assert_eq!(AppError::RateLimited { retry_after_secs: 3 }.code(), "rate_limited");
        assert_eq!(AppError::unavailable("x", "y").code(), "unavailable");
        assert_eq!(AppError::Internal(anyhow::anyhow!("boom")).code(), "internal");
    }

    #[tokio::test]
    async fn a_locked_sqlite_database_is_a_503_with_retry_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/locked.db?mode=rwc", dir.path().display());
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("url");
        let options = options.busy_timeout(std::time::Duration::from_millis(50));
        use sqlx::{ConnectOptions, Connection};
        let mut holder = options.connect().await.expect("connect");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut holder).await.expect("create");
        let mut writer = options.connect().await.expect("connect");
        let mut tx = holder.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await.expect("hold the write lock");
        let locked = sqlx::query("INSERT INTO t VALUES (2)").execute(&mut writer).await.expect_err("locked");
        let response = AppError::from(locked).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("2"));
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("\"unavailable\""));
        tx.rollback().await.expect("rollback");
    }

    #[test]
    fn validation_message_names_the_field() {
        let e = AppError::validation("settings.variants[2].quality", "must be 1..=100");
        assert_eq!(e.to_string(), "settings.variants[2].quality: must be 1..=100");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause_from_the_body() {
        let response = AppError::Internal(anyhow::anyhow!("password=hunter2 leaked")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<ErrorCause>().expect("cause kept for the log").0.clone();
        assert!(cause.contains("hunter2"));
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, r#"{"error":{"code":"internal","message":"internal server error"}}"#);
    }
}
