//! Operations: liveness, readiness and metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Json;
use crate::AppState;
use crate::error::Error;
use crate::http::error::AppResult;
use crate::http::error::ErrorBody;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()), responses((status = 200, description = "The process is alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(example = "postgres")]
    pub database: &'static str,
    /// `filesystem` or `s3`.
    #[schema(example = "s3")]
    pub storage: &'static str,
}

/// Readiness: 200 only when the database and the blob store both answer.
#[utoipa::path(
    get,
    path = "/readyz",
    security(()),
    tag = "ops",
    responses(
        (status = 200, description = "Database and storage answer", body = Readiness),
        (status = 503, description = "The database or the storage does not answer", body = ErrorBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> AppResult<Json<Readiness>> {
    let (db, store) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.store.check()),
    );
    match db {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::unavailable("the database does not answer", e).into()),
        Err(_) => return Err(Error::unavailable("the database does not answer", "timed out").into()),
    }
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::unavailable("the blob store does not answer", e).into()),
        Err(_) => return Err(Error::unavailable("the blob store does not answer", "timed out").into()),
    }
    Ok(Json(Readiness { status: "ok", database: state.db.backend(), storage: state.store.backend() }))
}

/// Prometheus metrics (text format 0.0.4): this process' requests, latencies, plugin calls and job
/// runs; and, from the database (shared by every process), jobs by status, the queue's depth and
/// variants by status.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "`METRICS_TOKEN` is set and the request does not carry it as `Authorization: Bearer`", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> AppResult<impl IntoResponse> {
    if let Some(expected) = &state.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, token)| token.trim().as_bytes())
            .unwrap_or_default();
        use subtle::ConstantTimeEq;
        if !bool::from(presented.ct_eq(expected.as_bytes())) {
            return Err(Error::Unauthorized("GET /metrics needs Authorization: Bearer <METRICS_TOKEN>".into()).into());
        }
    }
    let read = async {
        Ok::<_, sqlx::Error>(crate::metrics::Shared {
            jobs_by_status: crate::db::jobs::count_by_status(&state.db).await?,
            queue_depth: crate::db::jobs::queue_depth(&state.db).await?,
            variants_by_status: crate::db::files::variants_by_status(&state.db).await?,
        })
    };
    let shared = match tokio::time::timeout(CHECK_TIMEOUT, read).await {
        Ok(Ok(shared)) => shared,
        Ok(Err(e)) => return Err(Error::unavailable("the database does not answer", e).into()),
        Err(_) => return Err(Error::unavailable("the database does not answer", "timed out").into()),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render(&shared)))
}
