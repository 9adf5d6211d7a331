//! The test harness: a real app on port 0 against a fresh database, on either backend.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use mbk_host::AppState;
use mbk_host::auth::service;
use mbk_host::config::{Config, S3Config};
use mbk_host::db::users::Role;
use mbk_host::storage::BlobStore;
use sqlx::Connection;
use tempfile::TempDir;

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Filesystem,
    S3,
}

/// Generates `mod sqlite` and `mod postgres`, each running the named `async fn(DbKind)`s.
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::DbKind::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::DbKind::Postgres).await } )*
        }
    };
}
pub(crate) use db_tests;

/// Generates `mod filesystem` and `mod s3`, each running the named `async fn(StoreKind)`s.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod filesystem {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::StoreKind::Filesystem).await } )*
        }
        mod s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::helpers::StoreKind::S3).await } )*
        }
    };
}
pub(crate) use store_tests;

/// Generates `mod sqlite { mod filesystem, mod s3 }` and the same for `postgres`, each running
/// the named `async fn(DbKind, StoreKind)`s: every combination of the two backends.
macro_rules! matrix_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            mod filesystem {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() { super::super::$name($crate::helpers::DbKind::Sqlite, $crate::helpers::StoreKind::Filesystem).await } )*
            }
            mod s3 {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() { super::super::$name($crate::helpers::DbKind::Sqlite, $crate::helpers::StoreKind::S3).await } )*
            }
        }
        mod postgres {
            mod filesystem {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() { super::super::$name($crate::helpers::DbKind::Postgres, $crate::helpers::StoreKind::Filesystem).await } )*
            }
            mod s3 {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() { super::super::$name($crate::helpers::DbKind::Postgres, $crate::helpers::StoreKind::S3).await } )*
            }
        }
    };
}
pub(crate) use matrix_tests;

/// A multipart/form-data body with one `file` field streaming `data`, as a browser sends it.
pub fn multipart_body<S>(filename: &str, data: S) -> (String, reqwest::Body)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static,
{
    use futures_util::StreamExt;
    let boundary = format!("mbk-test-{}", uuid::Uuid::now_v7().simple());
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let stream = futures_util::stream::once(async move { Ok(bytes::Bytes::from(head)) })
        .chain(data)
        .chain(futures_util::stream::once(async move { Ok(bytes::Bytes::from(tail)) }));
    (format!("multipart/form-data; boundary={boundary}"), reqwest::Body::wrap_stream(stream))
}

/// `bytes` as a stream of 64 KiB chunks.
pub fn chunks(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static {
    let data = bytes::Bytes::from(bytes);
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> =
        (0..data.len()).step_by(64 * 1024).map(|i| Ok(data.slice(i..(i + 64 * 1024).min(data.len())))).collect();
    futures_util::stream::iter(pieces)
}

/// Deterministic, incompressible-looking bytes (xorshift), different for each `seed`.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = 0x9e37_79b9_u32 ^ seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// The renderer shared by the tests (wasm engine; compiling the component takes seconds).
pub fn renderer() -> std::sync::Arc<mbk_host::pipeline::Renderer> {
    static RENDERER: std::sync::OnceLock<std::sync::Arc<mbk_host::pipeline::Renderer>> = std::sync::OnceLock::new();
    RENDERER
        .get_or_init(|| {
            let settings = mbk_host::plugins::PluginSettings {
                memory_bytes: 512 << 20,
                timeout: std::time::Duration::from_secs(120),
                cache_dir: Some(std::env::temp_dir().join("mbk-test-plugin-cache")),
                instances: 32,
            };
            // Loading calls the component's `info()`, which blocks its thread; async tests get
            // here, and tokio refuses to block one of its own threads.
            let made = std::thread::spawn(move || {
                mbk_host::pipeline::Renderer::new(mbk_host::config::PipelineEngine::Wasm, settings)
            });
            std::sync::Arc::new(made.join().expect("joins").expect("renderer"))
        })
        .clone()
}

/// A test image from `tests/fixtures`.
/// Runs queued jobs with a worker of `app` until none is runnable; how many ran.
pub async fn drain(app: &TestApp) -> usize {
    mbk_host::jobs::Worker::new(app.state.clone(), renderer()).drain().await.expect("the queue answers")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The S3 server of this test run. `scripts/test` starts Garage and sets these; running the S3
/// tests without it is an error, not a silent skip.
pub fn s3_config() -> S3Config {
    let need = |name: &str| {
        env(name)
            .unwrap_or_else(|| panic!("{name} is not set: run the suite with scripts/test, which starts the S3 server"))
    };
    S3Config {
        bucket: need("MBK_TEST_S3_BUCKET"),
        endpoint: Some(need("MBK_TEST_S3_ENDPOINT")),
        region: env("MBK_TEST_S3_REGION").unwrap_or_else(|| "garage".into()),
        access_key: need("MBK_TEST_S3_ACCESS_KEY"),
        secret_key: need("MBK_TEST_S3_SECRET_KEY"),
        force_path_style: true,
        public_url: env("MBK_TEST_S3_PUBLIC_URL"),
    }
}

/// Tests whose processes scan a whole bucket (the cleanup's orphan scan) hold this and use
/// [`solo_bucket`] on S3: in the shared bucket they would meet every other test's objects.
pub static WHOLE_BUCKET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The second bucket `scripts/garage.sh` makes, for tests holding [`WHOLE_BUCKET`].
pub fn solo_bucket() -> String {
    env("MBK_TEST_S3_SOLO_BUCKET").expect("MBK_TEST_S3_SOLO_BUCKET (set by scripts/garage.sh)")
}

fn pg_admin_url() -> String {
    env("MBK_TEST_PG_URL").unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database made for one test and dropped when the test ends (even by a panic).
pub struct PgTestDb {
    pub name: String,
    pub url: String,
}

impl PgTestDb {
    pub async fn create() -> Self {
        let admin = pg_admin_url();
        let name = format!("mbk_t_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin} (set MBK_TEST_PG_URL): {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let (base, _) = admin.rsplit_once('/').expect("MBK_TEST_PG_URL ends in /DBNAME");
        PgTestDb { url: format!("{base}/{name}"), name }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A database of the given kind, fresh for this test.
pub struct TestDb {
    pub url: String,
    _pg: Option<PgTestDb>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(kind: DbKind) -> Self {
        match kind {
            DbKind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/mbk.db", dir.path().display());
                TestDb { url, _pg: None, _dir: Some(dir) }
            }
            DbKind::Postgres => {
                let pg = PgTestDb::create().await;
                TestDb { url: pg.url.clone(), _pg: Some(pg), _dir: None }
            }
        }
    }
}

/// The configuration a test app runs with, built through the same validation as production.
pub fn test_config(data_dir: &std::path::Path, db_url: &str, store: StoreKind, bind: SocketAddr) -> Config {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATA_DIR", data_dir.display().to_string()),
        ("DB_URL", db_url.to_owned()),
        ("JWT_SECRET", TEST_JWT_SECRET.to_owned()),
        ("BIND_ADDR", bind.to_string()),
        ("PUBLIC_BASE_URL", format!("http://{bind}")),
    ]);
    if store == StoreKind::S3 {
        let s3 = s3_config();
        vars.insert("S3_BUCKET_NAME", s3.bucket);
        vars.insert("S3_ENDPOINT", s3.endpoint.unwrap_or_default());
        vars.insert("S3_REGION", s3.region);
        vars.insert("AWS_ACCESS_KEY", s3.access_key);
        vars.insert("AWS_SECRET_KEY", s3.secret_key);
        vars.insert("S3_FORCE_PATH_STYLE", "true".into());
        if let Some(public) = s3.public_url {
            vars.insert("S3_PUBLIC_URL", public);
        }
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid")
}

/// A running app: the real router on a real socket.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _db: TestDb,
    _dir: TempDir,
}

impl TestApp {
    pub async fn spawn(db: DbKind, store: StoreKind) -> TestApp {
        Self::spawn_with(db, store, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with a chance to adjust the configuration (short token TTLs...).
    pub async fn spawn_with(db: DbKind, store: StoreKind, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let test_db = TestDb::new(db).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path(), &test_db.url, store, addr);
        adjust(&mut config);
        let state = AppState::init(config).await.expect("app starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(mbk_host::app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp { addr, base: format!("http://{addr}"), client, state, shutdown: Some(tx), _db: test_db, _dir: dir }
    }

    /// Another app on the same database, with an adjusted configuration (e.g. a dead blob
    /// store), to see how the API behaves when a dependency fails.
    pub async fn sibling(
        &self,
        adjust: impl FnOnce(&mut Config),
    ) -> (String, AppState, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = self.state.config.clone();
        adjust(&mut config);
        let state = AppState::init(config).await.expect("sibling starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(mbk_host::app::serve(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        (format!("http://{addr}"), state, tx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub fn store(&self) -> &dyn BlobStore {
        self.state.store.as_ref()
    }

    /// Makes a user directly in the database (as `mbk-host superuser` does for su).
    pub async fn make_user(&self, username: &str, password: &str, role: Role) -> uuid::Uuid {
        service::insert_user(&self.state.db, username, password, role).await.expect("insert user").id
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns `(access_token, refresh_token)`.
    pub async fn tokens(&self, username: &str, password: &str) -> (String, String) {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200, "login of {username}");
        let body: serde_json::Value = response.json().await.expect("json");
        (
            body["access_token"].as_str().expect("access").to_owned(),
            body["refresh_token"].as_str().expect("refresh").to_owned(),
        )
    }

    /// A user of `role` made and logged in; returns `(id, access_token)`.
    pub async fn user_with_token(&self, username: &str, role: Role) -> (uuid::Uuid, String) {
        let id = self.make_user(username, "password-of-test", role).await;
        (id, self.tokens(username, "password-of-test").await.0)
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
        let mut request = self.client.put(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// `GET path` with `X-API-Key: key`.
    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.client.get(self.url(path)).header("x-api-key", key).send().await.expect("request")
    }

    /// Creates a project as `token`'s user; returns its JSON.
    pub async fn create_project(&self, token: &str, name: &str) -> serde_json::Value {
        let response = self.post_json("/projects", Some(token), &serde_json::json!({"name": name})).await;
        assert_eq!(response.status(), 201, "create project {name}");
        response.json().await.expect("json")
    }

    /// Creates an API key for a project; returns `(key_id, key)`.
    pub async fn create_key(&self, token: &str, project_id: &str) -> (String, String) {
        let response = self
            .post_json(&format!("/projects/{project_id}/keys"), Some(token), &serde_json::json!({"name": "test"}))
            .await;
        assert_eq!(response.status(), 201, "create key");
        let body: serde_json::Value = response.json().await.expect("json");
        (body["id"].as_str().expect("id").to_owned(), body["key"].as_str().expect("key").to_owned())
    }

    /// `POST path` (an upload route) with `X-API-Key` and a multipart body carrying `data`.
    pub async fn upload(&self, path: &str, key: &str, filename: &str, data: Vec<u8>) -> reqwest::Response {
        let (content_type, body) = multipart_body(filename, chunks(data));
        self.client
            .post(self.url(path))
            .header("x-api-key", key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload request")
    }

    /// A user, a project with `settings` (JSON; `null` for the defaults) and a key for it.
    pub async fn project_with_key(&self, settings: serde_json::Value) -> Tenant {
        let name = format!("u{}", uuid::Uuid::now_v7().simple());
        let (user_id, token) = self.user_with_token(&name, Role::User).await;
        let response = self
            .post_json(
                "/projects",
                Some(&token),
                &serde_json::json!({"name": format!("Project {name}"), "settings": settings}),
            )
            .await;
        let status = response.status();
        let project: serde_json::Value = response.json().await.expect("json");
        assert_eq!(status, 201, "create project: {project}");
        let project_id = project["id"].as_str().expect("id").to_owned();
        let (_, key) = self.create_key(&token, &project_id).await;
        let prefix = format!("{}-{}/", project["slug"].as_str().expect("slug"), project_id);
        Tenant { user_id, token, project_id, key, prefix }
    }

    pub async fn delete_as(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.delete(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the contract's error body and returns its message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/json"), "error content type {content_type:?}");
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("message is a string").to_owned();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only `error` at the top: {body}");
    message
}

/// A user with a project and its key, as `TestApp::project_with_key` makes them.
pub struct Tenant {
    pub user_id: uuid::Uuid,
    pub token: String,
    pub project_id: String,
    pub key: String,
    /// Every storage key of the project starts with it.
    pub prefix: String,
}
