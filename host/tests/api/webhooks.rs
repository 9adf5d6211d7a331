//! Webhooks, against a real HTTP receiver in the test: every delivery is signed as Standard
//! Webhooks say (checked here with the secret of the 201), a receiver that answered 500 gets the
//! same message again, one that keeps failing ends `failed` after the schedule, a redirect to a
//! URL that is not http(s) is refused for good, and deliveries are listed with how they went.
//! Private, loopback and link-local targets are refused at registration, and at delivery by a
//! worker that does not allow them. On both databases and both stores.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, drain, fixture, matrix_tests};

matrix_tests!(deliveries_are_signed_retried_and_listed, private_targets_are_refused_unless_allowed);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses `/flaky` answers, in turn (200 once they run out).
    flaky: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Serves `/flaky`, `/down` (always 500) and `/elsewhere` (a redirect to `file:`) on loopback.
    async fn start(flaky: &[u16]) -> (Receiver, String) {
        let receiver = Receiver { flaky: Arc::new(Mutex::new(flaky.iter().copied().collect())), ..Receiver::default() };
        let app = axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, base)
    }

    fn got(&self, path: &str) -> Vec<Received> {
        self.got.lock().expect("lock").iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let path = format!("/{path}");
    receiver.got.lock().expect("lock").push(Received {
        path: path.clone(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    match path.as_str() {
        "/down" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/elsewhere" => (StatusCode::TEMPORARY_REDIRECT, [("location", "file:///etc/passwd")]).into_response(),
        _ => {
            let next = receiver.flaky.lock().expect("lock").pop_front().unwrap_or(200);
            StatusCode::from_u16(next).expect("a status").into_response()
        }
    }
}

/// Checks a delivery's signature as a Standard Webhooks receiver would.
fn verify(secret: &str, got: &Received) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{}.{}.{}", got.id, got.timestamp, got.body).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(got.signature, expected, "signature of {}", got.body);
    let at: i64 = got.timestamp.parse().expect("a unix timestamp");
    assert!((chrono::Utc::now().timestamp() - at).abs() < 300, "a fresh timestamp");
}

fn quick_retries(config: &mut mbk_host::config::Config) {
    config.webhook_allow_private = true;
    config.jobs.webhook_retry_after = vec![Duration::ZERO, Duration::ZERO];
}

async fn register(app: &TestApp, token: &str, project: &str, url: &str, events: Value) -> (String, String) {
    let body = json!({"url": url, "events": events});
    let response = app.post_json(&format!("/projects/{project}/webhooks"), Some(token), &body).await;
    assert_eq!(response.status(), 201);
    let made: Value = response.json().await.expect("json");
    let secret = made["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_") && made["url"] == json!(url) && made["enabled"] == json!(true), "{made}");
    (made["id"].as_str().expect("id").to_owned(), secret)
}

async fn deliveries(app: &TestApp, token: &str, project: &str, webhook: &str) -> Vec<Value> {
    let page = app.get_as(&format!("/projects/{project}/webhooks/{webhook}/deliveries"), Some(token)).await;
    assert_eq!(page.status(), 200);
    let page: Value = page.json().await.expect("json");
    page["items"].as_array().expect("items").clone()
}

async fn deliveries_are_signed_retried_and_listed(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn_with(db, store, quick_retries).await;
    let tenant = app.project_with_key(Value::Null).await;
    let (receiver, base) = Receiver::start(&[500]).await;
    let project = tenant.project_id.as_str();

    // Refusals name their field.
    let hooks = format!("/projects/{project}/webhooks");
    for (body, field) in [
        (json!({"url": "ftp://example.com/", "events": ["file.ready"]}), "url"),
        (json!({"url": format!("{base}/flaky"), "events": ["file.done"]}), "events[0]"),
        (json!({"url": format!("{base}/flaky"), "events": []}), "events"),
    ] {
        let why = assert_error(app.post_json(&hooks, Some(&tenant.token), &body).await, 400, "validation_failed").await;
        assert!(why.starts_with(field), "{body}: {why}");
    }
    let events = json!(["file.created", "file.ready", "variant.ready", "file.deleted"]);
    let (hook, secret) = register(&app, &tenant.token, project, &format!("{base}/flaky"), events.clone()).await;
    let (down, _) = register(&app, &tenant.token, project, &format!("{base}/down"), json!(["file.ready"])).await;
    let (away, _) = register(&app, &tenant.token, project, &format!("{base}/elsewhere"), json!(["file.ready"])).await;
    let listed: Value = app.get_as(&hooks, Some(&tenant.token)).await.json().await.expect("json");
    assert_eq!(listed["total"], json!(3), "{listed}");
    assert!(listed["items"].as_array().expect("items").iter().all(|w| w.get("secret").is_none()), "{listed}");
    assert_eq!(listed["items"][2]["events"], events, "{listed}");

    // Another tenant sees none of it.
    let other = app.project_with_key(Value::Null).await;
    let theirs = app.get_as(&format!("/projects/{project}/webhooks/{hook}/deliveries"), Some(&other.token)).await;
    assert_error(theirs, 404, "not_found").await;

    let made = app.upload("/upload/image", &tenant.key, "photo.jpg", fixture("photo.jpg")).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("json");
    let file_id = made["id"].as_str().expect("id").to_owned();
    drain(&app).await;

    let got = receiver.got("/flaky");
    for request in &got {
        verify(&secret, request);
    }
    let bodies: Vec<Value> = got.iter().map(|r| serde_json::from_str(&r.body).expect("a JSON body")).collect();
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().expect("type")).collect();
    // file.created answered 500 once, then came again: the same message, signed afresh.
    assert_eq!(types.iter().filter(|t| **t == "file.created").count(), 2, "{types:?}");
    let created: Vec<&Received> = got.iter().filter(|r| r.body.contains("\"file.created\"")).collect();
    assert_eq!((created[0].id.as_str(), created[0].body.as_str()), (created[1].id.as_str(), created[1].body.as_str()));
    assert!(created[0].id.starts_with("msg_"), "{}", created[0].id);
    assert_eq!(bodies.iter().find(|b| b["type"] == "file.created").expect("created")["data"]["id"], json!(file_id));
    let ready = bodies.iter().find(|b| b["type"] == "file.ready").expect("file.ready was delivered");
    assert_eq!((&ready["data"]["id"], &ready["data"]["status"]), (&json!(file_id), &json!("ready")), "{ready}");
    assert_eq!(ready["data"]["variants"]["thumbnail"]["status"], json!("ready"), "{ready}");
    assert!(ready["data"]["blurhash"].is_string(), "file.ready tells what the image is: {ready}");
    let mut variants: Vec<&str> = bodies
        .iter()
        .filter(|b| b["type"] == "variant.ready")
        .map(|b| b["data"]["variant"].as_str().expect("name"))
        .collect();
    variants.sort();
    assert_eq!(variants, ["medium", "thumbnail"], "{types:?}");
    assert!(bodies.iter().filter(|b| b["type"] == "variant.ready").all(|b| b["data"]["file_id"] == json!(file_id)));

    // Listed with how they went.
    let listed = deliveries(&app, &tenant.token, project, &hook).await;
    assert_eq!(listed.len(), 4, "{listed:?}");
    let created = listed.iter().find(|d| d["event"] == "file.created").expect("listed");
    assert_eq!(
        (&created["status"], &created["attempts"], &created["response_status"]),
        (&json!("succeeded"), &json!(2), &json!(200))
    );
    let down = deliveries(&app, &tenant.token, project, &down).await;
    assert_eq!(
        (&down[0]["status"], &down[0]["attempts"], &down[0]["response_status"]),
        (&json!("failed"), &json!(3), &json!(500))
    );
    assert_eq!(receiver.got("/down").len(), 3, "the first attempt and two retries");
    let away = deliveries(&app, &tenant.token, project, &away).await;
    assert_eq!((&away[0]["status"], &away[0]["attempts"]), (&json!("failed"), &json!(1)), "{away:?}");
    assert!(away[0]["error"].as_str().expect("error").contains("redirect"), "{away:?}");

    // A deleted file is told of too, as it was.
    let gone = app.client.delete(app.url(&format!("/files/{file_id}"))).header("x-api-key", &tenant.key).send();
    assert_eq!(gone.await.expect("request").status(), 204);
    drain(&app).await;
    let deleted =
        receiver.got("/flaky").into_iter().find(|r| r.body.contains("\"file.deleted\"")).expect("file.deleted");
    verify(&secret, &deleted);
    let deleted: Value = serde_json::from_str(&deleted.body).expect("json");
    assert_eq!(deleted["data"]["id"], json!(file_id), "{deleted}");

    // A deleted webhook is gone, and so are its deliveries.
    assert_eq!(app.delete_as(&format!("{hooks}/{hook}"), Some(&tenant.token)).await.status(), 204);
    let after = app.get_as(&format!("{hooks}/{hook}/deliveries"), Some(&tenant.token)).await;
    assert_error(after, 404, "not_found").await;
}

async fn private_targets_are_refused_unless_allowed(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let tenant = app.project_with_key(Value::Null).await;
    let (receiver, base) = Receiver::start(&[]).await;
    let hooks = format!("/projects/{}/webhooks", tenant.project_id);
    for url in [
        format!("{base}/flaky"),
        "http://localhost:9/x".to_owned(),
        "http://[::1]/x".to_owned(),
        "http://10.0.0.8/x".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::ffff:127.0.0.1]/x".to_owned(),
    ] {
        let body = json!({"url": url, "events": ["file.created"]});
        let why = assert_error(app.post_json(&hooks, Some(&tenant.token), &body).await, 400, "validation_failed").await;
        assert!(why.starts_with("url") && why.contains("WEBHOOK_ALLOW_PRIVATE"), "{url}: {why}");
    }

    // Registered while it was allowed (a server run with WEBHOOK_ALLOW_PRIVATE=true), delivered
    // by a worker where it is not: refused, once, and nothing reaches the receiver.
    let project = tenant.project_id.parse().expect("a UUID");
    let url = format!("{base}/flaky");
    let events = ["file.created".to_owned()];
    let row =
        mbk_host::db::webhooks::insert(&app.state.db, project, &url, &events, "whsec_AAAA").await.expect("insert");
    let hook = row.id.to_string();
    let made = app.upload("/upload/file", &tenant.key, "notes.txt", b"hello".to_vec()).await;
    assert_eq!(made.status(), 201);
    drain(&app).await;
    let listed = deliveries(&app, &tenant.token, &tenant.project_id, &hook).await;
    assert_eq!((&listed[0]["status"], &listed[0]["attempts"]), (&json!("failed"), &json!(1)), "{listed:?}");
    assert!(listed[0]["error"].as_str().expect("error").contains("loopback"), "{listed:?}");
    assert!(receiver.got("/flaky").is_empty(), "nothing reached the receiver");
}
