//! Direct uploads: a one-time token from `POST /upload-tokens` (project key) lets a client with
//! no other credentials upload once to `upload_url`, within the token's kind, size and types.
//! Used, expired, unknown: 401; over `max_bytes`: 413; not of its kind or types: 415. On both
//! databases and both stores; and CORS: only the project's `cors_origins` get their preflights
//! answered and `Access-Control-Allow-Origin`.

use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, chunks, fixture, matrix_tests, multipart_body};

matrix_tests!(upload_tokens_work_once_within_their_limits, browsers_of_the_projects_origins_may_upload_directly);

async fn token(app: &TestApp, key: &str, body: Value) -> Value {
    let response = app.client.post(app.url("/upload-tokens")).header("x-api-key", key).json(&body).send().await;
    let response = response.expect("request");
    assert_eq!(response.status(), 201, "{body}");
    response.json().await.expect("json")
}

/// `POST upload_url` with a multipart `file` and no credentials at all.
async fn direct(upload_url: &str, filename: &str, data: Vec<u8>) -> reqwest::Response {
    let (content_type, body) = multipart_body(filename, chunks(data));
    let client = reqwest::Client::new();
    client.post(upload_url).header("content-type", content_type).body(body).send().await.expect("upload")
}

async fn upload_tokens_work_once_within_their_limits(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let tenant = app.project_with_key(serde_json::Value::Null).await;
    let photo = fixture("photo.jpg");

    // Only with a project key; fields are validated by name.
    let anonymous = app.client.post(app.url("/upload-tokens")).json(&json!({"kind": "image", "max_bytes": 1})).send();
    assert_error(anonymous.await.expect("request"), 401, "unauthorized").await;
    for (body, field) in [
        (json!({"kind": "video", "max_bytes": 10}), "kind"),
        (json!({"kind": "image", "max_bytes": 0}), "max_bytes"),
        (json!({"kind": "image", "max_bytes": 10, "expires_in": 3601}), "expires_in"),
        (json!({"kind": "image", "max_bytes": 10, "content_types": ["png"]}), "content_types[0]"),
        (json!({"kind": "image", "max_bytes": 10, "content_types": ["image/png", "image/jpg"]}), "content_types[1]"),
    ] {
        let response = app.client.post(app.url("/upload-tokens")).header("x-api-key", &tenant.key).json(&body);
        let why = assert_error(response.send().await.expect("request"), 400, "validation_failed").await;
        assert!(why.starts_with(field), "{why}");
    }

    // One image upload, once.
    let issued =
        token(&app, &tenant.key, json!({"kind": "image", "max_bytes": photo.len() + 1, "expires_in": 600})).await;
    let secret = issued["token"].as_str().expect("token");
    let url = issued["upload_url"].as_str().expect("upload_url").to_owned();
    assert!(secret.starts_with("mbku_") && url == format!("{}/upload/direct/{secret}", app.base), "{issued}");
    let expires_at: chrono::DateTime<chrono::Utc> = issued["expires_at"].as_str().expect("at").parse().expect("a time");
    let left = (expires_at - chrono::Utc::now()).num_seconds();
    assert!((590..=600).contains(&left), "expires in 600 s: {left}");
    let made = direct(&url, "p.jpg", photo.clone()).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    assert_eq!((&made["kind"], &made["project_id"]), (&json!("image"), &json!(tenant.project_id)), "{made}");
    assert!(made["variants"]["thumbnail"].is_object(), "an image's variants are on their way: {made}");
    assert_error(direct(&url, "p.jpg", photo.clone()).await, 401, "unauthorized").await;
    assert_error(
        direct(&format!("{}/upload/direct/mbku_nothing", app.base), "p.jpg", photo.clone()).await,
        401,
        "unauthorized",
    )
    .await;

    // Expired.
    let brief = token(&app, &tenant.key, json!({"kind": "any", "max_bytes": 1 << 20, "expires_in": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_error(direct(brief["upload_url"].as_str().expect("url"), "p.jpg", photo.clone()).await, 401, "unauthorized")
        .await;

    // Over its max_bytes; not its kind; not its types.
    let small = token(&app, &tenant.key, json!({"kind": "image", "max_bytes": 1000})).await;
    assert_error(
        direct(small["upload_url"].as_str().expect("url"), "p.jpg", photo.clone()).await,
        413,
        "payload_too_large",
    )
    .await;
    let images = token(&app, &tenant.key, json!({"kind": "image", "max_bytes": 1 << 20})).await;
    let text = b"just some text, not an image".to_vec();
    assert_error(
        direct(images["upload_url"].as_str().expect("url"), "t.txt", text.clone()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let pngs =
        token(&app, &tenant.key, json!({"kind": "image", "max_bytes": 1 << 20, "content_types": ["image/png"]})).await;
    let why = assert_error(
        direct(pngs["upload_url"].as_str().expect("url"), "p.jpg", photo.clone()).await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert!(why.contains("image/jpeg") && why.contains("image/png"), "{why}");

    // `any`: a file when the bytes are no image.
    let any = token(&app, &tenant.key, json!({"kind": "any", "max_bytes": 1 << 20})).await;
    let stored = direct(any["upload_url"].as_str().expect("url"), "t.txt", text).await;
    assert_eq!(stored.status(), 201);
    let stored: Value = stored.json().await.expect("json");
    assert_eq!((&stored["kind"], &stored["mime_type"]), (&json!("file"), &json!("text/plain")), "{stored}");

    // A token ends with the key that asked for it; a malformed body costs no token.
    let (key_id, other_key) = app.create_key(&tenant.token, &tenant.project_id).await;
    let orphaned = token(&app, &other_key, json!({"kind": "image", "max_bytes": 1 << 22})).await;
    let keep = token(&app, &other_key, json!({"kind": "image", "max_bytes": 1 << 22})).await;
    let not_multipart =
        reqwest::Client::new().post(keep["upload_url"].as_str().expect("url")).body("plain").send().await;
    assert_error(not_multipart.expect("post"), 415, "unsupported_media_type").await;
    assert_eq!(direct(keep["upload_url"].as_str().expect("url"), "p.jpg", photo.clone()).await.status(), 201);
    let key_path = format!("/projects/{}/keys/{key_id}", tenant.project_id);
    assert_eq!(app.delete_as(&key_path, Some(&tenant.token)).await.status(), 204);
    assert_error(
        direct(orphaned["upload_url"].as_str().expect("url"), "p.jpg", photo.clone()).await,
        401,
        "unauthorized",
    )
    .await;

    // Two uploads racing with one token: exactly one is stored.
    let raced = token(&app, &tenant.key, json!({"kind": "image", "max_bytes": 1 << 22})).await;
    let raced = raced["upload_url"].as_str().expect("url").to_owned();
    let (a, b) = tokio::join!(direct(&raced, "a.jpg", photo.clone()), direct(&raced, "b.jpg", photo.clone()));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 401]);
}

/// A CORS preflight for `url` from `origin`: its `Access-Control-Allow-Origin`, if any.
async fn preflight(url: &str, origin: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert_eq!(response.status(), 204);
    response.headers().get("access-control-allow-origin").map(|v| v.to_str().expect("ascii").to_owned())
}

async fn browsers_of_the_projects_origins_may_upload_directly(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let tenant = app.project_with_key(serde_json::Value::Null).await;
    let project = format!("/projects/{}", tenant.project_id);
    for bad in ["http://app.example.com", "https://app.example.com/path", "app.example.com", "https://APP.example.com"]
    {
        let body = json!({"settings": {"cors_origins": ["https://ok.example.com", bad]}});
        let why =
            assert_error(app.put_json(&project, Some(&tenant.token), &body).await, 400, "validation_failed").await;
        assert!(why.starts_with("settings.cors_origins[1]"), "{bad}: {why}");
    }
    let origin = "https://app.example.com";
    let body = json!({"settings": {"cors_origins": [origin, "http://localhost:5173"]}});
    assert_eq!(app.put_json(&project, Some(&tenant.token), &body).await.status(), 200);

    let issued = token(&app, &tenant.key, json!({"kind": "image", "max_bytes": 1 << 22})).await;
    let url = issued["upload_url"].as_str().expect("url").to_owned();
    assert_eq!(preflight(&url, origin).await.as_deref(), Some(origin));
    assert_eq!(preflight(&url, "http://localhost:5173").await.as_deref(), Some("http://localhost:5173"));
    assert_eq!(preflight(&url, "https://evil.example.com").await, None, "another origin gets no CORS headers");

    let (content_type, body) = multipart_body("p.jpg", chunks(fixture("photo.jpg")));
    let made = reqwest::Client::new()
        .post(&url)
        .header("origin", origin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(made.status(), 201);
    assert_eq!(made.headers()["access-control-allow-origin"], origin);
    let varies = |h: &reqwest::header::HeaderMap| {
        h.get_all("vary").iter().any(|v| v.to_str().is_ok_and(|v| v.contains("Origin")))
    };
    assert!(varies(made.headers()));
    let made: Value = made.json().await.expect("json");
    // Once used, the page can still read why its next try is refused.
    assert_eq!(preflight(&url, origin).await.as_deref(), Some(origin));
    let (content_type, body) = multipart_body("p.jpg", chunks(fixture("photo.jpg")));
    let again =
        reqwest::Client::new().post(&url).header("origin", origin).header("content-type", content_type).body(body);
    let again = again.send().await.expect("upload");
    assert_eq!(again.headers()["access-control-allow-origin"], origin);
    assert_error(again, 401, "unauthorized").await;
    assert_eq!(preflight(&format!("{}/upload/direct/mbku_unknown", app.base), origin).await, None);

    if store == StoreKind::Filesystem {
        let blob = made["url"].as_str().expect("url");
        let served = reqwest::Client::new().get(blob).header("origin", origin).send().await.expect("get");
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["access-control-allow-origin"], origin);
        let other = reqwest::Client::new().get(blob).header("origin", "https://evil.example.com").send().await;
        assert!(other.expect("get").headers().get("access-control-allow-origin").is_none());
        // Vary: Origin even without an Origin: a shared cache keeps the answers apart.
        let plain = reqwest::Client::new().get(blob).send().await.expect("get");
        assert!(plain.headers().get("access-control-allow-origin").is_none() && varies(plain.headers()));
        assert_eq!(preflight(blob, origin).await.as_deref(), Some(origin), "blobs answer preflights too");
    }
}
