//! Uploads a browser would run (HTML, SVG) are never served as pages: on every store, and on
//! every way to them (the public `url`, `GET /files/{id}/content` and its presigned redirect),
//! they come as `application/octet-stream` with `Content-Disposition: attachment`.

use serde_json::Value;

use crate::helpers::{DbKind, StoreKind, TestApp, s3_config, store_tests};

store_tests!(active_uploads_are_served_as_downloads);

fn assert_download(response: &reqwest::Response, what: &str) {
    assert_eq!(response.status(), 200, "{what}");
    let h = response.headers();
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-type"), "application/octet-stream", "{what}: {h:?}");
    assert!(header("content-disposition").starts_with("attachment"), "{what}: {h:?}");
}

/// The public `url` as a browser opens it. On S3 the bucket's website endpoint (Garage's, as a
/// CDN or `S3_PUBLIC_URL` would front it) answers for the same key.
async fn open_public(url: &str, store: StoreKind) -> reqwest::Response {
    match store {
        StoreKind::Filesystem => reqwest::get(url).await.expect("public url"),
        StoreKind::S3 => {
            let bucket = s3_config().bucket;
            let (_, key) = url.split_once(&format!("/{bucket}/")).expect("a path-style bucket url");
            let web = std::env::var("MBK_TEST_S3_WEB_ENDPOINT").expect("MBK_TEST_S3_WEB_ENDPOINT (scripts/garage.sh)");
            reqwest::Client::new()
                .get(format!("{web}/{key}"))
                .header("host", format!("{bucket}.web.localhost"))
                .send()
                .await
                .expect("website endpoint")
        }
    }
}

async fn active_uploads_are_served_as_downloads(store: StoreKind) {
    let app = TestApp::spawn(DbKind::Sqlite, store).await;
    let t = app.project_with_key(Value::Null).await;
    for (name, body, sniffed) in [
        ("page.html", "<!DOCTYPE html><html><script>alert(document.domain)</script></html>", "text/html"),
        ("logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml"),
        ("feed.xml", "<?xml version='1.0'?><rss/>", "application/xml"),
    ] {
        let response = app.upload("/upload/file", &t.key, name, body.as_bytes().to_vec()).await;
        assert_eq!(response.status(), 201, "{name}");
        let file: Value = response.json().await.expect("json");
        assert_eq!(file["mime_type"], sniffed, "the File still says what it is");
        let url = file["url"].as_str().expect("url");
        let public = open_public(url, store).await;
        assert_download(&public, &format!("{name} at its url {url}"));
        assert_eq!(public.text().await.expect("body"), body);

        let id = file["id"].as_str().expect("id");
        let content = app.get_with_key(&format!("/files/{id}/content"), &t.key).await;
        let content = match store {
            StoreKind::Filesystem => content,
            StoreKind::S3 => {
                assert_eq!(content.status(), 302, "{name}");
                let location = content.headers()["location"].to_str().expect("ascii").to_owned();
                reqwest::get(&location).await.expect("presigned")
            }
        };
        assert_download(&content, &format!("{name} through /files/{id}/content"));
        assert_eq!(content.text().await.expect("body"), body);
    }
}
