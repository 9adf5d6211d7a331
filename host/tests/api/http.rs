//! The HTTP skeleton: health, readiness, errors for unknown routes and methods, the spec.

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};

db_tests!(
    swagger_ui_tries_a_route_in_a_browser,
    healthz_says_ok,
    readyz_names_the_backends,
    readyz_is_503_when_the_database_is_gone,
    unknown_route_is_a_contract_404,
    wrong_method_is_a_contract_405,
    arrays_are_no_objects_in_bodies,
    openapi_and_swagger_ui_are_served_offline,
    request_id_is_echoed_or_made,
);

async fn healthz_says_ok(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

async fn readyz_names_the_backends(db: DbKind) {
    for store in [StoreKind::Filesystem, StoreKind::S3] {
        let app = TestApp::spawn(db, store).await;
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), 200, "{store:?}");
        let body: serde_json::Value = response.json().await.expect("json");
        let expected_db = match db {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        };
        let expected_store = match store {
            StoreKind::Filesystem => "filesystem",
            StoreKind::S3 => "s3",
        };
        assert_eq!(body, serde_json::json!({"status": "ok", "database": expected_db, "storage": expected_store}));
    }
}

async fn readyz_is_503_when_the_database_is_gone(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    app.state.db.close().await;
    let message = assert_error(app.get("/readyz").await, 503, "unavailable").await;
    assert!(message.contains("database"), "{message}");
    // The process keeps serving.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn unknown_route_is_a_contract_404(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let message = assert_error(app.get("/no/such").await, 404, "not_found").await;
    assert_eq!(message, "no route for GET /no/such");
    let long = format!("/{}", "x".repeat(10_000));
    assert_error(app.get(&long).await, 404, "not_found").await;
}

async fn wrong_method_is_a_contract_405(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let response = app.client.delete(app.url("/healthz")).send().await.expect("request");
    let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(allow.contains("GET"), "Allow: {allow:?}");
    assert_error(response, 405, "method_not_allowed").await;
    // tus routes too, whatever `Tus-Resumable` says: 412 is for the methods tus speaks there
    // (found by schemathesis: the protocol check answered before the method was routed).
    for (method, path) in
        [("TRACE", "/tus/"), ("PATCH", "/tus/"), ("POST", "/tus/0193a3b4-0000-7000-8000-000000000000")]
    {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = app.client.request(method.clone(), app.url(path)).header("tus-resumable", "0.2.2").send().await;
        assert_error(response.expect("request"), 405, "method_not_allowed").await;
    }
}

/// A body is a JSON object, at every level where the schema says object: serde alone would read
/// `[null, null]` as a struct (found by schemathesis: `PUT /projects/{id}` answered 200).
async fn arrays_are_no_objects_in_bodies(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, token) = app.user_with_token("uma", mbk_host::db::users::Role::User).await;
    let project = app.create_project(&token, "shapes").await;
    let path = format!("/projects/{}", project["id"].as_str().expect("id"));
    let array = app
        .client
        .put(app.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[null, null]")
        .send()
        .await
        .expect("request");
    let message = assert_error(array, 400, "validation_failed").await;
    assert!(message.starts_with("body:"), "{message}");
    let quotas = app.put_json(&path, Some(&token), &serde_json::json!({"settings": {"quotas": [null, null]}})).await;
    let message = assert_error(quotas, 400, "validation_failed").await;
    assert!(message.starts_with("settings.quotas:"), "{message}");
    let unchanged: serde_json::Value = app.get_as(&path, Some(&token)).await.json().await.expect("project");
    assert_eq!(unchanged["settings"], project["settings"], "nothing was changed");
}

async fn openapi_and_swagger_ui_are_served_offline(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let spec: serde_json::Value = app.get("/api-docs/openapi.json").await.json().await.expect("spec");
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{spec}");
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/me", "get"),
        ("/users", "post"),
        ("/users", "get"),
        ("/users/{id}", "delete"),
        ("/projects", "post"),
        ("/projects", "get"),
        ("/projects/{id}", "get"),
        ("/projects/{id}", "put"),
        ("/projects/{id}", "delete"),
        ("/projects/{id}/sync-variants", "post"),
        ("/projects/{id}/keys", "post"),
        ("/projects/{id}/keys", "get"),
        ("/projects/{id}/keys/{key_id}", "patch"),
        ("/projects/{id}/keys/{key_id}", "delete"),
        ("/upload/file", "post"),
        ("/upload/image", "post"),
        ("/files", "get"),
        ("/files/{id}", "get"),
        ("/files/{id}", "delete"),
        ("/files/{id}/content", "get"),
        ("/blobs/{key}", "get"),
        ("/jobs", "get"),
        ("/admin/jobs", "get"),
    ] {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} missing from the spec");
    }
    assert_eq!(spec["paths"]["/users"]["get"]["security"][0]["bearer"], serde_json::json!([]));
    assert!(spec["components"]["schemas"]["TokenResponse"].is_object());
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert!(spec["components"]["securitySchemes"]["api_key"].is_object());

    let page = app.get("/swagger-ui/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    // The assets come from the binary (vendored), not from a CDN.
    let css = app.get("/swagger-ui/swagger-ui.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.bytes().await.expect("css").len() > 10_000);
    let config = app.get("/swagger-ui/swagger-initializer.js").await.text().await.expect("js");
    assert!(config.contains("/api-docs/openapi.json"), "{config}");
}

/// The spec is generated from the handlers; this snapshot makes every change to it visible in
/// review. Regenerate with `MBK_UPDATE_SNAPSHOTS=1 scripts/test openapi_snapshot`.
#[test]
fn openapi_snapshot() {
    let spec = mbk_host::http::openapi().to_pretty_json().expect("spec") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("MBK_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &spec).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == spec,
        "the OpenAPI spec changed; review it and regenerate {} with MBK_UPDATE_SNAPSHOTS=1",
        path.display()
    );
}

/// The spec, as served, is valid OpenAPI 3.1 to a validator nobody here wrote
/// (`openapi-spec-validator`, PyPI, in the venv `scripts/test` makes): client generators refuse
/// what it refuses (a response without a description, say).
#[test]
fn the_spec_is_valid_openapi_3_1() {
    let python = std::env::var("MBK_TEST_PYTHON").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("MBK_TEST_PYTHON is not set: run the suite with scripts/test, which makes a venv with the validator")
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, mbk_host::http::openapi().to_pretty_json().expect("spec")).expect("write");
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator", "--schema", "3.1", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("the validator runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains(": OK"), "openapi-spec-validator refuses the spec:\n{said}");
}

/// Swagger UI in a real browser (Debian's Chromium, driven by playwright-core from npm):
/// Authorize with a bearer token, "Try it out" on `GET /auth/me`, and see 200 with the username
/// (`tests/console/swagger.cjs`; its screenshot is kept in `artifacts/swagger/`).
async fn swagger_ui_tries_a_route_in_a_browser(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, token) = app.user_with_token("swagger-reader", mbk_host::db::users::Role::User).await;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let shots = workspace.join("artifacts/swagger").join(format!("{db:?}").to_lowercase());
    let out = tokio::process::Command::new("node")
        .arg(workspace.join("host/tests/console/swagger.cjs"))
        .env("MBK_SWAGGER_URL", &app.base)
        .env("MBK_SWAGGER_TOKEN", &token)
        .env("MBK_SWAGGER_USER", "swagger-reader")
        .env("MBK_SWAGGER_SHOTS", &shots)
        .env("MBK_TEST_NODE_MODULES", crate::console::node_modules())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "Swagger UI in the browser failed (see {}):\n{said}", shots.display());
    assert!(said.contains(r#""status":200"#) && said.contains(r#""username":"swagger-reader""#), "{said}");
    assert!(shots.join("swagger-auth-me.png").is_file(), "no screenshot");
}

/// Redocly's linter (`@redocly/cli` from npm, its recommended rules; `tests/console/redocly.yaml`
/// says why one is off) finds no error in the spec: every operation says how it is
/// authenticated (`security: [{}]` when it is not), the spec names its server.
#[test]
fn redocly_lint_finds_no_error_in_the_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, mbk_host::http::openapi().to_pretty_json().expect("spec")).expect("write");
    let modules = std::path::PathBuf::from(crate::console::node_modules());
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/redocly.yaml");
    let out = std::process::Command::new(modules.join(".bin/redocly"))
        .args(["lint", "--format", "stylish", "--config"])
        .arg(&config)
        .arg(&file)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .output()
        .expect("redocly runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = said.lines().filter(|l| l.split_whitespace().nth(1) == Some("error")).collect();
    assert!(out.status.success() && errors.is_empty(), "redocly lint finds errors:\n{said}");
}

async fn request_id_is_echoed_or_made(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.expect("request");
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let hostile = app.client.get(app.url("/healthz")).header("x-request-id", "a\"b c").send().await.expect("request");
    let made = hostile.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
}
