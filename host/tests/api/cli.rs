//! The `mbk-host` binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mbk-host");

/// The binary with nothing of this machine's configuration: no inherited DB_URL, S3_*, etc.
/// `MBK_TEST_BIN` runs the tests against another build (an older one, to see a fix's test fail).
pub(crate) fn bare(cwd: &std::path::Path) -> Command {
    let bin = std::env::var("MBK_TEST_BIN").unwrap_or_else(|_| BIN.to_owned());
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running `mbk-host` whose stdout is collected line by line.
pub(crate) struct Running {
    pub(crate) child: Child,
    log: Arc<Mutex<String>>,
}

impl Running {
    pub(crate) fn start(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn mbk-host");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Running { child, log }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until `needle` shows in the output (the process writes asynchronously).
    pub(crate) fn wait_for_log(&self, needle: &str) -> String {
        // Generous: the workers compile the standard component first, slow on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mbk-host serve` with zero configuration in `cwd`, on `port`, answering: the process and its
/// base URL.
pub(crate) async fn serve_on(cwd: &std::path::Path, port: u16) -> (Running, String) {
    let mut cmd = bare(cwd);
    cmd.arg("serve").env("BIND_ADDR", format!("127.0.0.1:{port}"));
    let mut running = Running::start(cmd);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, &mut running).await;
    (running, base)
}

pub(crate) async fn wait_until_up(base: &str, running: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("{base}/healthz")).await
            && response.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!("mbk-host exited early with {status}:\n{}", running.log());
        }
        assert!(Instant::now() < deadline, "mbk-host did not come up:\n{}", running.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_starts_with_zero_configuration() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let (mut running, base) = serve_on(cwd.path(), port).await;

    let health: serde_json::Value =
        reqwest::get(format!("{base}/healthz")).await.expect("get").json().await.expect("json");
    assert_eq!(health, serde_json::json!({"status": "ok"}));
    let ready = reqwest::get(format!("{base}/readyz")).await.expect("get");
    assert_eq!(ready.status(), 200);

    // The embedded default made its own data folder: database, blob root, JWT secret.
    let data = cwd.path().join("data");
    assert!(data.join("mbk.db").is_file(), "SQLite database created");
    assert!(data.join("blobs").is_dir(), "blob folder created");
    assert!(data.join("jwt_secret").is_file(), "JWT secret generated");
    let secret = std::fs::read_to_string(data.join("jwt_secret")).expect("secret");

    let missing = reqwest::get(format!("{base}/no/such")).await.expect("get");
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");

    let log = running.wait_for_log("| GET /no/such |");
    let line =
        log.lines().find(|l| l.contains("| GET /no/such |")).unwrap_or_else(|| panic!("no request log line:\n{log}"));
    assert!(line.contains("Http | GET /no/such | rid="), "{line}");
    assert!(line.trim_end().ends_with("| res=404"), "{line}");
    let ok_line = log.lines().find(|l| l.contains("| GET /healthz |")).expect("healthz logged");
    assert!(ok_line.contains("Ops | GET /healthz |") && ok_line.trim_end().ends_with("res=200"), "{ok_line}");
    assert!(!log.contains(secret.trim()), "the JWT secret never reaches the log");

    // SIGTERM: graceful shutdown, exit 0.
    let pid = running.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM:\n{}", running.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}:\n{}", running.log());

    // A restart keeps the same secret (tokens survive restarts).
    let mut cmd = bare(cwd.path());
    cmd.arg("serve").env("BIND_ADDR", format!("127.0.0.1:{port}"));
    let mut again = Running::start(cmd);
    wait_until_up(&base, &mut again).await;
    assert_eq!(std::fs::read_to_string(data.join("jwt_secret")).expect("secret"), secret);
}

#[test]
fn a_bad_variable_stops_start_up_with_one_line() {
    let cwd = tempfile::tempdir().expect("tempdir");
    for (var, value) in [
        ("BIND_ADDR", "nonsense"),
        ("DB_URL", "mysql://x"),
        ("WORKER_CONCURRENCY", "lots"),
        ("LOG_FORMAT", "xml"),
        // The placeholder of .env.example, left unchanged.
        ("JWT_SECRET", "change-me-to-at-least-32-random-characters"),
        ("TRUSTED_PROXIES", "everyone"),
    ] {
        let output = bare(cwd.path()).arg("serve").env(var, value).env("RUST_BACKTRACE", "1").output().expect("run");
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line for {var}: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    }
    // A malformed value in .env is reported too.
    std::fs::write(cwd.path().join(".env"), "BIND_ADDR=also-nonsense\n").expect("write .env");
    let output = bare(cwd.path()).arg("serve").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("BIND_ADDR"));
}

#[test]
fn migrate_creates_the_embedded_database() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let output = bare(cwd.path()).arg("migrate").output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(cwd.path().join("data/mbk.db").is_file());
    let again = bare(cwd.path()).arg("migrate").output().expect("run");
    assert!(again.status.success(), "migrate is idempotent");
}

#[test]
fn openapi_prints_the_spec_and_every_command_has_help() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let output = bare(cwd.path()).arg("openapi").output().expect("run");
    assert!(output.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON spec");
    assert!(spec["paths"]["/healthz"].is_object());
    for command in ["serve", "api", "migrate", "openapi", "superuser", "plugin", "bench"] {
        let help = bare(cwd.path()).args([command, "--help"]).output().expect("run");
        assert!(help.status.success(), "{command} --help");
        assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: mbk-host"), "{command}");
    }
}

/// `mbk-host superuser --password-stdin` with `password` on standard input.
pub(crate) fn superuser(cwd: &std::path::Path, username: &str, password: &str) -> std::process::Output {
    let mut cmd = bare(cwd);
    cmd.arg("superuser");
    superuser_with(cmd, username, password)
}

/// [`superuser`] through `cmd` (the binary and `superuser`, with its environment).
pub(crate) fn superuser_with(mut cmd: Command, username: &str, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .args(["--username", username, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn superuser_from_a_script() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let made = superuser(cwd.path(), "root", "a long password");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("created su user root"));

    let again = superuser(cwd.path(), "root", "another password");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists") && stderr.trim().lines().count() == 1, "{stderr}");

    let short = superuser(cwd.path(), "root2", "short");
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 characters"));
    let bad_name = superuser(cwd.path(), "has space", "a long password");
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_name.stderr).contains("--username"));
    let missing = bare(cwd.path()).args(["superuser"]).output().expect("run");
    assert!(!missing.status.success(), "--username is required");
}

#[test]
fn superuser_interactively_without_echo() {
    use std::io::{Read, Write};
    // `script` gives the command a real terminal, as an operator's shell would.
    let cwd = tempfile::tempdir().expect("tempdir");
    let run = |first: &str, second: &str| {
        let command = format!("{BIN} superuser --username operator");
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(cwd.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn script (util-linux)");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let wait_for = |needle: &str| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !output.lock().expect("lock").contains(needle) {
                assert!(Instant::now() < deadline, "no {needle:?} prompt: {}", output.lock().expect("lock"));
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // Type each answer only once its prompt is shown (and echo is off), as a person would.
        wait_for("Password for operator:");
        stdin.write_all(format!("{first}\n").as_bytes()).expect("type");
        wait_for("Repeat it:");
        stdin.write_all(format!("{second}\n").as_bytes()).expect("type");
        let status = child.wait().expect("wait");
        drop(stdin);
        let _ = reader.join();
        let text = output.lock().expect("lock").clone();
        (status, text)
    };

    let (status, text) = run("typed-secret-1", "typed-secret-2");
    assert!(!status.success(), "mismatch refused: {text}");
    assert!(text.contains("differ"), "{text}");

    let (status, text) = run("typed-secret-1", "typed-secret-1");
    assert!(status.success(), "{text}");
    assert!(text.contains("created su user operator"), "{text}");
    assert!(!text.contains("typed-secret-1"), "the password was echoed: {text}");
}

/// POSTs `body` as JSON to `base` + `path` (with a bearer token when given); the status and the
/// JSON answer (null when the body is empty).
pub(crate) async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut request = client.post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (status, if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).expect("json") })
}

#[tokio::test]
async fn logs_never_carry_secrets() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let su_password = "su-secret-password-1";
    assert!(superuser(cwd.path(), "root", su_password).status.success());
    let port = free_port();
    let mut cmd = bare(cwd.path());
    // Debug level: even the chattiest lines must not carry a secret.
    cmd.arg("serve").env("BIND_ADDR", format!("127.0.0.1:{port}")).env("RUST_LOG", "debug");
    let mut running = Running::start(cmd);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, &mut running).await;
    let client = reqwest::Client::new();
    let (_, login) =
        post(&client, &base, "/auth/login", None, serde_json::json!({"username": "root", "password": su_password}))
            .await;
    let access = login["access_token"].as_str().expect("access").to_owned();
    let first_refresh = login["refresh_token"].as_str().expect("refresh").to_owned();
    let user_password = "new-user-password-2";
    let (created, _) = post(
        &client,
        &base,
        "/users",
        Some(&access),
        serde_json::json!({"username": "ada", "password": user_password, "role": "admin"}),
    )
    .await;
    assert_eq!(created, 201);
    let (_, rotated) =
        post(&client, &base, "/auth/refresh", None, serde_json::json!({"refresh_token": first_refresh})).await;
    let second_refresh = rotated["refresh_token"].as_str().expect("refresh").to_owned();
    // Reuse (logged as a warning), a failed login with a real password of another user, logout.
    assert_eq!(
        post(&client, &base, "/auth/refresh", None, serde_json::json!({"refresh_token": first_refresh})).await.0,
        401
    );
    assert_eq!(
        post(&client, &base, "/auth/login", None, serde_json::json!({"username": "root", "password": user_password}))
            .await
            .0,
        401
    );
    assert_eq!(
        post(&client, &base, "/auth/logout", None, serde_json::json!({"refresh_token": second_refresh})).await.0,
        204
    );

    let log = running.wait_for_log("| POST /auth/logout |");
    assert!(
        log.contains("Auth | POST /auth/login |") && log.contains("Users | POST /users |") && log.contains(" user="),
        "{log}"
    );
    assert!(log.contains("refresh token reuse detected"), "{log}");
    let secret = std::fs::read_to_string(cwd.path().join("data/jwt_secret")).expect("secret");
    for needle in [su_password, user_password, &first_refresh, &second_refresh, &access, "$argon2", secret.trim()] {
        assert!(!log.contains(needle), "the log carries a secret ({}…):\n{log}", &needle[..needle.len().min(12)]);
    }
}

/// A field of `/proc/PID/status` in KiB (VmRSS, VmHWM).
pub(crate) fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The memory bound: a 1 GiB upload through the real binary (filesystem backend) grows
/// the server's peak RSS by less than 100 MiB. The figure is printed and, under scripts/test,
/// written to the run's report folder.
#[tokio::test]
async fn a_1_gib_upload_keeps_the_server_memory_flat() {
    use sha2::Digest;
    const TOTAL: usize = 1 << 30;
    const CHUNK: usize = 1 << 20;
    let cwd = tempfile::tempdir().expect("tempdir");
    assert!(superuser(cwd.path(), "root", "a long password").status.success());
    let port = free_port();
    let (running, base) = serve_on(cwd.path(), port).await;
    // The workers load the standard component beside the API: measure the upload, not that.
    let log = running.wait_for_log("workers started");
    assert!(log.contains("workers started"), "{log}");
    let client = reqwest::Client::new();
    let (_, login) = post(
        &client,
        &base,
        "/auth/login",
        None,
        serde_json::json!({"username": "root", "password": "a long password"}),
    )
    .await;
    let token = login["access_token"].as_str().expect("token").to_owned();
    let project_body = serde_json::json!({"name": "big", "settings": {"quotas": {"max_file_bytes": null}}});
    let (_, project) = post(&client, &base, "/projects", Some(&token), project_body).await;
    let keys_path = format!("/projects/{}/keys", project["id"].as_str().expect("id"));
    let (_, key) = post(&client, &base, &keys_path, Some(&token), serde_json::json!({"name": "k"})).await;

    let pid = running.child.id();
    let rss_before = proc_kib(pid, "VmRSS");
    let hasher = Arc::new(Mutex::new(sha2::Sha256::new()));
    let block = bytes::Bytes::from((0..CHUNK).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let sink = hasher.clone();
    let data = futures_util::stream::iter(0..TOTAL / CHUNK).map(move |n| {
        let mut chunk = block.to_vec();
        chunk[..8].copy_from_slice(&(n as u64).to_le_bytes());
        sink.lock().expect("hasher").update(&chunk);
        Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
    });
    use futures_util::StreamExt;
    let (content_type, body) = crate::helpers::multipart_body("big.bin", data);
    let started = Instant::now();
    let response = client
        .post(format!("{base}/upload/file"))
        .header("x-api-key", key["key"].as_str().expect("key"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 201, "{}", running.log());
    let file: serde_json::Value = response.json().await.expect("json");
    assert_eq!(file["size"].as_u64(), Some(TOTAL as u64));
    let expected = hex::encode(std::mem::take(&mut *hasher.lock().expect("hasher")).finalize());
    assert_eq!(file["sha256"], expected);

    let peak = proc_kib(pid, "VmHWM");
    let growth_mib = peak.saturating_sub(rss_before) as f64 / 1024.0;
    let report = format!(
        "1 GiB upload (filesystem, SQLite, debug build): RSS before {:.1} MiB, peak {:.1} MiB, peak growth {growth_mib:.1} MiB, {:.1} s ({:.0} MiB/s)",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        elapsed.as_secs_f64(),
        1024.0 / elapsed.as_secs_f64()
    );
    println!("{report}");
    if let Ok(dir) = std::env::var("MBK_TEST_REPORT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("upload-1gib.txt"), format!("{report}\n"));
    }
    assert!(growth_mib < 100.0, "{report}");
}

#[test]
fn plugin_validate_gives_a_verdict() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let good = bare(cwd.path()).args(["plugin", "validate", env!("MBK_TEST_SEPIA_WASM")]).output().expect("run");
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}{}", String::from_utf8_lossy(&good.stderr));
    assert!(stdout.contains("info(): mbk-sepia") && stdout.contains("render \"cover\": 32x32 image/png"), "{stdout}");
    assert!(!cwd.path().join("data").exists(), "validating creates no data folder");

    // The hostile fixture's default behaviour lies about its output sizes.
    let liar = bare(cwd.path()).args(["plugin", "validate", env!("MBK_TEST_HOSTILE_WASM")]).output().expect("run");
    assert_eq!(liar.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&liar.stdout).contains("FAIL render"), "{}", String::from_utf8_lossy(&liar.stdout));

    std::fs::write(cwd.path().join("junk.wasm"), b"not wasm at all").expect("write");
    let junk = bare(cwd.path()).args(["plugin", "validate", "junk.wasm"]).output().expect("run");
    assert_eq!(junk.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&junk.stdout).contains("not a WebAssembly component"),
        "{}",
        String::from_utf8_lossy(&junk.stdout)
    );
}

#[test]
fn bench_reports_both_engines() {
    let photos = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/photo.gif"),
        photos.path().join("photo.png"),
    )
    .expect("copy");
    let cwd = tempfile::tempdir().expect("tempdir");
    let output = bare(cwd.path()).args(["bench", "--runs", "1"]).arg(photos.path()).output().expect("run");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("| photo.png | 400x301 |"), "{report}");
    assert!(report.contains("images/s") && report.contains("peak RSS") && report.contains("µs per render"), "{report}");
}
