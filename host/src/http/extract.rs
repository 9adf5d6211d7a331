//! `Path` and `Query` with the contract's errors: a malformed id or query string is a 400 whose
//! message says what was wrong, never axum's plain-text rejection.

use axum::extract::{FromRequestParts, rejection::PathRejection, rejection::QueryRejection};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppError;

#[derive(Debug, Clone, Copy)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(AppError::BadRequest(format!("invalid path parameter: {}", e.body_text())))
            }
            Err(other) => Err(AppError::BadRequest(other.body_text())),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(AppError::BadRequest(format!("invalid query string: {}", e.body_text())))
            }
            Err(other) => Err(AppError::BadRequest(other.body_text())),
        }
    }
}
