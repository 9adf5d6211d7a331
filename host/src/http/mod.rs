//! The HTTP layer: one module per resource, each exposing `router()`, merged here through
//! utoipa-axum so that the OpenAPI spec is generated from the handlers and cannot drift.
//!
//! Every error leaves as the contract's body: handlers return [`error::AppError`] (a domain error on its way
//! out), and [`normalize_errors`] rewrites whatever else produces a 4xx/5xx (unknown routes, wrong methods,
//! body limits, panics) into the same shape.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod body_guard;
pub mod console;
pub mod cors;
pub mod direct;
pub mod error;
pub mod extract;
pub mod files;
pub mod jobs;
pub mod json;
pub mod log;
pub mod ops;
pub mod pagination;
pub mod plugins;
pub mod projects;
pub mod server;
mod spec;
pub mod tus;
pub mod upload;
pub mod users;
pub mod webhooks;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::Error;
use crate::http::error::{AppError, ErrorBody, ErrorCause, ErrorDetail, code_for_status, error_response};

pub use json::Json;

pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "MediaBlobKit",
        description = "Upload files and images, get them stored safely, get image variants rendered by sandboxed WebAssembly plugins."
    ),
    // Relative: the spec is served by the host it describes (Swagger UI tries routes there).
    servers((url = "/", description = "This host")),
    paths(blobs::get_blob),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Log in, rotate refresh tokens, log out"),
        (name = "users", description = "User management (su only)"),
        (name = "projects", description = "Projects, their settings and API keys (owner or su)"),
        (name = "upload", description = "Upload files and images (project API key)"),
        (name = "files", description = "Files, their variants and their bytes"),
        (name = "jobs", description = "Background jobs"),
        (name = "plugins", description = "The plugin registry (su or admin manage; anyone logged in lists)"),
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "console", description = "The web console for people (HTML over this API)"),
    )
)]
struct ApiDoc;

/// `bearer` (user JWT), `api_key` (`X-API-Key`, a project key) and `upload_token`
/// (`Upload-Token`), referenced by the routes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
        // `/tus/`: a one-time token from `POST /upload-tokens`, instead of a key.
        components.add_security_scheme(
            "upload_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Upload-Token"))),
        );
    }
}

/// Every documented route.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(users::router())
        .merge(projects::router())
        .merge(upload::router())
        .merge(direct::router())
        .merge(tus::router())
        .merge(files::router())
        .merge(blobs::router())
        .merge(jobs::router())
        .merge(admin::router())
        .merge(plugins::router())
        .merge(webhooks::router())
        .merge(ops::router())
        .merge(console::router())
}

/// The OpenAPI document of every route (also printed by `mbk-host openapi`).
pub fn openapi() -> OpenApi {
    spec::completed(api_routes().into_openapi())
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let (api, spec) = api_routes().split_for_parts();
    let spec = spec::completed(spec);
    api.merge(SwaggerUi::new("/swagger-ui").url(OPENAPI_PATH, spec))
        .fallback(unknown_route)
        .layer(axum::middleware::map_response(normalize_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), body_guard::guard_bodies))
        .layer(axum::middleware::from_fn(log::log_requests))
        .with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> AppError {
    AppError(Error::NotFound(format!("no route for {method} {}", log::loggable_path(uri.path()))))
}

/// Gives every 4xx/5xx that is not already JSON the contract's error body.
async fn normalize_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed for this route".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        s if s.is_server_error() => "internal server error".to_owned(),
        s => s.canonical_reason().unwrap_or("request failed").to_ascii_lowercase(),
    };
    let (parts, _) = response.into_parts();
    let mut fresh = error_response(status, code_for_status(status), &message);
    // Keep what the original carried for the client (Allow, Retry-After) and for the log.
    for name in [header::ALLOW, header::RETRY_AFTER, header::CONTENT_RANGE] {
        if let Some(v) = parts.headers.get(&name) {
            fresh.headers_mut().insert(name, v.clone());
        }
    }
    if let Some(cause) = parts.extensions.get::<ErrorCause>() {
        fresh.extensions_mut().insert(cause.clone());
    }
    fresh
}

fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let detail = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    let mut response = AppError(Error::Internal(anyhow::anyhow!("handler panicked: {detail}"))).into_response();
    response.extensions_mut().insert(ErrorCause(format!("handler panicked: {detail}")));
    response
}
