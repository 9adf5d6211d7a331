//! `/tus/` with clients nobody on the team wrote: `tuspy` (the Python tus client from PyPI,
//! in the venv `scripts/test` makes) uploads 50 MB in 5 MiB chunks, is SIGKILLed half-way,
//! resumes from its URL store, and the File's sha256 is the local file's (on both stores); and
//! browsers: CORS preflights and `Access-Control-Allow-Origin` for the project's origins only.

use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::tus::{header, sha256_hex, tus};
use crate::helpers::{DbKind, StoreKind, TestApp, db_tests, pattern, store_tests};

store_tests!(tuspy_resumes_an_upload_killed_half_way);
db_tests!(browsers_of_the_projects_origins_may_use_tus);

const SIZE: usize = 50_000_000;
const CHUNK: usize = 5 << 20;

/// The Python with `tuspy` installed. `scripts/test` makes the venv and sets it; running this
/// test without it is an error, not a silent skip.
fn python() -> String {
    std::env::var("MBK_TEST_PYTHON").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!("MBK_TEST_PYTHON is not set: run the suite with scripts/test, which makes a venv with tuspy")
    })
}

fn client_run(app: &TestApp, key: &str, file: &std::path::Path, urls: &std::path::Path) -> tokio::process::Command {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus/tuspy_upload.py");
    let mut command = tokio::process::Command::new(python());
    command
        .arg(script)
        .arg(app.url("/tus/"))
        .arg(file)
        .arg(urls)
        .arg(CHUNK.to_string())
        .env("MBK_TUS_API_KEY", key)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn tuspy_resumes_an_upload_killed_half_way(store: StoreKind) {
    let app = TestApp::spawn(DbKind::Sqlite, store).await;
    let t = app.project_with_key(json!({"quotas": {"max_file_bytes": 100 << 20}})).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("big.bin");
    let data = pattern(SIZE, 50);
    std::fs::write(&file, &data).expect("write the file");
    let urls = dir.path().join("urls.json");

    // First run: killed (SIGKILL) once it has sent three chunks, wherever it is in the fourth.
    let mut first = client_run(&app, &t.key, &file, &urls).spawn().expect("python runs");
    let mut lines = BufReader::new(first.stdout.take().expect("stdout")).lines();
    let mut url = None;
    let mut chunks = 0;
    while let Some(line) = lines.next_line().await.expect("read") {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["url", u, "0"] => url = Some(u.to_owned()),
            ["chunk", _] => chunks += 1,
            _ => panic!("unexpected line of the first run: {line}"),
        }
        if chunks == 3 {
            break;
        }
    }
    first.kill().await.expect("SIGKILL");
    let url = url.expect("the client said its URL");
    let head = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    let offset: usize = header(&head, "upload-offset").expect("offset").parse().expect("a number");
    assert!((3 * CHUNK..SIZE).contains(&offset), "a partial upload, at least three chunks: {offset}");
    assert_eq!(header(&head, "upload-file-id"), None);

    // Second run: resumes from the stored URL at the server's offset and finishes.
    let second = client_run(&app, &t.key, &file, &urls).output().await.expect("python runs");
    let out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(second.status.success(), "the resumed run failed: {out}");
    // Where the server said it stopped (later, if the killed PATCH settled after our HEAD).
    let first_line = out.lines().next().expect("a line");
    let resumed_at = first_line.strip_prefix(&format!("url {url} ")).expect("the same upload, resumed");
    let resumed_at: usize = resumed_at.parse().expect("an offset");
    assert!((offset..SIZE).contains(&resumed_at), "resumed at {resumed_at}, HEAD said {offset}");
    let head = tus(&app, Method::HEAD, &url).header("x-api-key", &t.key).send().await.expect("head");
    let file_id = header(&head, "upload-file-id").expect("finished").to_owned();
    assert!(out.trim_end().ends_with(&format!("done {file_id}")), "{out}");
    let made: Value = app.get_with_key(&format!("/files/{file_id}"), &t.key).await.json().await.expect("json");
    assert_eq!((&made["size"], &made["filename"]), (&json!(SIZE), &json!("big.bin")), "{made}");
    assert_eq!(made["sha256"], json!(sha256_hex(&data)), "the bytes are the local file's");
    assert!(app.store().list(&format!("{}tus/", t.prefix)).await.expect("list").is_empty(), "parts removed");
}

async fn browsers_of_the_projects_origins_may_use_tus(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let origin = "https://app.example.com";
    let t = app.project_with_key(json!({"cors_origins": [origin]})).await;
    let preflight = |path: String, from: &'static str, method: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url(&path))
            .header("origin", from)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "tus-resumable, upload-length, upload-token")
            .send()
    };
    // The creation: no project in its path, none in its preflight's headers.
    let allowed = preflight("/tus/".into(), origin, "POST").await.expect("preflight");
    assert_eq!(allowed.status(), 204);
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(origin));
    let methods = header(&allowed, "access-control-allow-methods").expect("methods");
    assert!(methods.contains("PATCH") && methods.contains("DELETE") && methods.contains("HEAD"), "{methods}");
    assert!(header(&allowed, "access-control-allow-headers").expect("headers").contains("upload-offset"));
    let refused = preflight("/tus/".into(), "https://evil.example.com", "POST").await.expect("preflight");
    assert_eq!(header(&refused, "access-control-allow-origin"), None);

    // A page with an upload token creates; the answer is readable, Location and all.
    let issued = app.client.post(app.url("/upload-tokens")).header("x-api-key", &t.key);
    let issued: Value = issued
        .json(&json!({"kind": "any", "max_bytes": 1000}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let made = tus(&app, Method::POST, "/tus/")
        .header("origin", origin)
        .header("upload-token", issued["token"].as_str().expect("token"))
        .header("upload-length", "3")
        .send()
        .await
        .expect("create");
    assert_eq!(made.status(), 201);
    assert_eq!(header(&made, "access-control-allow-origin"), Some(origin));
    assert!(header(&made, "access-control-expose-headers").expect("exposed").contains("location"));
    let url = header(&made, "location").expect("location").to_owned();
    let path = url.strip_prefix(&app.base).expect("ours").to_owned();

    // The upload's own routes go by its project.
    let allowed = preflight(path.clone(), origin, "PATCH").await.expect("preflight");
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(origin));
    let refused = preflight(path.clone(), "https://evil.example.com", "PATCH").await.expect("preflight");
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    let head = tus(&app, Method::HEAD, &url).header("origin", origin).header("x-api-key", &t.key).send().await;
    let head = head.expect("head");
    assert_eq!(header(&head, "access-control-allow-origin"), Some(origin));
    assert!(header(&head, "access-control-expose-headers").expect("exposed").contains("upload-offset"));
    let other = tus(&app, Method::HEAD, &url).header("origin", "https://evil.example.com").header("x-api-key", &t.key);
    assert_eq!(header(&other.send().await.expect("head"), "access-control-allow-origin"), None);
}
