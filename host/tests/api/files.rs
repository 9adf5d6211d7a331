//! Upload and Files of API.md, on both databases and both blob stores.

use mbk_host::db::users::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, fixture, matrix_tests, pattern};

matrix_tests!(
    files_round_trip_with_their_sha256,
    images_are_described_from_their_headers,
    non_images_and_bombs_are_refused,
    a_file_over_the_limit_is_cut_off_mid_stream,
    quotas_hold_under_concurrent_uploads,
    ranges_etags_and_caching,
    other_tenants_get_404,
    delete_leaves_nothing_in_storage,
    variant_content_states,
    bad_upload_requests,
);

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The bytes of `GET /files/{id}/content`: served directly (filesystem) or through the presigned
/// redirect (S3), which is fetched over HTTP from the S3 server like a browser would.
async fn download(app: &TestApp, store: StoreKind, key: &str, id: &str, variant: Option<&str>) -> Vec<u8> {
    let path = match variant {
        Some(v) => format!("/files/{id}/content?variant={v}"),
        None => format!("/files/{id}/content"),
    };
    let response = app.get_with_key(&path, key).await;
    match store {
        StoreKind::Filesystem => {
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("bytes").to_vec()
        }
        StoreKind::S3 => {
            assert_eq!(response.status(), 302);
            let location = response.headers()["location"].to_str().expect("ascii").to_owned();
            assert!(location.contains("X-Amz-Signature="), "{location}");
            let fetched = reqwest::get(&location).await.expect("fetch presigned");
            assert_eq!(fetched.status(), 200);
            fetched.bytes().await.expect("bytes").to_vec()
        }
    }
}

async fn files_round_trip_with_their_sha256(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(json!({"quotas": {"max_file_bytes": null}})).await;
    for (len, name) in [(0usize, "empty.bin"), (1, "one.bin"), (5 << 20, "five.bin"), (50 << 20, "fifty.bin")] {
        let data = pattern(len, len as u32);
        let response = app.upload("/upload/file", &t.key, name, data.clone()).await;
        assert_eq!(response.status(), 201, "{name}");
        let file: Value = response.json().await.expect("json");
        assert_eq!(
            (file["kind"].as_str(), file["status"].as_str(), file["size"].as_u64()),
            (Some("file"), Some("ready"), Some(len as u64))
        );
        assert_eq!(file["sha256"], sha256(&data), "{name}");
        assert_eq!(file["filename"], name);
        assert_eq!(file["project_id"], t.project_id.as_str());
        assert_eq!(file["variants"], json!({}));
        let id = file["id"].as_str().expect("id");
        let url = file["url"].as_str().expect("url");
        assert!(url.contains(&format!("{}files/{id}.", t.prefix)), "{url}");
        let back = download(&app, store, &t.key, id, None).await;
        assert_eq!(back.len(), len, "{name}");
        assert_eq!(sha256(&back), sha256(&data), "{name}");
        if store == StoreKind::Filesystem {
            let public = reqwest::get(url).await.expect("public url");
            assert_eq!(public.status(), 200);
            assert_eq!(sha256(&public.bytes().await.expect("bytes")), sha256(&data));
        }
    }
    let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
    assert_eq!(listed["total"], 4);
    assert_eq!(listed["items"][0]["filename"], "fifty.bin", "newest first");
    let same: Value = app
        .get_as(&format!("/files?project_id={}&kind=file", t.project_id), Some(&t.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(same["total"], 4, "the owner's token sees the same list");
    let images: Value = app.get_with_key("/files?kind=image", &t.key).await.json().await.expect("json");
    assert_eq!(images["total"], 0);
}

async fn images_are_described_from_their_headers(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let cases = [
        ("photo.jpg", "image/jpeg", "jpg", 1600, 1203),
        ("photo-rotated.jpg", "image/jpeg", "jpg", 1203, 1600),
        ("alpha.png", "image/png", "png", 2140, 1200),
        ("photo.webp", "image/webp", "webp", 1600, 1203),
        ("photo.gif", "image/gif", "gif", 400, 301),
        ("photo.tiff", "image/tiff", "tiff", 320, 241),
        ("photo.avif", "image/avif", "avif", 1600, 1203),
    ];
    for (name, mime, ext, width, height) in cases {
        let data = fixture(name);
        // The client's name and type are ignored: only the bytes count.
        let response = app.upload("/upload/image", &t.key, "misleading.txt", data.clone()).await;
        assert_eq!(response.status(), 201, "{name}");
        let file: Value = response.json().await.expect("json");
        assert_eq!((file["mime_type"].as_str(), file["kind"].as_str()), (Some(mime), Some("image")), "{name}");
        assert_eq!(
            (file["width"].as_i64(), file["height"].as_i64()),
            (Some(width), Some(height)),
            "{name}: upright size"
        );
        assert_eq!(file["status"], "processing");
        assert_eq!(file["sha256"], sha256(&data));
        let id = file["id"].as_str().expect("id");
        assert!(
            file["url"].as_str().expect("url").ends_with(&format!("{}images/original/{id}.{ext}", t.prefix)),
            "{file}"
        );
        let job = file["job_id"].as_str().expect("job_id");
        for (variant, format) in [("thumbnail", "webp"), ("medium", "webp")] {
            let v = &file["variants"][variant];
            assert_eq!(
                (v["status"].as_str(), v["format"].as_str()),
                (Some("pending"), Some(format)),
                "{name} {variant}"
            );
            assert!(
                v["url"].as_str().expect("url").ends_with(&format!("{}images/{variant}/{id}.webp", t.prefix)),
                "{v}"
            );
        }
        let jobs: Value = app.get_with_key("/jobs", &t.key).await.json().await.expect("json");
        assert_eq!(jobs["items"][0]["id"], job);
        assert_eq!(
            (jobs["items"][0]["kind"].as_str(), jobs["items"][0]["file_id"].as_str()),
            (Some("process_image"), Some(id))
        );
        assert_eq!(download(&app, store, &t.key, id, None).await, data, "{name}: the original is kept byte for byte");
        let fetched: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
        assert_eq!(fetched["variants"], file["variants"]);
        assert_eq!(fetched["filename"], "misleading.txt");
    }
}

/// A PNG header claiming `width` x `height`, followed by a little garbage.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    png.extend_from_slice(&[0u8; 4096]);
    png
}

async fn non_images_and_bombs_are_refused(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let photo = fixture("photo.jpg");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text", b"just some text, certainly not a picture".to_vec()),
        ("html", b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec()),
        ("svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>".to_vec()),
        ("truncated jpeg header", photo[..100].to_vec()),
        ("truncated png", fixture("alpha.png")[..20].to_vec()),
        ("60000x60000 png bomb", png_bomb(60000, 60000)),
        ("empty", Vec::new()),
    ];
    for (what, data) in cases {
        let response = app.upload("/upload/image", &t.key, "x.png", data).await;
        assert_eq!(response.status(), 415, "{what}");
        let message = assert_error(response, 415, "unsupported_media_type").await;
        assert!(!message.is_empty(), "{what}");
        if what.contains("bomb") {
            assert!(message.contains("60000x60000"), "{message}");
        }
    }
    assert!(app.store().list(&t.prefix).await.expect("list").is_empty(), "nothing stored");
    let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
    assert_eq!(listed["total"], 0, "no rows");
    // The same bytes are fine as plain files: sniffed, stored, active content defused.
    let html =
        app.upload("/upload/file", &t.key, "page.html", b"<html><script>alert(1)</script></html>".to_vec()).await;
    assert_eq!(html.status(), 201);
    let html: Value = html.json().await.expect("json");
    assert_eq!(html["mime_type"], "text/html");
    assert!(html["url"].as_str().expect("url").ends_with(".bin"), "never stored as .html: {html}");
    if store == StoreKind::Filesystem {
        let served = reqwest::get(html["url"].as_str().expect("url")).await.expect("get");
        assert_eq!(served.headers()["content-type"], "application/octet-stream");
        assert_eq!(served.headers()["x-content-type-options"], "nosniff");
        assert!(served.headers()["content-security-policy"].to_str().expect("ascii").contains("sandbox"));
    }
}

async fn a_file_over_the_limit_is_cut_off_mid_stream(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let limit = 1 << 20;
    let t = app.project_with_key(json!({"quotas": {"max_file_bytes": limit}})).await;
    for size in [limit + 1, 20 << 20] {
        let message = assert_error(
            app.upload("/upload/file", &t.key, "big.bin", pattern(size, 1)).await,
            413,
            "payload_too_large",
        )
        .await;
        assert!(message.contains(&limit.to_string()), "{message}");
    }
    let message = assert_error(
        app.upload("/upload/image", &t.key, "big.jpg", {
            let mut jpeg = fixture("photo.jpg");
            jpeg.resize(2 << 20, 0);
            jpeg
        })
        .await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(!message.is_empty());
    assert!(app.store().list(&t.prefix).await.expect("list").is_empty(), "nothing left in storage");
    let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
    assert_eq!(listed["total"], 0);
    assert_eq!(
        app.upload("/upload/file", &t.key, "exact.bin", pattern(limit, 2)).await.status(),
        201,
        "exactly the limit is fine"
    );
    assert_eq!(app.get("/healthz").await.status(), 200, "the process carries on");
}

async fn quotas_hold_under_concurrent_uploads(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    for (settings, expected_ok) in
        [(json!({"quotas": {"max_files": 5}}), 5usize), (json!({"quotas": {"max_total_bytes": 50_000}}), 5)]
    {
        let t = app.project_with_key(settings.clone()).await;
        let uploads = (0..20u32).map(|i| app.upload("/upload/file", &t.key, "q.bin", pattern(10_000, i)));
        let responses = futures_util::future::join_all(uploads).await;
        let mut created = 0;
        for response in responses {
            match response.status().as_u16() {
                201 => created += 1,
                409 => {
                    assert_error(response, 409, "quota_exceeded").await;
                }
                other => panic!("{settings}: unexpected {other}"),
            }
        }
        assert_eq!(created, expected_ok, "{settings}");
        let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
        assert_eq!(listed["total"], expected_ok as u64, "{settings}");
        assert_eq!(
            app.store().list(&t.prefix).await.expect("list").len(),
            expected_ok,
            "{settings}: no blob without a row"
        );
    }
}

async fn ranges_etags_and_caching(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let data = pattern(10_000, 7);
    let file: Value = app.upload("/upload/file", &t.key, "r.bin", data.clone()).await.json().await.expect("json");
    let url = file["url"].as_str().expect("url").to_owned();
    let id = file["id"].as_str().expect("id").to_owned();
    let get = |headers: Vec<(&'static str, String)>| {
        let mut request = app.client.get(&url);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send()
    };
    match store {
        StoreKind::Filesystem => {
            let full = get(vec![]).await.expect("get");
            assert_eq!(full.status(), 200);
            let h = full.headers().clone();
            assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
            assert_eq!(h["content-length"], "10000");
            assert_eq!(h["accept-ranges"], "bytes");
            let etag = h["etag"].to_str().expect("ascii").to_owned();

            let part = get(vec![("range", "bytes=100-199".into())]).await.expect("get");
            assert_eq!(part.status(), 206);
            assert_eq!(part.headers()["content-range"], "bytes 100-199/10000");
            assert_eq!(part.bytes().await.expect("bytes").as_ref(), &data[100..200]);
            let tail = get(vec![("range", "bytes=-10".into())]).await.expect("get");
            assert_eq!(tail.status(), 206);
            assert_eq!(tail.bytes().await.expect("bytes").as_ref(), &data[9990..]);
            let past = get(vec![("range", "bytes=10000-".into())]).await.expect("get");
            assert_eq!(past.headers()["content-range"], "bytes */10000");
            assert_error(past, 416, "range_not_satisfiable").await;

            let cached = get(vec![("if-none-match", etag.clone())]).await.expect("get");
            assert_eq!(cached.status(), 304);
            assert_eq!(cached.headers()["etag"], etag.as_str());
            assert!(cached.bytes().await.expect("bytes").is_empty());
            assert_eq!(get(vec![("if-none-match", "\"other\"".into())]).await.expect("get").status(), 200);

            // The authenticated content route serves the same way, privately.
            let content = app
                .client
                .get(app.url(&format!("/files/{id}/content")))
                .header("x-api-key", &t.key)
                .header("range", "bytes=0-9")
                .send()
                .await
                .expect("get");
            assert_eq!(content.status(), 206);
            assert_eq!(content.headers()["cache-control"], "private, no-cache");
            assert_eq!(content.bytes().await.expect("bytes").as_ref(), &data[..10]);
            // Keys that try to leave the blob folder are simply not found.
            for tricky in ["/blobs/%2e%2e/%2e%2e/etc/passwd", "/blobs/.tmp/x", "/blobs/", "/blobs/a%00b"] {
                assert_error(app.get(tricky).await, 404, "not_found").await;
            }
        }
        StoreKind::S3 => {
            assert_error(app.get(&format!("/blobs/{}files/{id}.bin", t.prefix)).await, 404, "not_found").await;
            let redirect = app.get_with_key(&format!("/files/{id}/content"), &t.key).await;
            assert_eq!(redirect.status(), 302);
            assert_eq!(redirect.headers()["cache-control"], "no-store");
            let location = redirect.headers()["location"].to_str().expect("ascii").to_owned();
            let part = app.client.get(&location).header("range", "bytes=100-199").send().await.expect("get");
            assert_eq!(part.status(), 206, "the S3 server honours ranges on presigned URLs");
            assert_eq!(part.bytes().await.expect("bytes").as_ref(), &data[100..200]);
        }
    }
}

async fn other_tenants_get_404(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let a = app.project_with_key(Value::Null).await;
    let b = app.project_with_key(Value::Null).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (_, admin) = app.user_with_token("ada", Role::Admin).await;
    let file: Value =
        app.upload("/upload/image", &a.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let id = file["id"].as_str().expect("id");

    for path in [format!("/files/{id}"), format!("/files/{id}/content"), format!("/files?project_id={}", a.project_id)]
    {
        assert_error(app.get_with_key(&path, &b.key).await, 404, "not_found").await;
        assert_error(app.get_as(&path, Some(&b.token)).await, 404, "not_found").await;
        assert_error(app.get_as(&path, Some(&admin)).await, 404, "not_found").await;
        assert_error(app.get_as(&path, None).await, 401, "unauthorized").await;
        let expected = if path.contains("content") && store == StoreKind::S3 { 302 } else { 200 };
        assert_eq!(app.get_with_key(&path, &a.key).await.status(), expected, "{path}");
        assert_eq!(app.get_as(&path, Some(&a.token)).await.status(), expected, "{path}");
        assert_eq!(app.get_as(&path, Some(&su)).await.status(), expected, "{path}");
    }
    assert_error(app.delete_as(&format!("/files/{id}"), Some(&b.token)).await, 404, "not_found").await;
    let by_key =
        app.client.delete(app.url(&format!("/files/{id}"))).header("x-api-key", &b.key).send().await.expect("delete");
    assert_error(by_key, 404, "not_found").await;
    assert_eq!(app.get_with_key(&format!("/files/{id}"), &a.key).await.status(), 200, "still there");
    let message = assert_error(app.get_as("/files", Some(&a.token)).await, 400, "validation_failed").await;
    assert!(message.starts_with("project_id"), "{message}");
    assert_error(app.get_with_key("/files?kind=video", &a.key).await, 400, "validation_failed").await;
    assert_error(app.get_with_key("/files/not-a-uuid", &a.key).await, 400, "bad_request").await;
}

async fn delete_leaves_nothing_in_storage(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let image: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let plain: Value = app.upload("/upload/file", &t.key, "f.bin", pattern(1000, 3)).await.json().await.expect("json");
    let id = image["id"].as_str().expect("id");
    // Stand-in for a rendered variant, so that the delete has one to remove.
    let thumb_key = format!("{}images/thumbnail/{id}.webp", t.prefix);
    app.store()
        .put_bytes(
            &mbk_host::storage::BlobKey::parse(&thumb_key).expect("key"),
            "image/webp",
            bytes::Bytes::from_static(b"RIFF"),
        )
        .await
        .expect("put");
    assert_eq!(app.store().list(&t.prefix).await.expect("list").len(), 3);

    let response =
        app.client.delete(app.url(&format!("/files/{id}"))).header("x-api-key", &t.key).send().await.expect("delete");
    assert_eq!(response.status(), 204);
    let left: Vec<String> = app.store().list(&t.prefix).await.expect("list").into_iter().map(|o| o.key).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains(plain["id"].as_str().expect("id")));
    assert_error(app.get_with_key(&format!("/files/{id}"), &t.key).await, 404, "not_found").await;
    assert_eq!(
        app.delete_as(&format!("/files/{}", plain["id"].as_str().expect("id")), Some(&t.token)).await.status(),
        204
    );
    assert!(app.store().list(&t.prefix).await.expect("list").is_empty(), "the prefix is empty");
    let listed: Value = app.get_with_key("/files", &t.key).await.json().await.expect("json");
    assert_eq!(listed["total"], 0);
}

async fn variant_content_states(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let image: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    let id = image["id"].as_str().expect("id");
    assert_error(
        app.get_with_key(&format!("/files/{id}/content?variant=thumbnail"), &t.key).await,
        409,
        "variant_not_ready",
    )
    .await;
    assert_error(app.get_with_key(&format!("/files/{id}/content?variant=nope"), &t.key).await, 404, "not_found").await;
}

async fn bad_upload_requests(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let no_key = app.client.post(app.url("/upload/file")).body("x").send().await.expect("send");
    assert_error(no_key, 401, "unauthorized").await;
    let not_multipart = app
        .client
        .post(app.url("/upload/file"))
        .header("x-api-key", &t.key)
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .expect("send");
    assert_error(not_multipart, 415, "unsupported_media_type").await;
    let (content_type, body) = crate::helpers::multipart_body("a.txt", crate::helpers::chunks(b"hi".to_vec()));
    let wrong_field = content_type.clone();
    let body_text = app
        .client
        .post(app.url("/upload/file"))
        .header("x-api-key", &t.key)
        .header("content-type", wrong_field.replace("boundary=", "boundary=x"))
        .body(body)
        .send()
        .await
        .expect("send");
    let status = body_text.status().as_u16();
    assert!(status == 400, "a body whose boundary does not match: {status}");
    let empty_form = "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n--b--\r\n";
    let response = app
        .client
        .post(app.url("/upload/file"))
        .header("x-api-key", &t.key)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(empty_form)
        .send()
        .await
        .expect("send");
    let message = assert_error(response, 400, "validation_failed").await;
    assert!(message.starts_with("file"), "{message}");
    let cut = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\npartial data with no closing boundary";
    let response = app
        .client
        .post(app.url("/upload/file"))
        .header("x-api-key", &t.key)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(cut)
        .send()
        .await
        .expect("send");
    assert_error(response, 400, "bad_request").await;
    assert!(app.store().list(&t.prefix).await.expect("list").is_empty(), "nothing stored from broken requests");
}

mod storage_down {
    use super::*;
    use crate::helpers::db_tests;

    db_tests!(a_storage_failure_keeps_the_file);

    /// DELETE with the blob store down: 503, and the file (row and blob) is still there afterwards.
    async fn a_storage_failure_keeps_the_file(db: DbKind) {
        let app = TestApp::spawn(db, StoreKind::S3).await;
        let t = app.project_with_key(Value::Null).await;
        let file: Value =
            app.upload("/upload/file", &t.key, "keep.bin", pattern(1000, 9)).await.json().await.expect("json");
        let id = file["id"].as_str().expect("id");
        let (base, _state, _stop) = app
            .sibling(|c| {
                if let mbk_host::config::StorageConfig::S3(s3) = &mut c.storage {
                    s3.endpoint = Some("http://127.0.0.1:9".into()); // nothing listens there
                }
            })
            .await;
        let response =
            app.client.delete(format!("{base}/files/{id}")).header("x-api-key", &t.key).send().await.expect("delete");
        assert_error(response, 503, "unavailable").await;
        let still: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
        assert_eq!(still["id"], id, "the row is kept");
        assert_eq!(download(&app, StoreKind::S3, &t.key, id, None).await, pattern(1000, 9), "the blob is kept");
        assert_eq!(
            app.client
                .delete(app.url(&format!("/files/{id}")))
                .header("x-api-key", &t.key)
                .send()
                .await
                .expect("delete")
                .status(),
            204,
            "a retry succeeds"
        );
    }
}
