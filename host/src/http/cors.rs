//! CORS for the routes browsers use on a project's behalf (`/blobs/…`, `/v/…`, `/upload/direct/…`): a
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
    path.starts_with("/blobs/") || path.starts_with("/v/") || path.starts_with("/upload/direct/")
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
    let allowed = match crate::delivery::cors_allows(&state, &path, &origin).await {
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
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, POST, OPTIONS"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, range, if-none-match"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        return response;
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        allow(h, &origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag, content-length, content-range, accept-ranges"),
        );
    }
    response
}

fn allow(headers: &mut HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}
