//! Crash tests with real processes: workers killed with SIGKILL while they hold a job.
//!
//! - PostgreSQL: one `mbk-host api`, two `mbk-host worker`s, 50 uploads; the worker holding a job
//!   is killed (chosen by the pid in the job's `locked_by`) several times and started again.
//! - SQLite (the embedded default): `mbk-host serve` killed the same way and restarted.
//!
//! At the end every job is `completed` (none stuck or failed), every variant `ready` exactly
//! once at its exact size, and the store holds exactly the objects the rows name. The store is
//! S3 (Garage) when the test environment has it, the filesystem otherwise.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{Running, bare, free_port, post, superuser_with, wait_until_up};
use crate::helpers::{DbKind, PgTestDb, StoreKind, TEST_JWT_SECRET, fixture, test_config};

const PASSWORD: &str = "crash-test-password";
/// Small variants: the test is about the queue, not about rendering speed.
pub(crate) fn settings() -> Value {
    json!({"variants": [
        {"name": "thumb", "width": 96, "height": 96, "fit": "cover", "format": "webp", "quality": 70},
        {"name": "small", "width": 320, "height": null, "fit": "contain", "format": "jpeg", "quality": 70},
        {"name": "tiny", "width": 120, "height": 80, "fit": "stretch", "format": "avif", "quality": 40}]})
}
/// What `settings()` makes of `photo.jpg` (1600x1203).
pub(crate) const EXPECTED: [(&str, u64, u64); 3] = [("thumb", 96, 96), ("small", 320, 241), ("tiny", 120, 80)];

struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    base: String,
    db_url: String,
    store: std::sync::Arc<dyn mbk_host::storage::BlobStore>,
    client: reqwest::Client,
}

impl Cluster {
    async fn new(db_url: String) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let bind: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let kind = if std::env::var("MBK_TEST_S3_ENDPOINT").is_ok() { StoreKind::S3 } else { StoreKind::Filesystem };
        let mut config = test_config(dir.path(), &db_url, kind, bind);
        // The workers' daily cleanup scans the whole bucket: give them one of their own.
        if let mbk_host::config::StorageConfig::S3(s3) = &mut config.storage {
            s3.bucket = crate::helpers::solo_bucket();
        }
        let mut env: Vec<(String, String)> = vec![
            ("DB_URL".into(), db_url.clone()),
            ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
            ("DATA_DIR".into(), dir.path().display().to_string()),
            ("BIND_ADDR".into(), bind.to_string()),
            ("PUBLIC_BASE_URL".into(), format!("http://{bind}")),
            ("JOB_STALE_AFTER_SECS".into(), "2".into()),
            ("WORKER_CONCURRENCY".into(), "1".into()),
            ("RUST_LOG".into(), "info".into()),
        ];
        if let mbk_host::config::StorageConfig::S3(s3) = &config.storage {
            env.extend([
                ("S3_BUCKET_NAME".into(), s3.bucket.clone()),
                ("S3_ENDPOINT".into(), s3.endpoint.clone().unwrap_or_default()),
                ("S3_REGION".into(), s3.region.clone()),
                ("AWS_ACCESS_KEY".into(), s3.access_key.clone()),
                ("AWS_SECRET_KEY".into(), s3.secret_key.clone()),
                ("S3_FORCE_PATH_STYLE".into(), "true".into()),
            ]);
        }
        let store = mbk_host::storage::open(&config.storage, &config.public_base_url).await.expect("store");
        let client = reqwest::Client::new();
        Cluster { dir, env, base: format!("http://{bind}"), db_url, store, client }
    }

    fn command(&self, sub: &str) -> Command {
        let mut cmd = bare(self.dir.path());
        cmd.arg(sub).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn start(&self, sub: &str) -> Running {
        Running::start(self.command(sub))
    }

    /// A su user, a project with `settings()` and a key for it: `(key, project prefix)`.
    async fn tenant(&self) -> (String, String) {
        let out = superuser_with(self.command("superuser"), "root", PASSWORD);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (status, login) =
            post(&self.client, &self.base, "/auth/login", None, json!({"username": "root", "password": PASSWORD}))
                .await;
        assert_eq!(status, 200, "{login}");
        let token = login["access_token"].as_str().expect("token").to_owned();
        let (status, project) =
            post(&self.client, &self.base, "/projects", Some(&token), json!({"name": "crash", "settings": settings()}))
                .await;
        assert_eq!(status, 201, "{project}");
        let id = project["id"].as_str().expect("id");
        let (status, key) =
            post(&self.client, &self.base, &format!("/projects/{id}/keys"), Some(&token), json!({"name": "k"})).await;
        assert_eq!(status, 201, "{key}");
        (key["key"].as_str().expect("key").to_owned(), format!("{}-{id}/", project["slug"].as_str().expect("slug")))
    }

    async fn upload(&self, key: &str, n: usize) {
        let photo = fixture("photo.jpg");
        for _ in 0..n {
            crate::abuse::upload_image(&self.client, &self.base, key, photo.clone()).await;
        }
    }

    async fn jobs(&self, key: &str, status: &str) -> i64 {
        let url = format!("{}/jobs?status={status}&per_page=1", self.base);
        let body: Value =
            self.client.get(url).header("x-api-key", key).send().await.expect("jobs").json().await.expect("json");
        body["total"].as_i64().expect("total")
    }

    /// The pids holding a job now (from `locked_by` = `host:pid:uuid/slot`).
    async fn holders(&self) -> BTreeSet<u32> {
        let locks: Vec<String> = query_strings(
            &self.db_url,
            "SELECT locked_by FROM jobs WHERE status = 'processing' AND locked_by IS NOT NULL",
        )
        .await;
        locks.iter().filter_map(|l| l.split(':').nth(1)?.parse().ok()).collect()
    }

    /// Waits until every one of `n` jobs completed; then checks jobs, variants and the store.
    async fn settle_and_check(&self, key: &str, prefix: &str, n: usize, running: &mut [Running]) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.jobs(key, "completed").await < n as i64 {
            if Instant::now() > deadline {
                let logs: Vec<String> = running.iter().map(Running::log).collect();
                panic!("jobs did not settle; logs:\n{}", logs.join("\n-----\n"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for status in ["pending", "processing", "failed"] {
            assert_eq!(self.jobs(key, status).await, 0, "no job {status}");
        }
        let files: Value = self
            .client
            .get(format!("{}/files?per_page=100", self.base))
            .header("x-api-key", key)
            .send()
            .await
            .expect("files")
            .json()
            .await
            .expect("json");
        let items = files["items"].as_array().expect("items");
        assert_eq!(items.len(), n);
        for file in items {
            assert_eq!(file["status"], "ready", "{file}");
            let variants = file["variants"].as_object().expect("variants");
            assert_eq!(variants.len(), EXPECTED.len(), "{file}");
            for (name, w, h) in EXPECTED {
                let v = &variants[name];
                assert_eq!(
                    (v["status"].as_str(), v["width"].as_u64(), v["height"].as_u64()),
                    (Some("ready"), Some(w), Some(h)),
                    "{file}"
                );
            }
        }
        // Exactly one row per variant, and the store holds exactly what the rows name.
        let variant_rows = query_strings(&self.db_url, "SELECT storage_key FROM variants WHERE status = 'ready'").await;
        assert_eq!(variant_rows.len(), n * EXPECTED.len(), "every variant ready exactly once");
        let mut named: BTreeSet<String> = variant_rows.into_iter().collect();
        named.extend(query_strings(&self.db_url, "SELECT storage_key FROM files").await);
        let stored: BTreeSet<String> =
            self.store.list(prefix).await.expect("list").into_iter().map(|o| o.key).collect();
        assert_eq!(stored, named, "no object without a row, no row without its object");
        let attempts =
            query_strings(&self.db_url, "SELECT CAST(SUM(attempts) AS TEXT) FROM jobs WHERE kind = 'process_image'")
                .await;
        attempts[0].parse().expect("a number")
    }
}

/// Runs `sql` (one text column) on the test database.
pub(crate) async fn query_strings(db_url: &str, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if db_url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(db_url).await.expect("connect");
        let rows = sqlx::query_scalar::<_, String>(sql).fetch_all(&mut conn).await.expect("query");
        let _ = conn.close().await;
        rows
    } else {
        let mut conn = sqlx::SqliteConnection::connect(db_url).await.expect("connect");
        let rows = sqlx::query_scalar::<_, String>(sql).fetch_all(&mut conn).await.expect("query");
        let _ = conn.close().await;
        rows
    }
}

fn sigkill(running: &mut Running) {
    let pid = running.child.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().expect("kill").success());
    let _ = running.child.wait();
}

/// Waits until one of `pids` holds a job (a render is under way there); that pid.
async fn a_holder(cluster: &Cluster, pids: &[u32]) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(pid) = cluster.holders().await.into_iter().find(|p| pids.contains(p)) {
            return Some(pid);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn postgres_two_workers_survive_sigkill_mid_render() {
    const UPLOADS: usize = 50;
    const KILLS: usize = 4;
    let _alone = crate::helpers::WHOLE_BUCKET.lock().await;
    let db = PgTestDb::create().await;
    let cluster = Cluster::new(db.url.clone()).await;
    let mut api = cluster.start("api");
    wait_until_up(&cluster.base, &mut api).await;
    let (key, prefix) = cluster.tenant().await;
    // Every upload answered 201 before a worker runs: from here on nothing may be lost.
    cluster.upload(&key, UPLOADS).await;
    let started = Instant::now();
    let mut workers = vec![cluster.start("worker"), cluster.start("worker")];

    let mut kills = 0;
    while kills < KILLS {
        let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();
        let Some(pid) = a_holder(&cluster, &pids).await else { break };
        let at = workers.iter().position(|w| w.child.id() == pid).expect("a worker of ours");
        sigkill(&mut workers[at]);
        kills += 1;
        workers[at] = cluster.start("worker");
    }
    assert_eq!(kills, KILLS, "each kill hit a worker holding a job");
    let mut all: Vec<Running> = workers;
    all.push(api);
    let attempts = cluster.settle_and_check(&key, &prefix, UPLOADS, &mut all).await;
    report(
        "crash-postgres.txt",
        &format!(
            "PostgreSQL, api + 2 workers: {UPLOADS} uploads, {KILLS} SIGKILLs of the worker holding a job, {attempts} process_image attempts, {:.1} s; every job completed, every variant ready once, store = rows",
            started.elapsed().as_secs_f64()
        ),
    );
    // A kill lands a few ms after the job was seen held; a job may finish in between, but not
    // all four: some job must have run again.
    assert!(attempts > UPLOADS as i64, "killed jobs ran again: {attempts} attempts for {UPLOADS} jobs");
}

#[tokio::test]
async fn sqlite_serve_survives_sigkill_and_restart() {
    const UPLOADS: usize = 20;
    const KILLS: usize = 3;
    let _alone = crate::helpers::WHOLE_BUCKET.lock().await;
    let db = crate::helpers::TestDb::new(DbKind::Sqlite).await;
    let cluster = Cluster::new(db.url.clone()).await;
    // The API alone first, so that every upload is answered before anything is killed.
    let mut api = cluster.start("api");
    wait_until_up(&cluster.base, &mut api).await;
    let (key, prefix) = cluster.tenant().await;
    cluster.upload(&key, UPLOADS).await;
    sigkill(&mut api);

    let started = Instant::now();
    let mut serve = cluster.start("serve");
    wait_until_up(&cluster.base, &mut serve).await;
    let mut kills = 0;
    while kills < KILLS {
        let Some(_) = a_holder(&cluster, &[serve.child.id()]).await else { break };
        sigkill(&mut serve);
        kills += 1;
        serve = cluster.start("serve");
        wait_until_up(&cluster.base, &mut serve).await;
    }
    assert_eq!(kills, KILLS, "each kill hit serve holding a job");
    let attempts = cluster.settle_and_check(&key, &prefix, UPLOADS, std::slice::from_mut(&mut serve)).await;
    report(
        "crash-sqlite.txt",
        &format!(
            "SQLite, serve: {UPLOADS} uploads, {KILLS} SIGKILLs + restarts, {attempts} process_image attempts, {:.1} s; every job completed, every variant ready once, store = rows",
            started.elapsed().as_secs_f64()
        ),
    );
    assert!(attempts > UPLOADS as i64, "killed jobs ran again: {attempts} attempts for {UPLOADS} jobs");
}

/// Prints a line of figures and keeps it for `scripts/test`'s summary.
pub(crate) fn report(file: &str, line: &str) {
    println!("{line}");
    if let Ok(dir) = std::env::var("MBK_TEST_REPORT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(file), format!("{line}\n"));
    }
}
