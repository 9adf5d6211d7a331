//! `Path` and `Query` with the contract's errors: a malformed id or query string is a 400 whose
//! message says what was wrong, never axum's plain-text rejection. [`ClientIp`]: who the client
//! is, believing forwarding headers only from `TRUSTED_PROXIES`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, rejection::PathRejection, rejection::QueryRejection};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::{AppError, AppState};

/// The client's address: the TCP peer, or what a trusted proxy in front says it forwards for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() else {
            return Ok(ClientIp(None));
        };
        let header = state.config.forwarded_header;
        // Every line of the header: a proxy may add a line of its own after the client's.
        let lines: Vec<&str> = parts.headers.get_all(header.name()).iter().filter_map(|v| v.to_str().ok()).collect();
        let value = (!lines.is_empty()).then(|| lines.join(","));
        let ip = crate::net::client_address(peer.ip(), &state.config.trusted_proxies, header, value.as_deref());
        Ok(ClientIp(Some(ip)))
    }
}

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
