//! `GET /admin/jobs`: every project's jobs at a glance (su: all projects; admin: their own).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::Query;
use super::jobs::{JobStatusFilter, JobView, parse_status};
use super::pagination::{Paginated, Pagination};
use crate::AppState;
use crate::db::{jobs, projects};
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;
use crate::http::extract::RequireAdmin;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(admin_jobs))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminJobsQuery {
    /// Only jobs in this status: `pending`, `processing`, `completed` or `failed`.
    #[param(inline, value_type = Option<JobStatusFilter>)]
    pub status: Option<String>,
    /// Page of each project's job list (1-based).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectJobs {
    pub project_id: Uuid,
    pub project_name: String,
    pub jobs: Paginated<JobView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminJobs {
    pub projects: Vec<ProjectJobs>,
}

/// Jobs grouped by project, newest first in each; status and pagination apply per project.
#[utoipa::path(
    get, path = "/admin/jobs", tag = "jobs", security(("bearer" = [])), params(AdminJobsQuery),
    responses(
        (status = 200, body = AdminJobs),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "The user role", body = ErrorBody),
    )
)]
async fn admin_jobs(
    State(state): State<AppState>,
    RequireAdmin(user): RequireAdmin,
    Query(q): Query<AdminJobsQuery>,
) -> AppResult<Json<AdminJobs>> {
    let status = parse_status(q.status.as_deref())?;
    let page = Pagination::parse(q.page.as_deref(), q.per_page.as_deref())?;
    let owner = (!user.is_su()).then_some(user.id);
    let mut out = Vec::new();
    for project in projects::list_all(&state.db, owner).await? {
        let (rows, total) = jobs::page(&state.db, project.id, status, page.limit(), page.offset()).await?;
        out.push(ProjectJobs {
            project_id: project.id,
            project_name: project.name,
            jobs: page.wrap(super::jobs::views(&state, rows).await?, total),
        });
    }
    Ok(Json(AdminJobs { projects: out }))
}
