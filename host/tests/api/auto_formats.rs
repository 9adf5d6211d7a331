//! `format: "auto"` variants: one render makes AVIF, WebP and JPEG (PNG when the original has
//! alpha); the File lists them under `formats`, the variant's `url` is its `/v/` URL, and
//! `GET /v/{file}/{variant}` answers the sibling the request's `Accept` takes best, with
//! `Vary: Accept`. Deleting the file removes every sibling. A private project on both databases
//! and both stores (on S3 the answer is a 302 to a presigned GET, followed here).

use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, drain, fixture, matrix_tests};

matrix_tests!(auto_variants_serve_the_best_format_each_client_takes);

fn settings() -> Value {
    json!({"variants": [{"name": "hero", "width": 96, "height": null, "fit": "contain", "format": "auto", "quality": 60}],
           "visibility": "private"})
}

/// What `GET url` with `accept` answered: its Content-Type, whether it varies by Accept, the
/// bytes (following the bucket's redirect on S3), and the ETag when the host served it.
async fn fetch(url: &str, accept: Option<&str>) -> (String, bool, Vec<u8>, Option<String>) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut request = client.get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let answer = request.send().await.expect("get");
    let varies = answer.headers().get_all("vary").iter().any(|v| v.to_str().is_ok_and(|v| v.contains("Accept")));
    let answer = match answer.status().as_u16() {
        302 => {
            let location = answer.headers()["location"].to_str().expect("ascii").to_owned();
            reqwest::get(&location).await.expect("the bucket answers")
        }
        status => {
            assert_eq!(status, 200, "{url}");
            answer
        }
    };
    assert_eq!(answer.status(), 200);
    let etag = answer.headers().get("etag").and_then(|e| e.to_str().ok()).map(str::to_owned);
    let content_type = answer.headers()["content-type"].to_str().expect("ascii").to_owned();
    (content_type, varies, answer.bytes().await.expect("bytes").to_vec(), etag)
}

async fn upload_rendered(app: &TestApp, key: &str, name: &str) -> Value {
    let made = app.upload("/upload/image", key, name, fixture(name)).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    drain(app).await;
    let id = made["id"].as_str().expect("id");
    let file: Value = app.get_with_key(&format!("/files/{id}"), key).await.json().await.expect("json");
    assert_eq!(file["variants"]["hero"]["status"], json!("ready"), "{file}");
    file
}

async fn auto_variants_serve_the_best_format_each_client_takes(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let tenant = app.project_with_key(settings()).await;

    // A settings typo names the field and the formats there are.
    let mut wrong = settings();
    wrong["variants"][0]["format"] = json!("avif-or-webp");
    let project = format!("/projects/{}", tenant.project_id);
    let update = app.put_json(&project, Some(&tenant.token), &json!({"settings": wrong})).await;
    let why = assert_error(update, 400, "validation_failed").await;
    assert!(why.starts_with("settings.variants[0].format") && why.contains("auto"), "{why}");

    let file = upload_rendered(&app, &tenant.key, "photo.jpg").await;
    let id = file["id"].as_str().expect("id");
    let hero = &file["variants"]["hero"];
    assert_eq!(hero["format"], json!("auto"), "{hero}");
    let url = hero["url"].as_str().expect("url");
    assert!(url.starts_with(&app.url(&format!("/v/{id}/hero?exp="))), "the /v/ URL, signed: {url}");
    let formats = hero["formats"].as_object().expect("formats");
    let mut names: Vec<&String> = formats.keys().collect();
    names.sort();
    assert_eq!(names, ["avif", "jpeg", "webp"], "no alpha: JPEG, not PNG: {hero}");

    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let cases = [
        (Some(chrome), "image/avif", image::ImageFormat::Avif),
        (Some("image/avif"), "image/avif", image::ImageFormat::Avif),
        (Some("image/webp,*/*;q=0.8"), "image/webp", image::ImageFormat::WebP),
        (Some("image/avif;q=0.5,image/webp;q=0.9"), "image/webp", image::ImageFormat::WebP),
        (Some("*/*"), "image/jpeg", image::ImageFormat::Jpeg),
        (None, "image/jpeg", image::ImageFormat::Jpeg),
    ];
    let mut etags = std::collections::BTreeMap::new();
    for (accept, mime, format) in cases {
        let (content_type, varies, bytes, etag) = fetch(url, accept).await;
        assert_eq!(content_type, mime, "Accept: {accept:?}");
        assert!(varies, "Vary: Accept for {accept:?}");
        assert_eq!(image::guess_format(&bytes).ok(), Some(format), "Accept: {accept:?}");
        let size = imagesize::blob_size(&bytes).expect("a readable image");
        assert_eq!(size.width, 96, "Accept: {accept:?}");
        let name = format.extensions_str()[0];
        let listed = formats.iter().find(|(_, s)| s["size"] == json!(bytes.len())).map(|(n, _)| n.as_str());
        assert!(listed.is_some(), "{name}: its size is listed: {hero}");
        if let Some(etag) = etag {
            etags.entry(mime).or_insert_with(Vec::new).push(etag);
        }
    }
    // Each sibling its own ETag (filesystem: the host answers).
    if store == StoreKind::Filesystem {
        let distinct: std::collections::BTreeSet<&String> = etags.values().map(|v| &v[0]).collect();
        assert_eq!(distinct.len(), 3, "{etags:?}");
    }
    // Each sibling has its own URL too, and the unsigned /v/ URL is refused.
    for (name, sibling) in formats {
        let (content_type, _, _, _) = fetch(sibling["url"].as_str().expect("url"), None).await;
        assert_eq!(content_type, format!("image/{name}"), "{sibling}");
    }
    let unsigned = reqwest::get(app.url(&format!("/v/{id}/hero"))).await.expect("get");
    assert_error(unsigned, 403, "forbidden").await;

    // With alpha: PNG instead of JPEG, for clients that name neither modern format.
    let clear = upload_rendered(&app, &tenant.key, "alpha.png").await;
    let hero = &clear["variants"]["hero"];
    let mut names: Vec<&String> = hero["formats"].as_object().expect("formats").keys().collect();
    names.sort();
    assert_eq!(names, ["avif", "png", "webp"], "{hero}");
    let (content_type, _, bytes, _) = fetch(hero["url"].as_str().expect("url"), Some("*/*")).await;
    assert_eq!((content_type.as_str(), image::guess_format(&bytes).ok()), ("image/png", Some(image::ImageFormat::Png)));
    assert!(image::load_from_memory(&bytes).expect("a PNG").color().has_alpha(), "the transparency is kept");

    // Deleting the file removes every sibling.
    let prefix = format!("{}images/hero/{id}", tenant.prefix);
    assert_eq!(app.store().list(&prefix).await.expect("list").len(), 3);
    let gone = app.client.delete(app.url(&format!("/files/{id}"))).header("x-api-key", &tenant.key).send();
    assert_eq!(gone.await.expect("delete").status(), 204);
    assert!(app.store().list(&prefix).await.expect("list").is_empty(), "no sibling is left behind");
}
