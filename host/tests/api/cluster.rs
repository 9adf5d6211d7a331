//! The scale-out topology as real processes (`scripts/cluster`: a PostgreSQL of its own, Garage,
//! two `mbk-host api` behind nginx, two `mbk-host worker`), under load (`scripts/load`, wrk) and
//! faults: a worker SIGKILLed mid-render, an API SIGKILLed mid-upload, PostgreSQL restarted,
//! Garage stopped. After recovery every upload that was answered 201 has its original and every
//! variant `ready` once, the cut upload got an error, no job completed twice, the store holds
//! exactly what the rows name, and only the killed processes were restarted (by the cluster's
//! restart loop, as compose's `restart:` does).
//!
//! `MBK_CLUSTER_FULL=1` runs the full version (60 s of load, Garage down 30 s) whose figures go
//! into `docs/performance.md` (`scripts/perf-report`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::BIN;
use crate::crash::{EXPECTED, query_strings, report, settings};
use crate::helpers::{chunks, fixture, multipart_body};

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// A base port whose neighbours the cluster takes are free: +1, +2 (APIs), +100 (PostgreSQL),
/// +200..=+203 (Garage). All below Linux's ephemeral range (32768 and up), where the suite's own
/// outgoing connections take local ports at any moment and one could take a cluster port
/// between this check and the bind.
fn free_base() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let seed = std::process::id() as u16;
    (0..200)
        .map(|i| 20_000 + (seed.wrapping_add(i * 7) % 40) * 300)
        .find(|&b| [0, 1, 2, 11, 12, 100, 200, 201, 202, 203].iter().all(|o| free(b + o)))
        .expect("a free port range")
}

struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    exports: BTreeMap<String, String>,
    client: reqwest::Client,
}

impl Cluster {
    fn script(&self, name: &str) -> Command {
        let mut cmd = Command::new(repo().join("scripts").join(name));
        cmd.env("MBK_CLUSTER_DIR", self.dir.path())
            .env("MBK_CLUSTER_PORT", self.port.to_string())
            .env("MBK_BIN", std::env::var("MBK_TEST_BIN").unwrap_or_else(|_| BIN.to_owned()))
            .env("MBK_CLUSTER_STALE_AFTER_SECS", "3")
            .envs(&self.exports);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.script("cluster").args(args).output().expect("scripts/cluster");
        assert!(out.status.success(), "cluster {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn up() -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().expect("tempdir"),
            port: free_base(),
            exports: BTreeMap::new(),
            client: reqwest::Client::new(),
        };
        let out = cluster.run(&["up"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                cluster.exports.insert(k.to_owned(), v.to_owned());
            }
        }
        cluster
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self, name: &str) -> u32 {
        String::from_utf8_lossy(&self.run(&["pid", name]).stdout).trim().parse().expect("a pid")
    }

    /// How often the restart loop started `name` again.
    fn restarts(&self, name: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
        log.matches(&format!("restarting {name}")).count()
    }

    fn logs(&self) -> String {
        ["api-1", "api-2", "worker-1", "worker-2"]
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{n}.log"))).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!("--- {n}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn db_url(&self) -> &str {
        &self.exports["MBK_CLUSTER_DB_URL"]
    }

    async fn ready(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let answer = self.client.get(format!("{}/readyz", self.base())).send().await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    /// A project with `crash::settings()` and a key for it: `(key, storage prefix)`.
    async fn tenant(&self) -> (String, String) {
        let base = self.base();
        let (su, password) = (&self.exports["MBK_CLUSTER_SU"], &self.exports["MBK_CLUSTER_SU_PASSWORD"]);
        let login =
            crate::cli::post(&self.client, &base, "/auth/login", None, json!({"username": su, "password": password}));
        let (status, login) = login.await;
        assert_eq!(status, 200, "{login}");
        let token = login["access_token"].as_str().expect("token").to_owned();
        let body = json!({"name": "faults", "settings": settings()});
        let (status, project) = crate::cli::post(&self.client, &base, "/projects", Some(&token), body).await;
        assert_eq!(status, 201, "{project}");
        let id = project["id"].as_str().expect("id");
        let path = format!("/projects/{id}/keys");
        let (status, key) = crate::cli::post(&self.client, &base, &path, Some(&token), json!({"name": "k"})).await;
        assert_eq!(status, 201, "{key}");
        (key["key"].as_str().expect("key").to_owned(), format!("{}-{id}/", project["slug"].as_str().expect("slug")))
    }

    /// The pids holding a job now (`locked_by` is `host:pid:uuid/slot`).
    async fn holders(&self) -> BTreeSet<u32> {
        let sql = "SELECT locked_by FROM jobs WHERE status = 'processing' AND locked_by IS NOT NULL";
        let locks = query_strings(self.db_url(), sql).await;
        locks.iter().filter_map(|l| l.split(':').nth(1)?.parse().ok()).collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        query_strings(self.db_url(), sql).await[0].parse().expect("a count")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script("cluster").arg("down").output();
    }
}

/// Uploads `photo.jpg` through the balancer until `stop`: the ids answered 201, and how many
/// uploads were refused or cut (each must have got an error, never a 201 for nothing).
async fn upload_until(
    client: reqwest::Client,
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let photo = fixture("photo.jpg");
    let (mut ok, mut refused) = (Vec::new(), 0);
    while !stop.load(Ordering::Relaxed) {
        let (content_type, body) = multipart_body("p.jpg", chunks(photo.clone()));
        let sent = client.post(format!("{base}/upload/image")).header("x-api-key", &key);
        let sent = sent.header("content-type", content_type).body(body).timeout(Duration::from_secs(60)).send().await;
        match sent {
            Ok(r) if r.status() == 201 => {
                let file: Value = r.json().await.expect("a 201's body");
                ok.push(file["id"].as_str().expect("id").to_owned());
            }
            _ => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    (ok, refused)
}

/// An upload straight to `api-1` that sends half the photo, then waits; `api-1` is SIGKILLed
/// meanwhile. The client must see an error, not a 201.
async fn cut_upload(cluster: &Cluster, key: &str) {
    use futures_util::StreamExt;
    let photo = fixture("photo.jpg");
    let half = bytes::Bytes::from(photo[..photo.len() / 2].to_vec());
    let stalled =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(futures_util::stream::pending());
    let (content_type, body) = multipart_body("cut.jpg", stalled);
    let api_1 = format!("http://127.0.0.1:{}/upload/image", cluster.port + 1);
    let sent = cluster.client.post(api_1).header("x-api-key", key).header("content-type", content_type).body(body);
    let upload = tokio::spawn(sent.timeout(Duration::from_secs(60)).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.run(&["kill", "api-1"]);
    match upload.await.expect("the upload task") {
        Ok(r) => assert_ne!(r.status(), 201, "an upload cut in half was answered 201"),
        Err(e) => println!("the cut upload got: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_keeps_every_upload_through_faults_under_load() {
    let full = std::env::var("MBK_CLUSTER_FULL").is_ok_and(|v| v == "1");
    let (load_secs, garage_down) = if full { (60, 30) } else { (8, 8) };
    let cluster = Cluster::up();
    assert!(cluster.ready(Duration::from_secs(60)).await, "the cluster never got ready:\n{}", cluster.logs());

    // Load: scripts/load's wrk classes, every request answered 2xx.
    let figures = cluster.dir.path().join("load.json");
    let load = cluster.script("load").args(["--duration", &load_secs.to_string(), "--json"]).arg(&figures).output();
    let load = load.expect("scripts/load");
    let table = String::from_utf8_lossy(&load.stdout).to_string();
    assert!(
        load.status.success(),
        "scripts/load: {table}\n{}\n{}",
        String::from_utf8_lossy(&load.stderr),
        cluster.logs()
    );
    report("cluster-load.txt", &format!("cluster load ({load_secs} s):\n{table}"));
    if let Ok(out) = std::env::var("MBK_CLUSTER_LOAD_JSON") {
        std::fs::copy(&figures, out).expect("copy the load figures");
    }

    // Faults, while two clients keep uploading through the balancer.
    let (key, prefix) = cluster.tenant().await;
    let (api_2, workers) = (cluster.pid("api-2"), [cluster.pid("worker-1"), cluster.pid("worker-2")]);
    let stop = Arc::new(AtomicBool::new(false));
    let uploaders: Vec<_> = (0..2)
        .map(|_| tokio::spawn(upload_until(cluster.client.clone(), cluster.base(), key.clone(), Arc::clone(&stop))))
        .collect();
    let started = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(120);
    let killed = loop {
        if let Some(at) = cluster.holders().await.into_iter().find_map(|p| workers.iter().position(|&w| w == p)) {
            break at;
        }
        assert!(Instant::now() < deadline, "no worker ever held a job:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed = format!("worker-{}", killed + 1);
    cluster.run(&["kill", &killed]);
    cut_upload(&cluster, &key).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.run(&["stop", "postgres"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.run(&["start", "postgres"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.run(&["stop", "garage"]);
    tokio::time::sleep(Duration::from_secs(garage_down)).await;
    cluster.run(&["start", "garage"]);

    // Recovery, with nobody's help but the restart loop for the two killed processes.
    assert!(cluster.ready(Duration::from_secs(120)).await, "not ready after the faults:\n{}", cluster.logs());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut answered, mut refused) = (Vec::new(), 0);
    for uploader in uploaders {
        let (ok, no) = uploader.await.expect("uploader");
        answered.extend(ok);
        refused += no;
    }
    let after = crate::abuse::upload_image(&cluster.client, &cluster.base(), &key, fixture("photo.jpg")).await;
    answered.push(after);
    assert!(answered.len() > 5, "too few uploads got through to prove anything: {}", answered.len());

    let deadline = Instant::now() + Duration::from_secs(600);
    let open = "SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE status IN ('pending', 'processing')";
    while cluster.count(open).await > 0 {
        assert!(Instant::now() < deadline, "jobs did not settle:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let failed = "SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE status = 'failed'";
    assert_eq!(cluster.count(failed).await, 0, "a job failed for good:\n{}", cluster.logs());

    // Every 201: its original and every variant ready, at its size, once.
    for id in &answered {
        let file: Value = cluster
            .client
            .get(format!("{}/files/{id}", cluster.base()))
            .header("x-api-key", &key)
            .send()
            .await
            .expect("file")
            .json()
            .await
            .expect("json");
        assert_eq!(file["status"], "ready", "{file}");
        for (name, w, h) in EXPECTED {
            let v = &file["variants"][name];
            assert_eq!(
                (v["status"].as_str(), v["width"].as_u64(), v["height"].as_u64()),
                (Some("ready"), Some(w), Some(h))
            );
        }
    }
    let images = cluster.count("SELECT CAST(COUNT(*) AS TEXT) FROM files WHERE kind = 'image'").await;
    // A job's plugin runs: one per attempt at most, so none ran to completion twice.
    let over = "SELECT CAST(COUNT(*) AS TEXT) FROM jobs j WHERE j.kind = 'process_image' \
                AND (SELECT COUNT(*) FROM plugin_runs r WHERE r.job_id = j.id) > j.attempts";
    assert_eq!(cluster.count(over).await, 0, "a job ran to completion more often than it was taken");

    // The store: what the rows name, nothing else, once the cleanup has run (grace 0: no upload
    // is in flight now).
    let cleanup =
        cluster.script("cluster").args(["exec", "cleanup"]).env("MBK_CLUSTER_ORPHAN_GRACE_SECS", "0").output();
    let cleanup = cleanup.expect("cleanup");
    assert!(cleanup.status.success(), "{}", String::from_utf8_lossy(&cleanup.stderr));
    // Its report is the pretty JSON after the log lines.
    let swept = String::from_utf8_lossy(&cleanup.stdout).to_string();
    let swept: Vec<&str> = swept.lines().skip_while(|line| *line != "{").collect();
    let swept: Value = serde_json::from_str(&swept.join("\n")).expect("the cleanup's report");
    let s3 = mbk_host::config::S3Config {
        bucket: "mbk-test".into(),
        endpoint: Some(format!("http://127.0.0.1:{}", cluster.port + 200)),
        region: "garage".into(),
        access_key: "GK0123456789abcdef01234567".into(),
        secret_key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        force_path_style: true,
        public_url: None,
    };
    let store = mbk_host::storage::open(&mbk_host::config::StorageConfig::S3(s3), "").await.expect("store");
    let stored: BTreeSet<String> = store.list(&prefix).await.expect("list").into_iter().map(|o| o.key).collect();
    let mut named: BTreeSet<String> =
        query_strings(cluster.db_url(), "SELECT storage_key FROM variants WHERE status = 'ready'")
            .await
            .into_iter()
            .collect();
    named.extend(query_strings(cluster.db_url(), "SELECT storage_key FROM files").await);
    named.retain(|k| k.starts_with(&prefix));
    assert_eq!(stored, named, "the store holds exactly what the rows name");

    // Only the killed processes were started again; PostgreSQL and Garage needed no restart of anyone.
    assert_eq!(cluster.pid("api-2"), api_2, "api-2 restarted");
    for (n, pid) in workers.iter().enumerate() {
        let name = format!("worker-{}", n + 1);
        if name != killed {
            assert_eq!(cluster.pid(&name), *pid, "{name} restarted");
        }
        assert_eq!(cluster.restarts(&name), usize::from(name == killed), "{name}'s restarts");
    }
    assert_eq!(cluster.restarts("api-1"), 1, "api-1 came back once");
    let status = cluster.run(&["status"]);
    report(
        "cluster-faults.txt",
        &format!(
            "cluster faults: {} uploads answered 201 and all ready ({} refused or cut during the faults), {} image files in all, \
             SIGKILL {killed} mid-render + api-1 mid-upload, PostgreSQL restarted, Garage down {garage_down} s; {:.0} s; \
             cleanup deleted {} orphan(s) of {} objects, then the store held exactly what the rows name; {}",
            answered.len(),
            refused,
            images,
            started.elapsed().as_secs_f64(),
            swept["orphans_deleted"],
            swept["objects_scanned"],
            String::from_utf8_lossy(&status.stdout).lines().last().unwrap_or_default()
        ),
    );
}

/// `scripts/cluster` starts what docker-compose.yml declares: the same services, replicas, and
/// the same variable names for the processes of ours.
#[test]
fn the_cluster_script_starts_what_compose_declares() {
    let out = Command::new(repo().join("scripts/cluster")).arg("env").env("MBK_CLUSTER_DIR", "/nonexistent").output();
    let out = out.expect("scripts/cluster env");
    assert!(out.status.success());
    let script: BTreeMap<String, (u64, BTreeSet<String>)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let service = words.next().expect("service").to_owned();
            let replicas = words.next().expect("replicas").parse().expect("a number");
            (service, (replicas, words.map(str::to_owned).collect()))
        })
        .collect();
    let compose: Value = serde_json::from_str(&compose_as_json()).expect("json");
    let services = compose["services"].as_object().expect("services");
    assert_eq!(services.keys().collect::<BTreeSet<_>>(), script.keys().collect::<BTreeSet<_>>());
    for (name, service) in services {
        let replicas = service["deploy"]["replicas"].as_u64().unwrap_or(1);
        assert_eq!(replicas, script[name].0, "{name}'s replicas");
        if name == "api" || name == "worker" {
            let vars: BTreeSet<String> = service["environment"].as_object().expect("env").keys().cloned().collect();
            assert_eq!(vars, script[name].1, "{name}'s variables");
        }
    }
}

/// docker-compose.yml read by PyYAML (schemathesis's dependency, in the test venv), which
/// resolves its `<<: *mbk-env` merge as compose does.
fn compose_as_json() -> String {
    let python = std::env::var("MBK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))";
    let out = Command::new(python).args(["-c", code]).arg(repo().join("docker-compose.yml")).output().expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}
