//! `GET /jobs`: a project's jobs, for its API key, or for its owner (or su) with `?project_id=`
//! (as `GET /files`: the console shows a project's jobs to a user of any role).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::Query;
use super::pagination::{Paginated, Pagination};
use crate::AppState;
use crate::auth::Caller;
use crate::db::jobs::{self, JobRow};
use crate::db::plugin_runs::{self, PluginRunRow};
use crate::db::status::JobStatus;
use crate::error::Error;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_jobs))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Uuid>,
    /// `process_image`, `sync_project_variants`, `sync_file_variants`, `cleanup` or
    /// `deliver_webhook`.
    #[schema(example = "process_image")]
    pub kind: String,
    /// `pending`, `processing`, `completed` or `failed`.
    #[schema(example = "completed")]
    pub status: String,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sync jobs, once run: what the sync changes (the project's job: over all its images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<SyncReport>,
    /// The plugin calls this job made (jobs that rendered), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugin_runs: Vec<PluginRunView>,
}

/// One plugin call: what ran, for how many variants, its wall and CPU time and its peak linear
/// memory (null when rendered natively). `fuel` is null: calls are not fuel-metered (it slows
/// every guest instruction); `cpu_ms` is the CPU time of the thread that ran the call.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginRunView {
    #[schema(example = "mbk-standard")]
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    pub variants: i32,
    pub ms: i64,
    pub cpu_ms: Option<i64>,
    pub fuel: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
}

impl From<PluginRunRow> for PluginRunView {
    fn from(r: PluginRunRow) -> Self {
        PluginRunView {
            plugin: r.plugin_name,
            version: r.plugin_version,
            sha256: r.sha256,
            variants: r.variants,
            ms: r.ms,
            cpu_ms: r.cpu_ms,
            fuel: None,
            peak_memory_bytes: r.peak_memory_bytes,
        }
    }
}

/// The views of a page of jobs, each with its plugin runs (one query for the page).
pub async fn views(state: &AppState, rows: Vec<JobRow>) -> AppResult<Vec<JobView>> {
    let ids: Vec<Uuid> = rows.iter().map(|j| j.id).collect();
    let mut runs = plugin_runs::of_jobs(&state.db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let mut view = JobView::from(row);
            let (mine, rest): (Vec<_>, Vec<_>) = runs.drain(..).partition(|r| r.job_id == Some(id));
            runs = rest;
            view.plugin_runs = mine.into_iter().map(PluginRunView::from).collect();
            view
        })
        .collect())
}

/// A sync's counts: variants rendered again (their plugin or spec changed), added, removed,
/// and left as they were.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncReport {
    pub rerendered: u64,
    pub added: u64,
    pub removed: u64,
    pub unchanged: u64,
}

impl From<JobRow> for JobView {
    fn from(j: JobRow) -> Self {
        JobView {
            id: j.id,
            project_id: j.project_id,
            file_id: j.file_id,
            kind: j.kind,
            status: j.status.to_string(),
            attempts: j.attempts,
            error: j.error,
            created_at: j.created_at,
            updated_at: j.updated_at,
            report: j.report.as_deref().and_then(|r| serde_json::from_str(r).ok()),
            plugin_runs: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Required with a user token; implied by a project key.
    #[param(value_type = Option<Uuid>)]
    pub project_id: Option<String>,
    /// Only jobs in this status: `pending`, `processing`, `completed` or `failed`.
    #[param(inline, value_type = Option<JobStatusFilter>)]
    pub status: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub page: Option<String>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

/// The values of `?status=` (documentation only: the handlers read a string, so that another
/// value gets the contract's 400 naming `status`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum JobStatusFilter {
    Pending,
    Processing,
    Completed,
    Failed,
}

/// Parses `?status=` (absent: all); any other value is 400.
pub fn parse_status(raw: Option<&str>) -> AppResult<Option<JobStatus>> {
    match raw {
        None => Ok(None),
        Some(s) => JobStatus::parse(s).map(Some).ok_or_else(|| {
            let known: Vec<_> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
            Error::validation("status", format!("must be one of {}, got {s:?}", known.join(", "))).into()
        }),
    }
}

/// The jobs of a project (the key's, or `project_id` for its owner or su), newest first.
#[utoipa::path(
    get, path = "/jobs", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(JobsQuery),
    responses(
        (status = 200, body = Paginated<JobView>),
        (status = 400, description = "Unknown status, bad project_id or bad pagination", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "A project the caller may not see", body = ErrorBody),
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<JobsQuery>,
) -> AppResult<Json<Paginated<JobView>>> {
    let status = parse_status(query.status.as_deref())?;
    let page = Pagination::parse(query.page.as_deref(), query.per_page.as_deref())?;
    let project_id = crate::files::access::project_of(caller, query.project_id.as_deref())?;
    crate::files::access::check_project_access(&state, caller, project_id).await?;
    let (rows, total) = jobs::page(&state.db, project_id, status, page.limit(), page.offset()).await?;
    Ok(Json(page.wrap(views(&state, rows).await?, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's `?status=` values are the ones `parse_status` takes: one list.
    #[test]
    fn the_status_filter_documents_every_status() {
        let spec = serde_json::to_value(crate::http::openapi()).expect("spec");
        let params = spec["paths"]["/jobs"]["get"]["parameters"].as_array().expect("parameters").clone();
        let status = params.iter().find(|p| p["name"] == "status").expect("status");
        let documented: Vec<&str> =
            status["schema"]["enum"].as_array().expect("enum").iter().filter_map(|v| v.as_str()).collect();
        let parsed: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(documented, parsed);
    }
}
