//! `/users`: user management, su only.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::auth::UserView;
use super::extract::Path;
use super::pagination::{PageQuery, Paginated, Pagination};
use crate::AppState;
use crate::auth::service;
use crate::db::users;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::extract::RequireSu;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_user, list_users)).routes(routes!(delete_user))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    /// 1 to 64 of letters, digits, `.`, `_`, `-` and `@`.
    #[schema(example = "alice", pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub username: String,
    /// At least 8 characters.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 8)]
    pub password: String,
    /// `admin` or `user` (`su` is refused: su users come only from the CLI).
    #[schema(example = "user", pattern = "^(admin|user)$")]
    pub role: String,
}

/// Create an admin or user.
#[utoipa::path(
    post, path = "/users", tag = "users",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 400, description = "Invalid username, short password, or role su", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "Not su", body = ErrorBody),
        (status = 409, description = "Username taken", body = ErrorBody),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    _su: RequireSu,
    Json(body): Json<CreateUser>,
) -> AppResult<(StatusCode, Json<UserView>)> {
    let user = service::create_user(&state, &body.username, &body.password, &body.role).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// List users, oldest first.
#[utoipa::path(
    get, path = "/users", tag = "users",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Paginated<UserView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _su: RequireSu,
    page: Pagination,
) -> AppResult<Json<Paginated<UserView>>> {
    let (rows, total) = users::page(&state.db, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(rows.into_iter().map(UserView::from).collect(), total)))
}

/// Delete an admin or user (their refresh tokens go too). A su cannot be deleted.
#[utoipa::path(
    delete, path = "/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, description = "Not su, or the target is a su", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The user still owns projects", body = ErrorBody),
    )
)]
async fn delete_user(State(state): State<AppState>, _su: RequireSu, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    service::delete_user(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
