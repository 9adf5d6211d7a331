//! Request logging: one line per request, `Module | METHOD /path | context | res=code`.
//!
//! The context carries the request id, the latency, whatever a handler attached with
//! [`note`] (who called, which project) and, for a 5xx, the cause that the client never
//! sees. Query strings are never logged (they may carry tokens); paths are cut at 256 bytes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error::ErrorCause;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Where extractors note who is calling (`user=…`, `project=…`) for the request's log line. The
/// middleware puts it in the request's extensions and reads it back once the response is made.
#[derive(Debug, Clone, Default)]
pub struct LogNotes(Arc<Mutex<Vec<String>>>);

/// Adds `note` to the log line of the request `parts` belongs to.
pub fn note(parts: &axum::http::request::Parts, note: String) {
    if let Some(LogNotes(notes)) = parts.extensions.get::<LogNotes>() {
        crate::sync::lock(notes).push(note);
    }
}

/// The module named on the log line, from the first path segment.
pub fn module_of(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "auth" => "Auth",
        "users" => "Users",
        "projects" => "Projects",
        "upload" | "upload-tokens" => "Upload",
        "tus" => "Tus",
        "files" => "Files",
        "jobs" => "Jobs",
        "admin" => "Admin",
        "plugins" => "Plugins",
        "blobs" => "Blobs",
        "healthz" | "readyz" | "metrics" => "Ops",
        "swagger-ui" | "api-docs" => "Docs",
        _ => "Http",
    }
}

/// A path safe to print: at most 256 bytes (a hostile client may send kilobytes).
pub fn loggable_path(path: &str) -> String {
    // A direct upload's path is its (one-time, still usable when only preflighted) token.
    if path.starts_with("/upload/direct/") {
        return "/upload/direct/{token}".to_owned();
    }
    if path.len() <= 256 {
        return path.to_owned();
    }
    let mut end = 256;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn log_requests(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let notes = LogNotes::default();
    req.extensions_mut().insert(notes.clone());
    let method = req.method().clone();
    let path = loggable_path(req.uri().path());
    // The route's template, never the raw path: ids and made-up paths would grow the metrics.
    let route = req.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let rid = request_id(&req);

    let mut response = next.run(req).await;

    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut context = format!("rid={rid} {elapsed_ms:.1}ms");
    for extra in crate::sync::lock(&notes.0).iter() {
        context.push(' ');
        context.push_str(extra);
    }
    if let Some(ErrorCause(cause)) = response.extensions().get::<ErrorCause>() {
        context.push_str(&format!(" err={cause:?}"));
    }
    let module = module_of(&path);
    crate::metrics::request(module, &route, method.as_str(), status, started.elapsed());
    match status {
        500.. => tracing::error!("{module} | {method} {path} | {context} | res={status}"),
        _ => tracing::info!("{module} | {method} {path} | {context} | res={status}"),
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_from_the_first_segment() {
        assert_eq!(module_of("/healthz"), "Ops");
        assert_eq!(module_of("/projects/1/keys"), "Projects");
        assert_eq!(module_of("/no/such"), "Http");
        assert_eq!(module_of("/"), "Http");
    }

    #[test]
    fn long_paths_are_cut() {
        let long = format!("/{}", "é".repeat(300));
        let cut = loggable_path(&long);
        assert!(cut.len() <= 256 + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
