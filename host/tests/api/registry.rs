//! The plugin registry over HTTP: `GET/POST /plugins`, `DELETE /plugins/{id}`, the role matrix,
//! refusals with `invalid_plugin`, and variants rendered by a registered plugin through the queue.

use mbk_host::db::users::Role;
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests, drain, fixture, matrix_tests};

db_tests!(registry_lists_registers_refuses_and_deletes, concurrent_deletes_keep_the_last_version_a_project_uses);
mod render {
    use super::*;
    matrix_tests!(a_variant_renders_through_a_registered_plugin_and_never_falls_back);
}

pub(crate) fn wasm(var_path: &str) -> Vec<u8> {
    let bytes = std::fs::read(var_path).unwrap_or_else(|e| panic!("{var_path}: {e}"));
    assert!(!bytes.is_empty(), "{var_path} is empty: host/build.rs could not build it (see the build warnings)");
    bytes
}

pub(crate) fn hostile() -> Vec<u8> {
    wasm(env!("MBK_TEST_HOSTILE_WASM"))
}

pub(crate) fn sepia() -> Vec<u8> {
    wasm(env!("MBK_TEST_SEPIA_WASM"))
}

/// `POST /plugins` with the three multipart fields (any of them may be left out).
pub(crate) async fn register(
    app: &TestApp,
    token: &str,
    file: Option<Vec<u8>>,
    name: Option<&str>,
    version: Option<&str>,
) -> reqwest::Response {
    register_at(&app.client, &app.base, token, file, name, version).await
}

/// [`register`] against any running host at `base`.
pub(crate) async fn register_at(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    file: Option<Vec<u8>>,
    name: Option<&str>,
    version: Option<&str>,
) -> reqwest::Response {
    let boundary = format!("mbk-test-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    let mut part = |header: String, data: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{header}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    if let Some(name) = name {
        part("Content-Disposition: form-data; name=\"name\"".into(), name.as_bytes());
    }
    if let Some(version) = version {
        part("Content-Disposition: form-data; name=\"version\"".into(), version.as_bytes());
    }
    if let Some(file) = file {
        part(
            "Content-Disposition: form-data; name=\"file\"; filename=\"p.wasm\"\r\nContent-Type: application/wasm"
                .into(),
            &file,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    client
        .post(format!("{base}/plugins"))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get_as("/plugins", Some(token)).await;
    assert_eq!(response.status(), 200);
    response.json::<Vec<Value>>().await.expect("json")
}

async fn registry_lists_registers_refuses_and_deletes(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (_, ada) = app.user_with_token("ada", Role::Admin).await;
    let (_, uma) = app.user_with_token("uma", Role::User).await;

    // Anyone logged in lists; the builtin is there from the start.
    let builtin = list(&app, &uma).await;
    assert_eq!(builtin.len(), 1);
    assert_eq!((&builtin[0]["name"], &builtin[0]["builtin"]), (&json!("mbk-standard"), &json!(true)));
    assert_eq!(builtin[0]["world"], "mbk:plugin/plugin@0.3.0");
    assert_eq!(builtin[0]["size"].as_u64(), Some(mbk_host::pipeline::STANDARD_COMPONENT.len() as u64));
    assert_error(app.get_as("/plugins", None).await, 401, "unauthorized").await;

    // Only su and admin register.
    assert_error(register(&app, &uma, Some(sepia()), Some("sepia"), Some("1.0.0")).await, 403, "forbidden").await;
    // A su's plugin is global: every project may name it.
    let created = register(&app, &su, Some(sepia()), Some("sepia"), Some("1.0.0")).await;
    assert_eq!(created.status(), 201);
    let plugin: Value = created.json().await.expect("json");
    assert_eq!(plugin["name"], "sepia");
    assert_eq!(plugin["version"], "1.0.0");
    assert_eq!(plugin["builtin"], false);
    assert_eq!((&plugin["visibility"], &plugin["owner_id"]), (&json!("global"), &Value::Null));
    assert_eq!(plugin["world"], "mbk:plugin/plugin@0.3.0");
    assert_eq!(plugin["size"].as_u64(), Some(sepia().len() as u64));
    assert_eq!(plugin["sha256"], hex::encode(sha2::Sha256::digest(sepia())));
    for field in ["id", "created_at"] {
        assert!(plugin[field].is_string(), "{field}: {plugin}");
    }
    let stored: Vec<String> = app.store().list("plugins/").await.expect("list").into_iter().map(|o| o.key).collect();
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    let key = stored[0].clone();
    let digest = plugin["sha256"].as_str().expect("sha");
    assert!(
        key.starts_with(&format!("plugins/{digest}-")) && key.len() > format!("plugins/{digest}-.wasm").len() + 16,
        "{key}"
    );
    // The bytes are not public, even to someone who read the digest from the list.
    assert_error(app.get(&format!("/blobs/{key}")).await, 404, "not_found").await;

    // Refusals, each with the contract's body.
    assert_error(register(&app, &su, Some(sepia()), Some("sepia"), Some("1.0.0")).await, 409, "conflict").await;
    assert_error(register(&app, &su, Some(sepia()), Some("mbk-standard"), Some("9")).await, 409, "conflict").await;
    let why = assert_error(
        register(&app, &su, Some(b"MZ not wasm".to_vec()), Some("junk"), Some("1")).await,
        422,
        "invalid_plugin",
    )
    .await;
    assert!(why.contains("component"), "{why}");
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let why =
        assert_error(register(&app, &su, Some(core_module), Some("core"), Some("1")).await, 422, "invalid_plugin")
            .await;
    assert!(why.contains("not a WebAssembly component"), "{why}");
    let why = assert_error(
        register(&app, &su, Some(wasm(env!("MBK_TEST_SNOOP_WASM"))), Some("snoop"), Some("1")).await,
        422,
        "invalid_plugin",
    )
    .await;
    assert!(why.contains("wasi:filesystem"), "a plugin asking for the filesystem is refused: {why}");
    assert_error(register(&app, &su, Some(sepia()), Some("sepia2"), None).await, 400, "validation_failed").await;
    assert_error(register(&app, &su, Some(sepia()), None, Some("1")).await, 400, "validation_failed").await;
    assert_error(register(&app, &su, None, Some("sepia2"), Some("1")).await, 400, "validation_failed").await;
    assert_error(register(&app, &su, Some(sepia()), Some("Sepia!"), Some("1")).await, 400, "validation_failed").await;
    let not_multipart = app.client.post(app.url("/plugins")).bearer_auth(&su).body("x").send().await.expect("request");
    assert_eq!(not_multipart.status(), 415);

    let all = list(&app, &uma).await;
    assert_eq!(all.iter().map(|p| p["name"].as_str().expect("name")).collect::<Vec<_>>(), ["mbk-standard", "sepia"]);

    // A project names it; the last version of a name in use cannot go.
    let settings = json!({"variants": [{"name": "toned", "width": 64, "height": 64, "fit": "cover", "format": "png", "quality": 90, "plugin": "sepia"}]});
    let project = app.post_json("/projects", Some(&uma), &json!({"name": "uses sepia", "settings": settings})).await;
    assert_eq!(project.status(), 201);
    let project: Value = project.json().await.expect("json");
    let unknown = json!({"variants": [{"name": "x", "width": 64, "height": 64, "fit": "cover", "format": "png", "quality": 90, "plugin": "nope"}]});
    let refused = app.post_json("/projects", Some(&uma), &json!({"name": "nope", "settings": unknown})).await;
    let why = assert_error(refused, 400, "validation_failed").await;
    assert!(why.contains("no plugin named \"nope\" is registered"), "{why}");

    let path = format!("/plugins/{}", plugin["id"].as_str().expect("id"));
    assert_error(app.delete_as(&path, Some(&su)).await, 409, "conflict").await;
    assert_error(app.delete_as(&path, Some(&ada)).await, 403, "forbidden").await;
    assert_error(app.delete_as(&path, Some(&uma)).await, 403, "forbidden").await;
    assert_error(
        app.delete_as(&format!("/plugins/{}", builtin[0]["id"].as_str().expect("id")), Some(&su)).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(app.delete_as(&format!("/plugins/{}", uuid::Uuid::now_v7()), Some(&su)).await, 404, "not_found").await;
    assert_error(app.delete_as("/plugins/not-a-uuid", Some(&su)).await, 400, "bad_request").await;

    // A second version keeps the name alive: the first may go.
    let v2: Value = register(&app, &su, Some(sepia()), Some("sepia"), Some("2.0.0")).await.json().await.expect("json");
    assert_eq!(app.delete_as(&path, Some(&su)).await.status(), 204);
    let left: Vec<String> = app.store().list("plugins/").await.expect("list").into_iter().map(|o| o.key).collect();
    assert_eq!(left.len(), 1, "v1's object went with it, v2's stays: {left:?}");
    assert_ne!(left[0], key);
    // Once no project names it, the last version goes too, with its object.
    let plain = json!({"settings": {"variants": [{"name": "toned", "width": 64, "height": 64, "fit": "cover", "format": "png", "quality": 90}]}});
    assert_eq!(
        app.put_json(&format!("/projects/{}", project["id"].as_str().expect("id")), Some(&uma), &plain).await.status(),
        200
    );
    assert_eq!(app.delete_as(&format!("/plugins/{}", v2["id"].as_str().expect("id")), Some(&su)).await.status(), 204);
    assert_eq!(list(&app, &uma).await.len(), 1);
    assert!(app.store().list("plugins/").await.expect("list").is_empty(), "the objects are gone");
}

async fn a_variant_renders_through_a_registered_plugin_and_never_falls_back(db: DbKind, store: StoreKind) {
    let app = TestApp::spawn(db, store).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    assert_eq!(register(&app, &su, Some(sepia()), Some("sepia"), Some("1.0.0")).await.status(), 201);
    let hostile = wasm(env!("MBK_TEST_HOSTILE_WASM"));
    assert_eq!(register(&app, &su, Some(hostile), Some("hostile"), Some("1")).await.status(), 201);
    let settings = json!({"variants": [
        {"name": "toned", "width": 120, "height": 90, "fit": "cover", "format": "png", "quality": 90, "plugin": "sepia"},
        {"name": "plain", "width": 120, "height": 90, "fit": "cover", "format": "png", "quality": 90},
        {"name": "broken", "width": 120, "height": 90, "fit": "cover", "format": "png", "quality": 90, "plugin": "hostile", "params": {"mode": "panic"}}]});
    let t = app.project_with_key(settings).await;
    let file: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    assert_eq!(drain(&app).await, 1);

    let id = file["id"].as_str().expect("id");
    let file: Value = app.get_with_key(&format!("/files/{id}"), &t.key).await.json().await.expect("json");
    let png = |name: &str| {
        let app = &app;
        let key = t.key.clone();
        let name = name.to_owned();
        async move {
            let response = app.get_with_key(&format!("/files/{id}/content?variant={name}"), &key).await;
            let response = match store {
                StoreKind::Filesystem => response,
                StoreKind::S3 => {
                    reqwest::get(response.headers()["location"].to_str().expect("ascii")).await.expect("presigned")
                }
            };
            assert_eq!(response.status(), 200, "{name}");
            image::load_from_memory(&response.bytes().await.expect("bytes")).expect("png").to_rgb8()
        }
    };
    let warm = |img: &image::RgbImage| img.pixels().filter(|p| p.0[0] >= p.0[1] && p.0[1] >= p.0[2]).count();
    let toned = png("toned").await;
    let plain = png("plain").await;
    assert_eq!((toned.dimensions(), plain.dimensions()), ((120, 90), (120, 90)));
    assert_eq!(file["variants"]["toned"]["status"], "ready");
    // Lanczos may overshoot a channel by a step here and there: almost everywhere.
    assert!(warm(&toned) > 120 * 90 * 95 / 100, "sepia: r >= g >= b almost everywhere");
    // Same source, same size and fit: without the plugin's toning the two would be identical.
    let diff: u64 = toned.as_raw().iter().zip(plain.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    let mean = diff as f64 / toned.as_raw().len() as f64;
    assert!(mean > 5.0, "the plugin changed the picture (mean difference {mean:.1} per channel)");

    // The hostile plugin's crash fails its variant only, with the reason; no fallback to native.
    let broken = &file["variants"]["broken"];
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["error"].as_str().is_some_and(|e| e.contains("crashed") && e.contains("panics on purpose")),
        "{broken}"
    );
    assert_eq!(file["status"], "ready", "the file is ready: two of three variants are");
    let jobs: Value = app.get_with_key("/jobs", &t.key).await.json().await.expect("json");
    assert_eq!(jobs["items"][0]["status"], "failed");
    assert!(
        jobs["items"][0]["error"].as_str().is_some_and(|e| e.starts_with("1 variant(s) failed: broken:")),
        "{jobs}"
    );
}

async fn concurrent_deletes_keep_the_last_version_a_project_uses(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let mut version = 0;
    let mut register_next = async || {
        version += 1;
        let created = register(&app, &su, Some(sepia()), Some("sepia"), Some(&format!("{version}.0.0"))).await;
        assert_eq!(created.status(), 201);
        created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned()
    };
    let mut ids = vec![register_next().await, register_next().await];
    let settings = json!({"variants": [{"name": "toned", "width": 64, "height": 64, "fit": "cover", "format": "png", "quality": 90, "plugin": "sepia"}]});
    let project = app.post_json("/projects", Some(&su), &json!({"name": "uses sepia", "settings": settings})).await;
    assert_eq!(project.status(), 201);

    for round in 0..4 {
        // Every version of the name at once: exactly one may stay.
        let (app, su) = (&app, &su);
        let deletes = ids.iter().map(|id| async move { app.delete_as(&format!("/plugins/{id}"), Some(su)).await });
        let mut statuses: Vec<u16> =
            futures_util::future::join_all(deletes).await.into_iter().map(|r| r.status().as_u16()).collect();
        statuses.sort();
        let mut expected = vec![204; ids.len() - 1];
        expected.push(409);
        assert_eq!(statuses, expected, "round {round}");
        let left: Vec<String> = list(app, su)
            .await
            .into_iter()
            .filter(|p| p["name"] == "sepia")
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect();
        assert_eq!(left.len(), 1, "round {round}: one version stays for the project: {left:?}");
        ids = vec![left[0].clone(), register_next().await, register_next().await];
    }
}

/// One plugin engine per process: the renderer a worker process builds (`Renderer::for_app`, what
/// `serve` and `worker` call) runs on the App's engine, the one that checks uploads, so a process
/// holds one instance pool and one epoch thread. Native standard engine: nothing to compile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_renderer_runs_on_the_apps_plugin_engine() {
    let app = TestApp::spawn_with(DbKind::Sqlite, StoreKind::Filesystem, |c| {
        c.pipeline_engine = mbk_host::config::PipelineEngine::Native;
    })
    .await;
    let state = app.state.clone();
    let renderer = tokio::task::spawn_blocking(move || mbk_host::pipeline::Renderer::for_app(&state))
        .await
        .expect("joins")
        .expect("renderer");
    let engine = app.state.plugin_engine().expect("engine");
    assert!(std::sync::Arc::ptr_eq(renderer.plugins(), &engine), "the renderer built a second engine");
}
