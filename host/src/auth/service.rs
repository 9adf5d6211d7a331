//! The identity flows: log in, rotate, log out, manage users. Handlers call these; these call the
//! repository. Errors are already the contract's.

use std::net::IpAddr;

use chrono::Utc;
use uuid::Uuid;

use super::{password, tokens};
use crate::AppState;
use crate::db::users::{self, NewUser, Role, UserRow};
use crate::db::{Db, is_unique_violation, refresh_tokens};
use crate::error::{Error, Result};

/// Unknown user and wrong password answer alike.
const BAD_CREDENTIALS: &str = "invalid username or password";
const BAD_REFRESH: &str = "invalid refresh token";

/// A fresh access token and refresh token.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// Usernames: 1..=64 of ASCII letters, digits, `.`, `_`, `-`, `@`.
pub fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > 64 {
        return Err("must be 1 to 64 characters long".into());
    }
    if !username.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)) {
        return Err("may contain only letters, digits, '.', '_', '-' and '@'".into());
    }
    Ok(())
}

/// A new pair for `user_id`, and when its refresh token expires (not stored yet).
fn fresh(state: &AppState, user_id: Uuid, role: Role) -> Result<(Tokens, chrono::DateTime<Utc>)> {
    let access_token = state.tokens.issue(user_id, role)?;
    let refresh_token = tokens::new_refresh_token();
    let ttl = chrono::Duration::from_std(state.config.auth.refresh_ttl).map_err(anyhow::Error::new)?;
    let expires_in = state.tokens.access_ttl().as_secs();
    Ok((Tokens { access_token, refresh_token, expires_in }, Utc::now() + ttl))
}

async fn issue(state: &AppState, user_id: Uuid, role: Role, family_id: Uuid) -> Result<Tokens> {
    let (pair, expires_at) = fresh(state, user_id, role)?;
    refresh_tokens::insert(&state.db, user_id, family_id, &tokens::hash_secret(&pair.refresh_token), expires_at)
        .await?;
    Ok(pair)
}

/// A refresh token presented after it was exchanged: revoke its whole login.
async fn reuse_detected(state: &AppState, row: &refresh_tokens::RefreshTokenRow) -> Result<Tokens> {
    let revoked = refresh_tokens::revoke_family(&state.db, row.family_id).await?;
    tracing::warn!(user = %row.user_id, family = %row.family_id, revoked, "refresh token reuse detected; login revoked");
    Err(Error::Unauthorized(BAD_REFRESH.into()))
}

pub async fn login(state: &AppState, username: &str, password: &str, client: Option<IpAddr>) -> Result<Tokens> {
    // A name no user can have (every username passed `check_username`), or a password longer
    // than any: refused before anything is counted, looked up or hashed (same answer as a wrong
    // password; no user is enumerated, since none can exist). This also bounds what the
    // throttle keeps per attempt.
    if check_username(username).is_err() || password.len() > password::MAX_PASSWORD_BYTES {
        return Err(Error::Unauthorized(BAD_CREDENTIALS.into()));
    }
    // Counted before hashing: parallel attempts cannot all pass the check at once.
    let attempt = match state.throttle.begin(username, client) {
        Ok(attempt) => attempt,
        Err(retry_after_secs) => return Err(Error::RateLimited { retry_after_secs }),
    };
    let checked = async {
        let user = users::find_by_username(&state.db, username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        match password::verify(password.to_owned(), hash).await {
            Ok(verified) => Ok(user.filter(|_| verified)),
            Err(busy) => Err(Error::unavailable("too many logins at once; retry in a moment", busy)),
        }
    };
    let user = match checked.await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(Error::Unauthorized(BAD_CREDENTIALS.into())),
        // Nothing was checked (the host was busy, the database did not answer): not a failure.
        Err(e) => {
            state.throttle.withdraw(username, client, attempt);
            return Err(e);
        }
    };
    state.throttle.succeeded(username, client, attempt);
    // Opportunistic housekeeping: expired tokens are useless, keep the table small.
    refresh_tokens::purge_expired(&state.db, Utc::now()).await?;
    issue(state, user.id, user.role(), Uuid::now_v7()).await
}

/// Rotates a refresh token. A revoked token presented again means it leaked (or a client is
/// confused): the whole family is revoked, and the legitimate holder must log in again.
///
/// The exchange is one transaction that revokes the presented token only if it is still active
/// and inserts its successor: a token is exchanged at most once, and the successor exists as
/// soon as the revocation is visible, so the reuse detection of a request that lost the race
/// revokes it too.
pub async fn refresh(state: &AppState, presented: &str) -> Result<Tokens> {
    let row = refresh_tokens::find_by_hash(&state.db, &tokens::hash_secret(presented))
        .await?
        .ok_or_else(|| Error::Unauthorized(BAD_REFRESH.into()))?;
    if row.revoked_at.is_some() {
        return reuse_detected(state, &row).await;
    }
    if row.expires_at <= Utc::now() {
        refresh_tokens::purge_expired(&state.db, Utc::now()).await?;
        return Err(Error::Unauthorized("the refresh token has expired".into()));
    }
    let user =
        users::find_by_id(&state.db, row.user_id).await?.ok_or_else(|| Error::Unauthorized(BAD_REFRESH.into()))?;
    let (pair, expires_at) = fresh(state, user.id, user.role())?;
    if !refresh_tokens::exchange(&state.db, &row, &tokens::hash_secret(&pair.refresh_token), expires_at).await? {
        // Another request exchanged this token a moment ago: that is reuse too.
        return reuse_detected(state, &row).await;
    }
    Ok(pair)
}

/// Revokes a refresh token. Unknown or already revoked tokens are not an error (RFC 7009): the
/// caller's goal, that the token no longer works, holds either way.
pub async fn logout(state: &AppState, presented: &str) -> Result<()> {
    if let Some(row) = refresh_tokens::find_by_hash(&state.db, &tokens::hash_secret(presented)).await? {
        refresh_tokens::revoke_if_active(&state.db, row.id).await?;
    }
    Ok(())
}

pub async fn me(state: &AppState, id: Uuid) -> Result<UserRow> {
    // The token outlived its user: treat it as no longer valid.
    users::find_by_id(&state.db, id).await?.ok_or_else(|| Error::Unauthorized("the user no longer exists".into()))
}

/// Creates an `admin` or `user` through the API (`su` only comes from the CLI).
pub async fn create_user(state: &AppState, username: &str, password: &str, role: &str) -> Result<UserRow> {
    check_username(username).map_err(|m| Error::validation("username", m))?;
    let role = match Role::parse(role) {
        Some(Role::Su) => {
            return Err(Error::validation("role", "su users are created only by `mbk-host superuser`"));
        }
        Some(role) => role,
        None => return Err(Error::validation("role", format!("must be \"admin\" or \"user\", got {role:?}"))),
    };
    password::check_policy(password).map_err(|m| Error::validation("password", m))?;
    insert_user(&state.db, username, password, role).await
}

/// Inserts a user with a freshly hashed password; a taken username is 409. Also used by the
/// `superuser` command, which is why it takes the database rather than the app.
pub async fn insert_user(db: &Db, username: &str, password: &str, role: Role) -> Result<UserRow> {
    let password_hash = password::hash(password.to_owned()).await?;
    users::insert(db, &NewUser { username, password_hash: &password_hash, role }).await.map_err(|e| {
        if is_unique_violation(&e) { Error::conflict(format!("username {username:?} is taken")) } else { e.into() }
    })
}

pub async fn delete_user(state: &AppState, id: Uuid) -> Result<()> {
    let user = users::find_by_id(&state.db, id).await?.ok_or_else(|| Error::not_found("user", id))?;
    if user.role() == Role::Su {
        return Err(Error::Forbidden("su users cannot be deleted through the API".into()));
    }
    let owned = users::count_owned_projects(&state.db, id).await?;
    if owned > 0 {
        return Err(Error::conflict(format!("user {id} owns {owned} project(s); delete them first")));
    }
    if !users::delete(&state.db, id).await? {
        return Err(Error::not_found("user", id));
    }
    Ok(())
}
