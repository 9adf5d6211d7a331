//! Operations: liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Json;
use crate::error::ErrorBody;
use crate::{AppError, AppResult, AppState};

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process is alive", body = Health)))]
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
        Ok(Err(e)) => return Err(AppError::unavailable("the database does not answer", e)),
        Err(_) => return Err(AppError::unavailable("the database does not answer", "timed out")),
    }
    match store {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(AppError::unavailable("the blob store does not answer", e)),
        Err(_) => return Err(AppError::unavailable("the blob store does not answer", "timed out")),
    }
    Ok(Json(Readiness { status: "ok", database: state.db.backend(), storage: state.store.backend() }))
}
