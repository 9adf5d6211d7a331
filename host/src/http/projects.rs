//! `/projects` and `/projects/{id}/keys`: owner or su. Others get 404, as if it did not exist.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::{Path, Query};
use super::pagination::{PageQuery, Paginated, Pagination};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::api_keys::ApiKeyRow;
use crate::error::Error;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;
use crate::projects::ProjectSettings;
use crate::projects::service::{self, Project};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(sync_variants))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(update_key, delete_key))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Project)]
pub struct ProjectView {
    pub id: Uuid,
    #[schema(example = "My App")]
    pub name: String,
    /// Storage folder name, derived from the name at creation; never changes.
    #[schema(example = "my-app")]
    pub slug: String,
    pub owner_id: Uuid,
    pub settings: ProjectSettings,
    /// What each variant's `plugin` resolves to now, by variant name.
    pub resolved_plugins: BTreeMap<String, ResolvedPlugin>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The registered plugin a variant renders with now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedPlugin {
    pub id: Uuid,
    #[schema(example = "sepia")]
    pub name: String,
    #[schema(example = "1.2.0")]
    pub version: String,
    pub sha256: String,
}

impl ProjectView {
    async fn of(state: &AppState, p: Project) -> AppResult<ProjectView> {
        let resolved = service::resolved_plugins(state, &p).await?;
        let resolved_plugins = resolved
            .into_iter()
            .map(|(variant, r)| {
                (variant, ResolvedPlugin { id: r.id, name: r.name, version: r.version, sha256: r.sha256 })
            })
            .collect();
        Ok(ProjectView {
            id: p.row.id,
            name: p.row.name,
            slug: p.row.slug,
            owner_id: p.row.owner_id,
            settings: p.settings,
            resolved_plugins,
            created_at: p.row.created_at,
            updated_at: p.row.updated_at,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProject {
    /// 1 to 100 characters (surrounding spaces are trimmed), no control characters.
    #[schema(
        example = "My App",
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 100
    )]
    pub name: String,
    /// Omitted: the default variants (`thumbnail` 150x150 cover webp 80, `medium` 800 wide contain webp 80).
    #[schema(value_type = Option<ProjectSettings>)]
    pub settings: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProject {
    /// 1 to 100 characters (surrounding spaces are trimmed), no control characters.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 100
    )]
    pub name: Option<String>,
    /// Replaces the settings whole.
    #[schema(value_type = Option<ProjectSettings>)]
    pub settings: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `true`: delete every file and variant from storage, then the rows. Otherwise a soft delete.
    #[param(value_type = Option<bool>)]
    pub permanent: Option<String>,
}

/// Create a project.
#[utoipa::path(
    post, path = "/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProject,
    responses(
        (status = 201, body = ProjectView),
        (status = 400, description = "Invalid name or settings; the message names the field", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateProject>,
) -> AppResult<(StatusCode, Json<ProjectView>)> {
    let project = service::create(&state, user, &body.name, body.settings).await?;
    Ok((StatusCode::CREATED, Json(ProjectView::of(&state, project).await?)))
}

/// List projects, newest first: every project for su, one's own for others.
#[utoipa::path(
    get, path = "/projects", tag = "projects", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Paginated<ProjectView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody))
)]
async fn list_projects(
    State(state): State<AppState>,
    user: CurrentUser,
    page: Pagination,
) -> AppResult<Json<Paginated<ProjectView>>> {
    let (items, total) = service::list(&state, user, page.limit(), page.offset()).await?;
    let mut views = Vec::with_capacity(items.len());
    for project in items {
        views.push(ProjectView::of(&state, project).await?);
    }
    Ok(Json(page.wrap(views, total)))
}

/// Get a project.
#[utoipa::path(
    get, path = "/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> AppResult<Json<ProjectView>> {
    Ok(Json(ProjectView::of(&state, service::get(&state, user, id).await?).await?))
}

/// Rename a project and/or replace its settings. Existing images keep their variants until
/// `POST /projects/{id}/sync-variants`.
#[utoipa::path(
    put, path = "/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = UpdateProject,
    responses(
        (status = 200, body = ProjectView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
async fn update_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateProject>,
) -> AppResult<Json<ProjectView>> {
    let project = service::update(&state, user, id, body.name.as_deref(), body.settings).await?;
    Ok(Json(ProjectView::of(&state, project).await?))
}

/// Delete a project: soft (hidden at once, keys disabled, purged after 30 days) or permanent.
#[utoipa::path(
    delete, path = "/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), DeleteQuery),
    responses(
        (status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, description = "Storage failed; nothing was removed from the database", body = ErrorBody),
    )
)]
async fn delete_project(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(query): Query<DeleteQuery>,
) -> AppResult<StatusCode> {
    let permanent = match query.permanent.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::validation("permanent", format!("must be true or false, got {other:?}")).into());
        }
    };
    service::delete(&state, user, id, permanent).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: Uuid,
}

/// (Re)generate, for every image, the variants the settings now name, and remove the variants
/// they no longer name. Runs in the background; follow it with `GET /jobs` or `GET /admin/jobs`.
///
/// At most one sync per project waits: while one is pending, the answer is that job's id (it
/// reads the settings when it runs).
#[utoipa::path(
    post, path = "/projects/{id}/sync-variants", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 202, body = JobAccepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn sync_variants(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> AppResult<(StatusCode, Json<JobAccepted>)> {
    let job_id = service::request_sync(&state, user, id).await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}

/// An API key as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyView {
    pub id: Uuid,
    #[schema(example = "production")]
    pub name: String,
    /// The public part of the key, to tell keys apart (`mbk_<prefix>_…`).
    #[schema(example = "0f3a9c41b2d7")]
    pub prefix: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for KeyView {
    fn from(k: ApiKeyRow) -> Self {
        KeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            enabled: k.enabled,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new key, with its secret: shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NewApiKey)]
pub struct NewKeyView {
    #[serde(flatten)]
    pub key_info: KeyView,
    /// Send it as `X-API-Key`. It is not stored and cannot be shown again.
    #[schema(example = "mbk_0f3a9c41b2d7_3b1f…")]
    pub key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKey {
    /// 1 to 100 characters (surrounding spaces are trimmed), no control characters.
    #[schema(
        example = "production",
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 100
    )]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateKey {
    pub enabled: bool,
}

/// Create an API key for a project.
#[utoipa::path(
    post, path = "/projects/{id}/keys", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = CreateKey,
    responses(
        (status = 201, body = NewKeyView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    )
)]
async fn create_key(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateKey>,
) -> AppResult<(StatusCode, Json<NewKeyView>)> {
    let (row, key) = service::create_key(&state, user, id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(NewKeyView { key_info: row.into(), key })))
}

/// List a project's API keys (without their secrets), newest first.
#[utoipa::path(
    get, path = "/projects/{id}/keys", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Paginated<KeyView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn list_keys(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    page: Pagination,
) -> AppResult<Json<Paginated<KeyView>>> {
    let (rows, total) = service::list_keys(&state, user, id, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(rows.into_iter().map(KeyView::from).collect(), total)))
}

/// Enable or disable an API key.
#[utoipa::path(
    patch, path = "/projects/{id}/keys/{key_id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("key_id" = Uuid, Path)), request_body = UpdateKey,
    responses((status = 200, body = KeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn update_key(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, key_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<UpdateKey>,
) -> AppResult<Json<KeyView>> {
    Ok(Json(service::set_key_enabled(&state, user, id, key_id, body.enabled).await?.into()))
}

/// Delete an API key; it stops working at once.
#[utoipa::path(
    delete, path = "/projects/{id}/keys/{key_id}", tag = "projects", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn delete_key(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, key_id)): Path<(Uuid, Uuid)>,
) -> AppResult<StatusCode> {
    service::delete_key(&state, user, id, key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
