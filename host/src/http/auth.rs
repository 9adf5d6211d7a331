//! `/auth/*`: log in, rotate, log out, who am I.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::ClientIp;
use crate::AppState;
use crate::auth::{CurrentUser, service};
use crate::db::users::{Role, UserRow};
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(refresh)).routes(routes!(logout)).routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`, valid for `expires_in` seconds.
    pub access_token: String,
    /// Opaque, single use: `/auth/refresh` answers with a new one and revokes this one.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    #[schema(example = 900)]
    pub expires_in: u64,
}

impl From<service::Tokens> for TokenResponse {
    fn from(t: service::Tokens) -> Self {
        TokenResponse {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
        }
    }
}

/// A user as the API shows one: never a password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    #[schema(example = "alice")]
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        UserView { id: u.id, role: u.role(), username: u.username, created_at: u.created_at }
    }
}

/// Log in with a username and password.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Unknown user or wrong password (same answer)", body = ErrorBody),
        (status = 429, description = "Too many failed logins for this username from this address, or from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many logins being checked at once; see Retry-After", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(body): Json<LoginRequest>,
) -> AppResult<Json<TokenResponse>> {
    let tokens = service::login(&state, &body.username, &body.password, client).await?;
    Ok(Json(tokens.into()))
}

/// Exchange a refresh token for a new pair; the presented one is revoked. Presenting a revoked
/// token revokes every refresh token of that login.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked refresh token", body = ErrorBody),
    )
)]
async fn refresh(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> AppResult<Json<TokenResponse>> {
    Ok(Json(service::refresh(&state, &body.refresh_token).await?.into()))
}

/// Revoke a refresh token.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses((status = 204, description = "The refresh token no longer works"), (status = 400, body = ErrorBody))
)]
async fn logout(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> AppResult<StatusCode> {
    service::logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller.
#[utoipa::path(
    get, path = "/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody))
)]
async fn me(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<UserView>> {
    Ok(Json(service::me(&state, user.id).await?.into()))
}
