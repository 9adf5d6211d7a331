//! Resumable uploads at `/tus/` (TUS 1.0.0: core, creation, creation-with-upload, termination,
//! expiration), spoken in raw HTTP: capabilities, the protocol's refusals (412, 415, 409, 413,
//! 404 for another tenant's upload), chunks, a body cut off (what arrived is kept), a restart between two chunks (a second app on the
//! same database and store), the File a finished upload becomes (size, sha256, an image's
//! variants), upload tokens, expiry (410) and the cleanup of expired parts. On both databases and
//! both stores. The real client (`tuspy`) is `tus_client.rs`.

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, drain, fixture, matrix_tests, pattern};

matrix_tests!(
    chunks_resume_across_a_restart_and_become_a_file,
    creation_with_upload_termination_and_images,
    upload_tokens_authorise_the_upload_they_created,
    expired_uploads_are_gone_and_their_parts_cleaned_up,
);

pub const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// A tus request to `url` (a path of `app`, or a `Location`), with `Tus-Resumable: 1.0.0`.
pub fn tus(app: &TestApp, method: Method, url: &str) -> reqwest::RequestBuilder {
    let url = if url.starts_with("http") { url.to_owned() } else { app.url(url) };
    app.client.request(method, url).header("tus-resumable", "1.0.0")
}

pub fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Creates an upload of `length` bytes with `key`; its URL.
async fn create(app: &TestApp, key: &str, length: usize, metadata: &str) -> String {
    let response = tus(app, Method::POST, "/tus/")
        .header("x-api-key", key)
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata)
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    assert_eq!(header(&response, "tus-resumable"), Some("1.0.0"));
    assert!(header(&response, "upload-expires").is_some_and(|v| v.ends_with(" GMT")), "{:?}", response.headers());
    header(&response, "location").expect("location").to_owned()
}

async fn patch(app: &TestApp, url: &str, key: &str, offset: usize, body: Vec<u8>) -> reqwest::Response {
    tus(app, Method::PATCH, url)
        .header("x-api-key", key)
        .header("upload-offset", offset.to_string())
        .header("content-type", OFFSET_STREAM)
        .body(body)
        .send()
        .await
        .expect("patch")
}

async fn offset_of(app: &TestApp, url: &str, key: &str) -> u64 {
    let response = tus(app, Method::HEAD, url).header("x-api-key", key).send().await.expect("head");
    assert_eq!(response.status(), 200, "HEAD {url}");
    header(&response, "upload-offset").expect("offset").parse().expect("a number")
}

async fn file(app: &TestApp, key: &str, id: &str) -> Value {
    let response = app.get_with_key(&format!("/files/{id}"), key).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn chunks_resume_across_a_restart_and_become_a_file(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let other = app.project_with_key(Value::Null).await;

    // Capabilities, with no credentials or with a key (which names the project's limit).
    let caps = app.client.request(Method::OPTIONS, app.url("/tus/")).send().await.expect("options");
    assert_eq!(caps.status(), 204);
    assert_eq!((header(&caps, "tus-version"), header(&caps, "tus-resumable")), (Some("1.0.0"), Some("1.0.0")));
    let extensions: Vec<&str> = header(&caps, "tus-extension").expect("extensions").split(',').collect();
    for wanted in ["creation", "creation-with-upload", "termination", "expiration"] {
        assert!(extensions.contains(&wanted), "{extensions:?}");
    }
    assert_eq!(header(&caps, "tus-max-size"), None);
    let caps = app.client.request(Method::OPTIONS, app.url("/tus/")).header("x-api-key", &t.key).send().await;
    assert_eq!(header(&caps.expect("options"), "tus-max-size"), Some("26214400"));

    // The refusals before an upload exists.
    let unversioned = app.client.post(app.url("/tus/")).header("x-api-key", &t.key).header("upload-length", "10");
    let unversioned = unversioned.send().await.expect("post");
    assert_eq!(header(&unversioned, "tus-version"), Some("1.0.0"));
    assert_error(unversioned, 412, "precondition_failed").await;
    let anonymous = tus(&app, Method::POST, "/tus/").header("upload-length", "10").send().await.expect("post");
    assert_error(anonymous, 401, "unauthorized").await;
    let too_big = tus(&app, Method::POST, "/tus/").header("x-api-key", &t.key).header("upload-length", "26214401");
    assert_error(too_big.send().await.expect("post"), 413, "payload_too_large").await;
    let deferred = tus(&app, Method::POST, "/tus/").header("x-api-key", &t.key).header("upload-defer-length", "1");
    assert_error(deferred.send().await.expect("post"), 400, "validation_failed").await;
    let no_length = tus(&app, Method::POST, "/tus/").header("x-api-key", &t.key).send().await.expect("post");
    assert_error(no_length, 400, "validation_failed").await;
    let bad_metadata = tus(&app, Method::POST, "/tus/").header("x-api-key", &t.key).header("upload-length", "1");
    let bad_metadata = bad_metadata.header("upload-metadata", format!("kind {}", b64("video")));
    assert_error(bad_metadata.send().await.expect("post"), 400, "validation_failed").await;

    // An upload of three chunks.
    let data = pattern(300_000, 15);
    let metadata = format!("filename {},kind {}", b64("data.bin"), b64("file"));
    let url = create(&app, &t.key, data.len(), &metadata).await;
    let id = url.strip_prefix(&format!("{}/tus/", app.base)).expect("Location is PUBLIC_BASE_URL/tus/{id}");
    let head = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!((header(&head, "upload-offset"), header(&head, "upload-length")), (Some("0"), Some("300000")));
    assert_eq!(header(&head, "upload-metadata"), Some(metadata.as_str()));
    assert_eq!(header(&head, "cache-control"), Some("no-store"));

    // Another tenant sees nothing; the protocol's refusals leave the offset alone.
    for method in [Method::HEAD, Method::DELETE] {
        let response = tus(&app, method.clone(), &url).header("x-api-key", &other.key).send().await.expect("req");
        assert_eq!(response.status(), 404, "{method}");
    }
    assert_error(patch(&app, &url, &other.key, 0, data[..10].to_vec()).await, 404, "not_found").await;
    let wrong_type = tus(&app, Method::PATCH, &url).header("x-api-key", &t.key).header("upload-offset", "0");
    let wrong_type = wrong_type.header("content-type", "application/octet-stream").body(data[..10].to_vec());
    assert_error(wrong_type.send().await.expect("patch"), 415, "unsupported_media_type").await;
    assert_error(patch(&app, &url, &t.key, 5, data[..10].to_vec()).await, 409, "conflict").await;
    let unversioned = app.client.patch(&url).header("x-api-key", &t.key).header("upload-offset", "0");
    let unversioned = unversioned.header("content-type", OFFSET_STREAM).body(data[..10].to_vec());
    assert_error(unversioned.send().await.expect("patch"), 412, "precondition_failed").await;
    assert_eq!(offset_of(&app, &url, &t.key).await, 0);

    let first = patch(&app, &url, &t.key, 0, data[..100_000].to_vec()).await;
    assert_eq!(first.status(), 204);
    assert_eq!(header(&first, "upload-offset"), Some("100000"));
    assert_eq!(header(&first, "upload-file-id"), None);
    // Past the length.
    assert_error(patch(&app, &url, &t.key, 100_000, pattern(250_000, 1)).await, 413, "payload_too_large").await;
    assert_eq!(offset_of(&app, &url, &t.key).await, 100_000);
    assert_eq!(app.store().list(&format!("{}tus/{id}/", t.prefix)).await.expect("list").len(), 1, "one part");

    // A connection dropped mid-body: the bytes that arrived are kept, and HEAD says so.
    let arrived = bytes::Bytes::from(data[100_000..140_000].to_vec());
    // (The pause lets the client's connection send what it has before it dies.)
    let died = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Err(std::io::Error::other("the client died"))
    };
    let cut = futures_util::stream::once(async { Ok(arrived) }).chain(futures_util::stream::once(died));
    let dropped = tus(&app, Method::PATCH, &url)
        .header("x-api-key", &t.key)
        .header("upload-offset", "100000")
        .header("content-type", OFFSET_STREAM)
        .header("content-length", "100000")
        .body(reqwest::Body::wrap_stream(cut))
        .send()
        .await;
    assert!(dropped.is_err(), "the request was cut off: {dropped:?}");
    assert_eq!(offset_of(&app, &url, &t.key).await, 140_000);

    // A restart: another app on the same database and store resumes where the first stopped.
    let (base, _state, stop) = app.sibling(|_| {}).await;
    let moved = url.replace(&app.base, &base);
    let resumed = tus(&app, Method::HEAD, &moved).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(header(&resumed, "upload-offset"), Some("140000"));
    let second = patch(&app, &moved, &t.key, 140_000, data[140_000..200_000].to_vec()).await;
    assert_eq!(header(&second, "upload-offset"), Some("200000"));
    let _ = stop.send(());

    let last = patch(&app, &url, &t.key, 200_000, data[200_000..].to_vec()).await;
    assert_eq!(last.status(), 204);
    assert_eq!(header(&last, "upload-offset"), Some("300000"));
    let file_id = header(&last, "upload-file-id").expect("the File it became").to_owned();
    let made = file(&app, &t.key, &file_id).await;
    assert_eq!(
        (&made["size"], &made["kind"], &made["filename"]),
        (&json!(300_000), &json!("file"), &json!("data.bin"))
    );
    assert_eq!(made["sha256"], json!(sha256_hex(&data)), "{made}");
    let key = mbk_host::storage::BlobKey::parse(&made_key(&app, &file_id).await).expect("key");
    assert_eq!(app.store().get_bytes(&key).await.expect("stored").as_ref(), data.as_slice());

    // Finished: HEAD names the File, the parts are gone, a repeated last PATCH is harmless.
    let head = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(header(&head, "upload-file-id"), Some(file_id.as_str()));
    assert!(app.store().list(&format!("{}tus/", t.prefix)).await.expect("list").is_empty(), "parts removed");
    let again = patch(&app, &url, &t.key, 300_000, Vec::new()).await;
    assert_eq!((again.status().as_u16(), header(&again, "upload-file-id")), (204, Some(file_id.as_str())));
}

/// The storage key of a File (from the database: the JSON shows URLs).
async fn made_key(app: &TestApp, file_id: &str) -> String {
    let id = file_id.parse().expect("uuid");
    mbk_host::db::files::find(&app.state.db, id).await.expect("db").expect("file").storage_key
}

async fn creation_with_upload_termination_and_images(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let photo = fixture("photo.jpg");

    // A whole image in the creation request.
    let metadata = format!("filename {},kind {}", b64("photo.jpg"), b64("image"));
    let made = tus(&app, Method::POST, "/tus/")
        .header("x-api-key", &t.key)
        .header("upload-length", photo.len().to_string())
        .header("upload-metadata", metadata)
        .header("content-type", OFFSET_STREAM)
        .body(photo.clone())
        .send()
        .await
        .expect("create");
    assert_eq!(made.status(), 201);
    assert_eq!(header(&made, "upload-offset"), Some(photo.len().to_string().as_str()));
    let file_id = header(&made, "upload-file-id").expect("finished at once").to_owned();
    let image = file(&app, &t.key, &file_id).await;
    assert_eq!((&image["kind"], &image["width"], &image["height"]), (&json!("image"), &json!(1600), &json!(1203)));
    assert_eq!(image["sha256"], json!(sha256_hex(&photo)));
    assert_eq!(image["variants"]["thumbnail"]["status"], "pending", "{image}");
    drain(&app).await;
    let image = file(&app, &t.key, &file_id).await;
    assert_eq!((&image["status"], &image["variants"]["thumbnail"]["status"]), (&json!("ready"), &json!("ready")));

    // Not an image, though the metadata said so: refused when finished, and the upload ends.
    let text = b"plain text, no image".to_vec();
    let url = create(&app, &t.key, text.len(), &format!("kind {}", b64("image"))).await;
    assert_error(patch(&app, &url, &t.key, 0, text).await, 415, "unsupported_media_type").await;
    let gone = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(gone.status(), 404);

    // A first chunk with the creation, then termination.
    let data = pattern(200_000, 3);
    let with_chunk = tus(&app, Method::POST, "/tus/")
        .header("x-api-key", &t.key)
        .header("upload-length", data.len().to_string())
        .header("content-type", OFFSET_STREAM)
        .body(data[..50_000].to_vec())
        .send()
        .await
        .expect("create");
    assert_eq!((with_chunk.status().as_u16(), header(&with_chunk, "upload-offset")), (201, Some("50000")));
    let url = header(&with_chunk, "location").expect("location").to_owned();
    let id = url.rsplit('/').next().expect("id").to_owned();
    assert_eq!(app.store().list(&format!("{}tus/{id}/", t.prefix)).await.expect("list").len(), 1);
    let terminated = tus(&app, Method::DELETE, &url).header("x-api-key", &t.key).send().await.expect("delete");
    assert_eq!(terminated.status(), 204);
    assert!(app.store().list(&format!("{}tus/{id}/", t.prefix)).await.expect("list").is_empty());
    let gone = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(gone.status(), 404);
    assert_error(patch(&app, &url, &t.key, 50_000, data[50_000..].to_vec()).await, 404, "not_found").await;

    // A first chunk of another type than the protocol's.
    let wrong = tus(&app, Method::POST, "/tus/")
        .header("x-api-key", &t.key)
        .header("upload-length", "4")
        .header("content-type", "text/plain")
        .body("abcd")
        .send()
        .await
        .expect("create");
    assert_error(wrong, 415, "unsupported_media_type").await;

    // Two PATCHes racing from one offset: one lands, the other is 409, and the File is the winner's.
    let (a, b) = (pattern(100_000, 21), pattern(100_000, 22));
    let url = create(&app, &t.key, a.len(), "").await;
    let (first, second) =
        tokio::join!(patch(&app, &url, &t.key, 0, a.clone()), patch(&app, &url, &t.key, 0, b.clone()));
    let (won, lost, winner) = match first.status().as_u16() {
        204 => (first, second, &a),
        _ => (second, first, &b),
    };
    assert_eq!(won.status(), 204);
    let won_id = header(&won, "upload-file-id").expect("finished").to_owned();
    assert_error(lost, 409, "conflict").await;
    assert_eq!(file(&app, &t.key, &won_id).await["sha256"], json!(sha256_hex(winner)));

    // An empty upload is a File at once.
    let empty = tus(&app, Method::POST, "/tus").header("x-api-key", &t.key).header("upload-length", "0");
    let empty = empty.send().await.expect("create");
    assert_eq!(empty.status(), 201);
    let empty_id = header(&empty, "upload-file-id").expect("finished").to_owned();
    assert_eq!(file(&app, &t.key, &empty_id).await["size"], json!(0));
}

async fn upload_tokens_authorise_the_upload_they_created(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let t = app.project_with_key(Value::Null).await;
    let other = app.project_with_key(Value::Null).await;
    let token = |max_bytes: usize| {
        let request = app.client.post(app.url("/upload-tokens")).header("x-api-key", &t.key);
        async move {
            let response = request.json(&json!({"kind": "file", "max_bytes": max_bytes})).send().await.expect("token");
            let body: Value = response.json().await.expect("json");
            body["token"].as_str().expect("token").to_owned()
        }
    };
    let data = pattern(120_000, 9);
    let secret = token(data.len()).await;
    let create = |secret: String, length: usize, metadata: String| {
        tus(&app, Method::POST, "/tus/")
            .header("upload-token", secret)
            .header("upload-length", length.to_string())
            .header("upload-metadata", metadata)
            .send()
    };
    // Over the token's max_bytes; a kind the token does not take (both use the token up).
    assert_error(create(token(10).await, 11, String::new()).await.expect("post"), 413, "payload_too_large").await;
    let image = format!("kind {}", b64("image"));
    assert_error(create(token(10).await, 5, image).await.expect("post"), 400, "validation_failed").await;

    let made = create(secret.clone(), data.len(), format!("filename {}", b64("t.bin"))).await.expect("post");
    assert_eq!(made.status(), 201);
    let url = header(&made, "location").expect("location").to_owned();
    // The token made one upload and makes no other.
    assert_error(create(secret.clone(), 1, String::new()).await.expect("post"), 401, "unauthorized").await;
    // It keeps authorising its own upload (and only that one).
    let with_token = |offset: usize, body: Vec<u8>, secret: &str| {
        tus(&app, Method::PATCH, &url)
            .header("upload-token", secret)
            .header("upload-offset", offset.to_string())
            .header("content-type", OFFSET_STREAM)
            .body(body)
            .send()
    };
    let half = with_token(0, data[..60_000].to_vec(), &secret).await.expect("patch");
    assert_eq!(header(&half, "upload-offset"), Some("60000"));
    let stranger = token(10).await;
    assert_error(with_token(60_000, data[60_000..].to_vec(), &stranger).await.expect("patch"), 404, "not_found").await;
    let head = tus(&app, Method::HEAD, &url).header("x-api-key", &other.key).send().await.expect("head");
    assert_eq!(head.status(), 404, "another project's key");
    // The project's own key may carry on.
    assert_eq!(offset_of(&app, &url, &t.key).await, 60_000);
    let done = with_token(60_000, data[60_000..].to_vec(), &secret).await.expect("patch");
    assert_eq!(done.status(), 204);
    let file_id = header(&done, "upload-file-id").expect("file").to_owned();
    let made = file(&app, &t.key, &file_id).await;
    assert_eq!((&made["sha256"], &made["filename"]), (&json!(sha256_hex(&data)), &json!("t.bin")));
}

/// Moves an upload's expiry into the past, as 24 hours would.
async fn expire(app: &TestApp, id: uuid::Uuid) {
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let sql = "UPDATE tus_uploads SET expires_at = $1 WHERE id = $2";
    match &app.state.db {
        mbk_host::db::Db::Sqlite(pool) => sqlx::query(sql).bind(past).bind(id).execute(pool).await.map(|_| ()),
        mbk_host::db::Db::Postgres(pool) => sqlx::query(sql).bind(past).bind(id).execute(pool).await.map(|_| ()),
    }
    .expect("backdate");
}

async fn expired_uploads_are_gone_and_their_parts_cleaned_up(db: DbKind, store: StoreKind) {
    // The cleanup's orphan scan reads the whole bucket: a bucket of its own, and no grace, so
    // that only naming the live upload's part keeps it.
    let _alone = crate::helpers::WHOLE_BUCKET.lock().await;
    let app = TestApp::spawn_with(db, store, |c| {
        if let mbk_host::config::StorageConfig::S3(s3) = &mut c.storage {
            s3.bucket = crate::helpers::solo_bucket();
        }
        c.jobs.orphan_grace = std::time::Duration::ZERO;
    })
    .await;
    let t = app.project_with_key(Value::Null).await;
    let data = pattern(40_000, 4);
    let stale = create(&app, &t.key, data.len(), "").await;
    let live = create(&app, &t.key, data.len(), "").await;
    for url in [&stale, &live] {
        assert_eq!(patch(&app, url, &t.key, 0, data[..10_000].to_vec()).await.status(), 204);
    }
    let stale_id: uuid::Uuid = stale.rsplit('/').next().expect("id").parse().expect("uuid");
    let live_id = live.rsplit('/').next().expect("id");
    expire(&app, stale_id).await;

    let head = tus(&app, Method::HEAD, &stale).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(head.status(), 410);
    assert_error(patch(&app, &stale, &t.key, 10_000, data[10_000..].to_vec()).await, 410, "gone").await;

    let report = mbk_host::jobs::cleanup::run(&app.state).await.expect("cleanup");
    assert_eq!(report.tus_uploads_purged, 1, "{report:?}");
    assert!(app.store().list(&format!("{}tus/{stale_id}/", t.prefix)).await.expect("list").is_empty());
    let head = tus(&app, Method::HEAD, &stale).header("x-api-key", &t.key).send().await.expect("head");
    assert_eq!(head.status(), 404, "forgotten");
    // The live upload's part is named by its row: the orphan scan left it, and it finishes.
    assert_eq!(app.store().list(&format!("{}tus/{live_id}/", t.prefix)).await.expect("list").len(), 1);
    let done = patch(&app, &live, &t.key, 10_000, data[10_000..].to_vec()).await;
    let file_id = header(&done, "upload-file-id").expect("finished").to_owned();
    assert_eq!(file(&app, &t.key, &file_id).await["sha256"], json!(sha256_hex(&data)));
}
