//! Who calls: a [`CurrentUser`] proven by an access token, a [`ProjectKey`] proven by an API key,
//! or either ([`Caller`]). The checks live here as plain functions; `http/extract.rs` reads the
//! headers and calls them. A broken credential is an error (401), never "anonymous".

use uuid::Uuid;

use super::tokens::TokenError;
use crate::AppState;
use crate::db::users::Role;
use crate::error::{Error, Result};

/// The caller: a valid access token whose user still exists with the role the token names.
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

/// The project an API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectKey {
    pub key_id: Uuid,
    pub project_id: Uuid,
}

/// Who calls a route that accepts either a project key or a user token (the files routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Key(ProjectKey),
    User(CurrentUser),
}

/// The user an access token stands for. The user is looked up on every request (one indexed
/// read), so deleting a user or changing a role takes effect at once rather than when the
/// 15-minute token expires.
pub async fn user_of_token(state: &AppState, token: &str) -> Result<CurrentUser> {
    let claims = state.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => Error::Unauthorized("the access token has expired".into()),
        TokenError::Invalid => Error::Unauthorized("invalid access token".into()),
    })?;
    match crate::db::users::find_by_id(&state.db, claims.sub).await? {
        Some(user) if user.role() == claims.role => Ok(CurrentUser { id: claims.sub, role: claims.role }),
        Some(_) => Err(Error::Unauthorized("the user's role has changed; log in again".into())),
        None => Err(Error::Unauthorized("the user no longer exists".into())),
    }
}

/// The project a presented API key opens: unknown, disabled and deleted keys, and keys of a
/// soft-deleted project, are all the same 401 (which one is not told).
pub async fn project_of_key(state: &AppState, presented: &str) -> Result<ProjectKey> {
    let invalid = || Error::Unauthorized("invalid API key".into());
    let prefix = super::api_keys::prefix_of(presented).ok_or_else(invalid)?;
    let credential = crate::db::api_keys::find_live_by_prefix(&state.db, prefix).await?.ok_or_else(invalid)?;
    if !credential.enabled || !super::api_keys::matches(presented, &credential.key_hash) {
        return Err(invalid());
    }
    crate::db::api_keys::touch(&state.db, credential.id, chrono::Utc::now()).await?;
    Ok(ProjectKey { key_id: credential.id, project_id: credential.project_id })
}
