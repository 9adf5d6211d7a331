//! The extractors. `Path` and `Query` with the contract's errors: a malformed id or query string
//! is a 400 whose message says what was wrong, never axum's plain-text rejection. [`ClientIp`]:
//! who the client is, believing forwarding headers only from `TRUSTED_PROXIES`.
//!
//! Who calls: [`CurrentUser`] from `Authorization: Bearer <JWT>`, the role guards [`RequireSu`]
//! and [`RequireAdmin`], [`ProjectKey`] from `X-API-Key`, [`Caller`] from either. A missing or
//! broken credential is 401, never "anonymous"; a valid token with too small a role is 403. The
//! checks themselves are `auth::caller`'s; these read the headers and note the caller in the
//! request log.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, rejection::PathRejection, rejection::QueryRejection};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::caller;
pub use crate::auth::{Caller, CurrentUser, ProjectKey};
use crate::db::users::Role;
use crate::error::Error;
use crate::http::error::AppError;
use crate::http::log;

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
                Err(Error::Malformed(format!("invalid path parameter: {}", e.body_text())).into())
            }
            Err(other) => Err(Error::Malformed(other.body_text()).into()),
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
                Err(Error::Malformed(format!("invalid query string: {}", e.body_text())).into())
            }
            Err(other) => Err(Error::Malformed(other.body_text()).into()),
        }
    }
}

pub const API_KEY_HEADER: &str = "x-api-key";

/// The token of an `Authorization: Bearer` header, if one is present (malformed ones are errors).
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>, AppError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::Unauthorized("expected Authorization: Bearer <access_token>".into()).into());
    }
    Ok(Some(token.trim()))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer_token(parts)?.ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
        let user = caller::user_of_token(state, token).await?;
        log::note(parts, format!("user={}", user.id));
        Ok(user)
    }
}

/// Only `su`.
#[derive(Debug, Clone, Copy)]
pub struct RequireSu(pub CurrentUser);

impl FromRequestParts<AppState> for RequireSu {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.role != Role::Su {
            return Err(Error::Forbidden("this requires the su role".into()).into());
        }
        Ok(RequireSu(user))
    }
}

/// `su` or `admin`.
#[derive(Debug, Clone, Copy)]
pub struct RequireAdmin(pub CurrentUser);

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if !matches!(user.role, Role::Su | Role::Admin) {
            return Err(Error::Forbidden("this requires the admin or su role".into()).into());
        }
        Ok(RequireAdmin(user))
    }
}

impl FromRequestParts<AppState> for ProjectKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let presented = parts
            .headers
            .get(API_KEY_HEADER)
            .ok_or_else(|| Error::Unauthorized("missing X-API-Key header".into()))?
            .to_str()
            .map_err(|_| Error::Unauthorized("invalid API key".into()))?
            .trim();
        let key = caller::project_of_key(state, presented).await?;
        // The prefix is the key's public half: safe to log, enough to tell keys apart.
        let prefix = crate::auth::api_keys::prefix_of(presented).unwrap_or_default();
        log::note(parts, format!("project={} key={}", key.project_id, prefix));
        Ok(key)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if parts.headers.contains_key(API_KEY_HEADER) {
            return Ok(Caller::Key(ProjectKey::from_request_parts(parts, state).await?));
        }
        if parts.headers.contains_key(AUTHORIZATION) {
            return Ok(Caller::User(CurrentUser::from_request_parts(parts, state).await?));
        }
        Err(Error::Unauthorized("send X-API-Key or Authorization: Bearer".into()).into())
    }
}
