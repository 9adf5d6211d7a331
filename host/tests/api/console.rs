//! The console as a person uses it: `mbk-host serve` (the real binary, its own workers) and
//! Debian's headless Chromium driven by playwright-core (`tests/console/flow.cjs`): log in,
//! create a project, make a key, drag and drop two photos, see their thumbnails, open one and
//! see every variant, change a variant's size and sync, see the job complete, delete a file;
//! axe-core on every page. Then the API confirms what the browser did. Screenshots are kept in
//! `artifacts/console/`. On SQLite with the filesystem (a public project) and on PostgreSQL with
//! S3 (a private one: signed thumbnails).
//! Also the page's own guarantees: its assets are embedded, revalidated, and locked down.

use std::process::Stdio;

use serde_json::Value;

use crate::cli::{Running, bare, free_port, superuser_with, wait_until_up};
use crate::helpers::{DbKind, StoreKind, TestApp, TestDb, s3_config};

// Each browser run takes a minute: SQLite with the filesystem, PostgreSQL with S3, not all four.
mod sqlite {
    use crate::helpers::{DbKind, StoreKind};

    mod filesystem {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_person_uses_the_console_in_a_browser() {
            super::super::a_person_uses_the_console_in_a_browser(super::DbKind::Sqlite, super::StoreKind::Filesystem)
                .await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_console_is_served_locked_down() {
        super::the_console_is_served_locked_down(DbKind::Sqlite).await
    }
}
mod postgres {
    use crate::helpers::{DbKind, StoreKind};

    mod s3 {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_person_uses_the_console_in_a_browser() {
            super::super::a_person_uses_the_console_in_a_browser(super::DbKind::Postgres, super::StoreKind::S3).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_console_is_served_locked_down() {
        super::the_console_is_served_locked_down(DbKind::Postgres).await
    }
}

const PASSWORD: &str = "console-test-password";

/// Where `scripts/test` installed playwright-core and axe-core; running without is an error.
pub(crate) fn node_modules() -> String {
    std::env::var("MBK_TEST_NODE_MODULES").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("MBK_TEST_NODE_MODULES is not set: run the suite with scripts/test, which installs playwright-core")
    })
}

fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// `mbk-host` with this test's database and store.
fn host(cwd: &std::path::Path, db_url: &str, secret: &str, store: StoreKind, port: u16) -> std::process::Command {
    let mut cmd = bare(cwd);
    cmd.env("DB_URL", db_url)
        .env("JWT_SECRET", secret)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        // The webhook the browser adds points at this machine.
        .env("WEBHOOK_ALLOW_PRIVATE", "true");
    if store == StoreKind::S3 {
        let s3 = s3_config();
        cmd.env("S3_BUCKET_NAME", s3.bucket)
            .env("S3_ENDPOINT", s3.endpoint.unwrap_or_default())
            .env("S3_REGION", s3.region)
            .env("AWS_ACCESS_KEY", s3.access_key)
            .env("AWS_SECRET_KEY", s3.secret_key)
            .env("S3_FORCE_PATH_STYLE", "true");
        if let Some(public) = s3.public_url {
            cmd.env("S3_PUBLIC_URL", public);
        }
    }
    cmd
}

async fn a_person_uses_the_console_in_a_browser(db: DbKind, store: StoreKind) {
    let test_db = TestDb::new(db).await;
    let cwd = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let secret: String = mbk_host::auth::api_keys::generate().key.replace('_', "");
    let mut made = host(cwd.path(), &test_db.url, &secret, store, port);
    made.arg("superuser");
    let out = superuser_with(made, "root", PASSWORD);
    assert!(out.status.success(), "superuser: {}", String::from_utf8_lossy(&out.stderr));
    let mut serve = host(cwd.path(), &test_db.url, &secret, store, port);
    serve.arg("serve");
    let mut running = Running::start(serve);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, &mut running).await;

    // On S3 the project is private: the grid's thumbnails are then presigned URLs (Garage
    // serves no anonymous reads); on the filesystem public, plain `/blobs/` URLs.
    let private = store == StoreKind::S3;
    let combo = format!("{db:?}-{store:?}").to_lowercase();
    let shots = workspace().join("artifacts/console").join(&combo);
    let fixtures = workspace().join("host/tests/fixtures");
    let photos = format!("{}:{}", fixtures.join("photo.jpg").display(), fixtures.join("photo-rotated.jpg").display());
    let browser = tokio::process::Command::new("node")
        .arg(workspace().join("host/tests/console/flow.cjs"))
        .env("MBK_CONSOLE_URL", &base)
        .env("MBK_CONSOLE_USER", "root")
        .env("MBK_CONSOLE_PASSWORD", PASSWORD)
        .env("MBK_CONSOLE_PHOTOS", photos)
        .env("MBK_CONSOLE_SHOTS", &shots)
        .env("MBK_CONSOLE_PRIVATE", if private { "1" } else { "0" })
        .env("MBK_CONSOLE_PLUGIN", env!("MBK_TEST_SEPIA_WASM"))
        .env("MBK_TEST_NODE_MODULES", node_modules())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&browser.stdout);
    // The refusals the flow met on purpose (bad password, short password…), for the log.
    eprintln!("{}", String::from_utf8_lossy(&browser.stderr));
    assert!(
        browser.status.success(),
        "the browser flow failed (screenshots in {}):\n{}\n{stdout}\nhost log:\n{}",
        shots.display(),
        String::from_utf8_lossy(&browser.stderr),
        running.log()
    );
    let report: Value = serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON report");
    let checked: Vec<&str> = report["checked"].as_array().expect("pages").iter().filter_map(Value::as_str).collect();
    for page in
        ["login", "projects", "keys", "media", "file", "settings", "jobs", "webhooks", "admin-jobs", "plugins", "users"]
    {
        assert!(checked.contains(&page), "axe did not check {page}: {checked:?}");
    }
    for shot in ["media-grid", "media-grid-phone", "file", "jobs"] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "no screenshot {shot}");
    }

    // What the browser did, seen through the API.
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("tokens");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let get = |path: String| client.get(format!("{base}{path}")).bearer_auth(&token).send();
    let json = async |path: String| -> Value { get(path).await.expect("an answer").json().await.expect("JSON") };
    let project: Value = json(format!("/projects/{}", report["project_id"].as_str().expect("present"))).await;
    assert_eq!(project["name"], "Holiday photos");
    let thumbnail = &project["settings"]["variants"][0];
    assert_eq!(
        (thumbnail["name"].as_str(), thumbnail["width"].as_i64(), thumbnail["height"].as_i64()),
        (Some("thumbnail"), Some(120), Some(120))
    );
    let files: Value = json(format!("/files?project_id={}", project["id"].as_str().expect("present"))).await;
    assert_eq!(files["total"], 1, "one file left: {files}");
    let kept = &files["items"][0];
    assert_eq!(kept["id"], report["kept_file_id"]);
    let variant = &kept["variants"]["thumbnail"];
    assert_eq!(
        (variant["status"].as_str(), variant["width"].as_i64(), variant["height"].as_i64()),
        (Some("ready"), Some(120), Some(120))
    );
    // An absent visibility is the default, public.
    let visibility = project["settings"]["visibility"].as_str().unwrap_or("public");
    assert_eq!(visibility, if private { "private" } else { "public" });
    let url = variant["url"].as_str().expect("present");
    assert_eq!(url.contains("sig=") || url.contains("X-Amz-Signature="), private, "{url}");
    let bytes = client
        .get(variant["url"].as_str().expect("present"))
        .send()
        .await
        .expect("thumbnail")
        .bytes()
        .await
        .expect("an answer");
    let decoded = image::load_from_memory(&bytes).expect("the thumbnail decodes");
    assert_eq!((decoded.width(), decoded.height()), (120, 120));
    let deleted =
        get(format!("/files/{}", report["deleted_file_id"].as_str().expect("present"))).await.expect("an answer");
    assert_eq!(deleted.status(), 404);
    let keys: Value = json(format!("/projects/{}/keys", project["id"].as_str().expect("present"))).await;
    assert_eq!(keys["total"], 1, "the key the console made: {keys}");
    let hooks: Value = json(format!("/projects/{}/webhooks", project["id"].as_str().expect("present"))).await;
    assert_eq!(hooks["items"][0]["url"], "http://127.0.0.1:9/hooks");
    let plugins: Value = json("/plugins".into()).await;
    let sepia = plugins.as_array().expect("list").iter().find(|p| p["name"] == "sepia").expect("sepia registered");
    assert_eq!(sepia["version"], "1.0.0");
    let users: Value = json("/users".into()).await;
    let ada = users["items"].as_array().expect("users").iter().find(|u| u["username"] == "ada").expect("ada made");
    assert_eq!(ada["role"], "admin");
}

async fn the_console_is_served_locked_down(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let page = app.get("/console").await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().expect("present").starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().expect("present").to_owned();
    for part in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    let html = page.text().await.expect("an answer");
    assert!(html.contains(r#"<script type="module" src="/console/app.js">"#), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    let script = app.get("/console/app.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().expect("present").starts_with("text/javascript"));
    let etag = script.headers()["etag"].clone();
    let again =
        app.client.get(app.url("/console/app.js")).header("if-none-match", etag).send().await.expect("an answer");
    assert_eq!(again.status(), 304);

    for missing in ["/console/nope.js", "/console/..%2Fsrc%2Fmain.rs", "/console/%2e%2e%2fCargo.toml"] {
        let r = app.get(missing).await;
        assert_eq!(r.status(), 404, "{missing}");
        let body: Value = r.json().await.expect("an answer");
        assert_eq!(body["error"]["code"], "not_found", "{missing}");
    }
}
