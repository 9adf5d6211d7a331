//! [`AppError`]: the one error type of the HTTP layer, written as the contract's error body
//! `{"error": {"code": "...", "message": "..."}}`. It wraps a domain [`Error`] and is the only
//! place that decides which status and code each domain case gets.
//!
//! 5xx causes never reach the client: the response carries a generic message and the cause rides
//! along in a response extension ([`ErrorCause`]) so the request log writes it once, on the line of
//! the request that failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::error::Error;

/// A domain [`Error`] on its way out as an HTTP answer. Anything that converts into an
/// [`Error`] (a domain error, `sqlx::Error`, a `StorageError`, `anyhow::Error`) converts into
/// this, so handlers use `?` on domain calls.
#[derive(Debug)]
pub struct AppError(pub Error);

impl<E: Into<Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError(e.into())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Error::Malformed(_) | Error::Validation { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::InvalidPlugin(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match &self.0 {
            Error::Malformed(_) => "bad_request",
            Error::Validation { .. } => "validation_failed",
            Error::Conflict { code, .. } => code,
            Error::InvalidPlugin(_) => "invalid_plugin",
            _ => code_for_status(self.status()),
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
        410 => "gone",
        411 => "length_required",
        412 => "precondition_failed",
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
        let (message, cause) = match &self.0 {
            Error::Internal(e) => ("internal server error".to_owned(), Some(format!("{e:#}"))),
            Error::Unavailable { message, cause } => (message.clone(), cause.clone()),
            other => (other.to_string(), None),
        };
        let mut response = error_response(status, self.code(), &message);
        match &self.0 {
            Error::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // Every 503 of ours is a moment of overload or an outage worth retrying.
            Error::Unavailable { .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_SECS));
            }
            Error::RangeNotSatisfiable { size: Some(size) } => {
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

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: Error) -> &'static str {
        AppError(e).code()
    }

    #[test]
    fn codes_follow_the_contract() {
        assert_eq!(code(Error::Malformed("x".into())), "bad_request");
        assert_eq!(code(Error::validation("settings.variants[0].quality", "1..=100")), "validation_failed");
        assert_eq!(code(Error::Unauthorized("x".into())), "unauthorized");
        assert_eq!(code(Error::Forbidden("x".into())), "forbidden");
        assert_eq!(code(Error::not_found("file", 1)), "not_found");
        assert_eq!(code(Error::Gone("x".into())), "gone");
        assert_eq!(code(Error::conflict("x")), "conflict");
        assert_eq!(code(Error::Conflict { code: "quota_exceeded", message: "x".into() }), "quota_exceeded");
        assert_eq!(code(Error::Stalled("x".into())), "request_timeout");
        assert_eq!(code(Error::PayloadTooLarge("x".into())), "payload_too_large");
        assert_eq!(code(Error::UnsupportedMediaType("x".into())), "unsupported_media_type");
        assert_eq!(code(Error::RangeNotSatisfiable { size: None }), "range_not_satisfiable");
        assert_eq!(code(Error::InvalidPlugin("x".into())), "invalid_plugin");
        assert_eq!(code(Error::RateLimited { retry_after_secs: 3 }), "rate_limited");
        assert_eq!(code(Error::unavailable("x", "y")), "unavailable");
        assert_eq!(code(Error::Internal(anyhow::anyhow!("boom"))), "internal");
    }

    #[test]
    fn an_unsatisfiable_range_names_the_size() {
        let response = AppError(Error::RangeNotSatisfiable { size: Some(42) }).into_response();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(response.headers().get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()), Some("bytes */42"));
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
        let e = AppError(Error::validation("settings.variants[2].quality", "must be 1..=100"));
        assert_eq!(e.to_string(), "settings.variants[2].quality: must be 1..=100");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause_from_the_body() {
        let response = AppError(Error::Internal(anyhow::anyhow!("password=hunter2 leaked"))).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<ErrorCause>().expect("cause kept for the log").0.clone();
        assert!(cause.contains("hunter2"));
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text, r#"{"error":{"code":"internal","message":"internal server error"}}"#);
    }
}
