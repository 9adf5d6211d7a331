//! `GET /console`: the web console for people, a small single-page app over the public API
//! (`host/console/`: plain HTML, CSS and ES modules, no build step), embedded in the binary so
//! that it works offline and matches the host it came with.
//!
//! Tokens stay in the page's memory (never a cookie, so there is nothing to forge across sites),
//! and the page may only run its own scripts: a strict Content-Security-Policy, no inline code.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Path;
use crate::AppState;
use crate::config::StorageConfig;
use crate::error::Error;
use crate::http::error::{AppResult, ErrorBody};

/// The console's files: `(name, content type, bytes)`. `index.html` is `/console` itself.
/// A unit test checks that every file of `host/console/` is here.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../console/index.html")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("../../console/console.css")),
    ("api.js", JS, include_bytes!("../../console/api.js")),
    ("app.js", JS, include_bytes!("../../console/app.js")),
    ("dom.js", JS, include_bytes!("../../console/dom.js")),
    ("file.js", JS, include_bytes!("../../console/file.js")),
    ("jobs.js", JS, include_bytes!("../../console/jobs.js")),
    ("keys.js", JS, include_bytes!("../../console/keys.js")),
    ("media.js", JS, include_bytes!("../../console/media.js")),
    ("people.js", JS, include_bytes!("../../console/people.js")),
    ("placeholder.js", JS, include_bytes!("../../console/placeholder.js")),
    ("projects.js", JS, include_bytes!("../../console/projects.js")),
    ("settings.js", JS, include_bytes!("../../console/settings.js")),
    ("tus.js", JS, include_bytes!("../../console/tus.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Each asset's ETag, in `ASSETS`' order: the bytes are fixed at build time, so hashed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS.iter().map(|(_, _, bytes)| format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..12]))).collect()
});

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(console_page)).routes(routes!(console_asset))
}

/// The console's page (log in, projects, media, jobs, plugins, users).
#[utoipa::path(
    get, path = "/console", tag = "console", security(()),
    responses((status = 200, description = "The console's HTML page", content_type = "text/html"))
)]
async fn console_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(&state, &headers, "index.html").unwrap_or_else(|e| e.into_response())
}

/// One of the console's scripts or its stylesheet.
#[utoipa::path(
    get, path = "/console/{asset}", tag = "console", security(()),
    params(("asset" = String, Path, description = "`app.js`, `console.css`, …")),
    responses(
        (status = 200, description = "The file", content_type = "text/javascript"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "Not a file of the console", body = ErrorBody),
    )
)]
async fn console_asset(State(state): State<AppState>, Path(asset): Path<String>, headers: HeaderMap) -> Response {
    serve(&state, &headers, &asset).unwrap_or_else(|e| e.into_response())
}

fn serve(state: &AppState, request: &HeaderMap, name: &str) -> AppResult<Response> {
    let Some(index) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return Err(Error::NotFound(format!("the console has no file {name:?}")).into());
    };
    let (_, content_type, bytes) = &ASSETS[index];
    let etag = &ETAGS[index];
    let mut response = if request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
    };
    let h = response.headers_mut();
    // Revalidated on every load, so a new binary's console is seen at once (ETag makes it cheap).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&policy(state)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(response)
}

/// Only the console's own scripts and styles run; it talks to this origin only; images may also
/// come from the bucket (variants' URLs on S3 point there).
fn policy(state: &AppState) -> String {
    let mut images = vec!["'self'".to_owned(), "data:".to_owned(), "blob:".to_owned()];
    let mut add = |url: &str| {
        if let Some(origin) = origin_of(url)
            && !images.contains(&origin)
        {
            images.push(origin);
        }
    };
    add(&state.config.public_base_url);
    if let StorageConfig::S3(s3) = &state.config.storage {
        for url in [&s3.public_url, &s3.endpoint].into_iter().flatten() {
            add(url);
        }
        // Virtual-hosted style: presigned URLs name the bucket in the host.
        if let Some((scheme, host)) = s3.endpoint.as_deref().and_then(|e| e.split_once("://"))
            && !s3.force_path_style
        {
            add(&format!("{scheme}://{}.{host}", s3.bucket));
        }
        if s3.endpoint.is_none() {
            images.push("https://*.amazonaws.com".to_owned());
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {}; connect-src 'self'; \
         form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        images.join(" ")
    )
}

/// `scheme://host[:port]` of a URL, or None when it is not one.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    (matches!(scheme, "http" | "https") && !host.contains([' ', ';', '\''])).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_console_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("host/console")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|(n, _, _)| (*n).to_owned()).collect();
        served.sort();
        assert_eq!(on_disk, served, "host/console/ and ASSETS differ");
    }

    #[test]
    fn origins_of_store_urls() {
        assert_eq!(origin_of("http://127.0.0.1:3900/bucket").as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(origin_of("https://cdn.example.com").as_deref(), Some("https://cdn.example.com"));
        assert_eq!(origin_of("https://user:pw@s3.example.com/x").as_deref(), Some("https://s3.example.com"));
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://x'; script-src *"), None);
    }
}
