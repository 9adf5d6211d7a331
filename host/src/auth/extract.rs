//! Extractors: [`CurrentUser`] from `Authorization: Bearer <JWT>`, and the role guards
//! [`RequireSu`] and [`RequireAdmin`]. A missing or broken token is 401, never "anonymous"; a
//! valid token with too small a role is 403. [`ProjectKey`] from `X-API-Key`: 401 for a key that
//! is unknown, disabled, deleted, or whose project is soft-deleted.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::tokens::TokenError;
use crate::db::users::Role;
use crate::http::log;
use crate::{AppError, AppState};

/// The caller: a valid access token whose user still exists with the role the token names. The
/// user is looked up on every request (one indexed read), so deleting a user or changing a role
/// takes effect at once rather than when the 15-minute token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_su(&self) -> bool {
        self.role == Role::Su
    }
}

/// The token of an `Authorization: Bearer` header, if one is present (malformed ones are errors).
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>, AppError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| AppError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized("expected Authorization: Bearer <access_token>".into()));
    }
    Ok(Some(token.trim()))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer_token(parts)?.ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
        let claims = state.tokens.verify(token).map_err(|e| match e {
            TokenError::Expired => AppError::Unauthorized("the access token has expired".into()),
            TokenError::Invalid => AppError::Unauthorized("invalid access token".into()),
        })?;
        let user = crate::db::users::find_by_id(&state.db, claims.sub).await?;
        match user {
            Some(user) if user.role() == claims.role => {}
            Some(_) => return Err(AppError::Unauthorized("the user's role has changed; log in again".into())),
            None => return Err(AppError::Unauthorized("the user no longer exists".into())),
        }
        log::note(parts, format!("user={}", claims.sub));
        Ok(CurrentUser { id: claims.sub, role: claims.role })
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
            return Err(AppError::Forbidden("this requires the su role".into()));
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
            return Err(AppError::Forbidden("this requires the admin or su role".into()));
        }
        Ok(RequireAdmin(user))
    }
}

/// The project an `X-API-Key` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectKey {
    pub key_id: Uuid,
    pub project_id: Uuid,
}

pub const API_KEY_HEADER: &str = "x-api-key";

impl FromRequestParts<AppState> for ProjectKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let invalid = || AppError::Unauthorized("invalid API key".into());
        let presented = parts
            .headers
            .get(API_KEY_HEADER)
            .ok_or_else(|| AppError::Unauthorized("missing X-API-Key header".into()))?
            .to_str()
            .map_err(|_| invalid())?
            .trim();
        let prefix = super::api_keys::prefix_of(presented).ok_or_else(invalid)?;
        let credential = crate::db::api_keys::find_live_by_prefix(&state.db, prefix).await?.ok_or_else(invalid)?;
        if !credential.enabled || !super::api_keys::matches(presented, &credential.key_hash) {
            return Err(invalid());
        }
        crate::db::api_keys::touch(&state.db, credential.id, chrono::Utc::now()).await?;
        log::note(parts, format!("project={} key={}", credential.project_id, prefix));
        Ok(ProjectKey { key_id: credential.id, project_id: credential.project_id })
    }
}

/// Who calls a route that accepts either a project key or a user token (the files routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Key(ProjectKey),
    User(CurrentUser),
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
        Err(AppError::Unauthorized("send X-API-Key or Authorization: Bearer".into()))
    }
}
