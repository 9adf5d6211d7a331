//! CORS for the routes browsers use on a project's behalf (`/blobs/…`, `/v/…`, `/upload/direct/…`,
//! `/tus/…`): a
//! page of an origin in the project's `settings.cors_origins` gets its preflight answered and
//! `Access-Control-Allow-Origin` on the answers; any other origin gets no CORS headers, so its
//! browser keeps the answer from it. Every other route is left alone (the API is for servers
//! holding keys and tokens, not for pages).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The paths CORS applies to.
fn is_delivery(path: &str) -> bool {
    path.starts_with("/blobs/") || path.starts_with("/v/") || path.starts_with("/upload/direct/") || is_tus(path)
}

fn is_tus(path: &str) -> bool {
    path == "/tus" || path.starts_with("/tus/")
}

/// What a preflight allows and which answer headers a page may read.
struct Policy {
    methods: &'static str,
    headers: &'static str,
    expose: &'static str,
}

const DELIVERY: Policy = Policy {
    methods: "GET, HEAD, POST, OPTIONS",
    headers: "content-type, range, if-none-match",
    expose: "etag, content-length, content-range, accept-ranges",
};

/// What tus clients in browsers (tus-js-client, Uppy) send and read.
const TUS: Policy = Policy {
    methods: "POST, HEAD, PATCH, DELETE, OPTIONS",
    headers: "content-type, tus-resumable, upload-length, upload-offset, upload-metadata, upload-defer-length, \
              upload-concat, upload-token, x-api-key, x-requested-with, x-http-method-override",
    expose: "location, tus-resumable, tus-version, tus-extension, tus-max-size, upload-offset, upload-length, \
             upload-metadata, upload-expires, upload-file-id",
};

/// Whether `origin` may use `path`. A `/tus/` creation has no upload id in its path: its project
/// comes from the `Upload-Token` header (see [`crate::files::tus::cors_allows`]).
async fn allows(state: &AppState, path: &str, headers: &HeaderMap, origin: &str) -> crate::error::Result<bool> {
    if !is_tus(path) {
        return crate::delivery::cors_allows(state, path, origin).await;
    }
    let id = path.trim_start_matches("/tus").trim_matches('/');
    let upload = match id {
        "" => None,
        id => match uuid::Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(_) => return Ok(false),
        },
    };
    let token = headers.get("upload-token").and_then(|v| v.to_str().ok()).map(str::trim);
    crate::files::tus::cors_allows(state, upload, token, origin).await
}

pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !is_delivery(&path) {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(origin) = origin else {
        // Said on every answer, with an Origin or not: a cache (a CDN in front of the public,
        // year-long cacheable blobs) must not serve one origin's answer to another.
        let mut response = next.run(request).await;
        response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    };
    let policy = if is_tus(&path) { &TUS } else { &DELIVERY };
    let allowed = match allows(&state, &path, request.headers(), &origin).await {
        Ok(allowed) => allowed,
        Err(e) => {
            tracing::warn!(error = %e, "CORS: cannot look the project up; no CORS headers");
            false
        }
    };
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        if allowed {
            allow(h, &origin);
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(policy.methods));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(policy.headers));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return response;
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        allow(h, &origin);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(policy.expose));
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}
