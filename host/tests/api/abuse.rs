//! The abuse run: the real `mbk-host serve` binary (embedded default) attacked as issue #12's
//! findings describe, with the figures printed (and written to the run's report folder).
//! Each step checks what a user sees; every failed check is listed at the end (so a run against
//! an older binary, `MBK_TEST_BIN=path`, shows each finding at once). The figures are for the
//! report, not wall-clock limits.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::cli::{Running, bare, free_port, post, proc_kib, superuser, wait_until_up};

const PW: &str = "a long password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_holds_against_a_hostile_client() {
    let cwd = tempfile::tempdir().expect("tempdir");
    for username in ["root", "victim"] {
        assert!(superuser(cwd.path(), username, PW).status.success());
    }
    let port = free_port();
    let mut cmd = bare(cwd.path());
    // The test speaks from many addresses through a "proxy" on loopback.
    cmd.arg("serve")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        // Two worker slots and a short plugin deadline, for the sleeping plugin of step 8.
        .env("WORKER_CONCURRENCY", "2")
        .env("PLUGIN_TIMEOUT_MS", "3000");
    let mut running = Running::start(cmd);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, &mut running).await;
    let log = running.wait_for_log("workers started");
    assert!(log.contains("workers started"), "{log}");
    let pid = running.child.id();
    let client = reqwest::Client::new();
    let mut report = Vec::new();
    // The su's token for step 8, taken before the attacks (an older build locks it out by then).
    let (_, root) = post(&client, &base, "/auth/login", None, json!({"username": "root", "password": PW})).await;
    let su = root["access_token"].as_str().expect("su token").to_owned();
    let mut problems: Vec<String> = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };

    // 1. 400 parallel wrong-password logins, each from its own address: hashing is bounded.
    let rss_before = proc_kib(pid, "VmRSS");
    let hwm_before = proc_kib(pid, "VmHWM");
    let pinging = tokio::spawn({
        let base = base.clone();
        async move {
            let client = reqwest::Client::new();
            let mut worst = Duration::ZERO;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(4) {
                let t = Instant::now();
                let ok = client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200);
                worst = worst.max(if ok { t.elapsed() } else { Duration::MAX });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            worst
        }
    });
    let burst = futures_util::stream::iter(0..400u32)
        .map(|n| {
            let request = client
                .post(format!("{base}/auth/login"))
                .header("x-forwarded-for", format!("10.9.{}.{}", n / 250, n % 250 + 1))
                .json(&json!({"username": "victim", "password": "wrong guess"}));
            async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(400)
        .collect::<Vec<u16>>()
        .await;
    let worst_health = pinging.await.expect("pinger");
    let peak_growth_mib = proc_kib(pid, "VmHWM").saturating_sub(hwm_before.max(rss_before)) as f64 / 1024.0;
    let count = |s: u16| burst.iter().filter(|x| **x == s).count();
    check(count(401) + count(503) + count(429) == 400, format!("logins without an answer: {burst:?}"));
    check(worst_health < Duration::MAX, "/healthz failed during the burst".into());
    report.push(format!(
        "400 parallel bad logins: {} x 401, {} x 503 (Retry-After), {} x 429; peak RSS growth {peak_growth_mib:.1} MiB; /healthz worst {:.1} ms",
        count(401),
        count(503),
        count(429),
        worst_health.as_secs_f64() * 1000.0
    ));
    check(peak_growth_mib < 256.0, format!("the login burst grew the peak RSS by {peak_growth_mib:.1} MiB"));

    // 2. The owner is not locked out by an attacker's failures from elsewhere.
    for _ in 0..40 {
        let _ = client
            .post(format!("{base}/auth/login"))
            .header("x-forwarded-for", "203.0.113.66")
            .json(&json!({"username": "victim", "password": "guess"}))
            .send()
            .await
            .expect("login");
    }
    let (status, _) = login_from(&client, &base, "198.51.100.7", "victim").await;
    check(status == 200, format!("the owner, from their own address, got {status}"));
    let (attacker, _) = login_from(&client, &base, "203.0.113.66", "victim").await;
    check(attacker == 429, format!("the attacker's address, right password, got {attacker}"));
    report.push(format!("40 failures from one address: owner elsewhere {status}, attacker {attacker}"));

    // 6. An 8 MB upload without a key, written whole before the answer is read (as curl and
    //    Python's requests do): the client reads the 401.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let refused = tokio::task::spawn_blocking(move || (0..5).map(|_| upload_unread(addr, 8 << 20)).collect::<Vec<_>>())
        .await
        .expect("uploads");
    check(refused.iter().all(|s| s.starts_with("HTTP/1.1 401")), format!("8 MB uploads without a key: {refused:?}"));
    report.push(format!(
        "8 MB uploads without a key: {} of 5 read their 401",
        refused.iter().filter(|s| s.starts_with("HTTP/1.1 401")).count()
    ));

    // 7. Made-up methods do not grow /metrics.
    let metrics_size = || async {
        client.get(format!("{base}/metrics")).send().await.expect("metrics").bytes().await.expect("body").len()
    };
    let before = metrics_size().await;
    for n in 0..1500 {
        let method = reqwest::Method::from_bytes(format!("M{n}").as_bytes()).expect("method");
        let _ = client.request(method, format!("{base}/healthz")).send().await.expect("request");
    }
    let after = metrics_size().await;
    check(after < before + 4096, format!("/metrics grew from {before} to {after} bytes"));
    report.push(format!("/metrics after 1,500 made-up methods: {before} -> {after} bytes"));

    // 5. 200 clients trickling their headers: a normal request is answered at once; they are cut off.
    let slow = tokio::task::spawn_blocking(move || trickle(addr, 200, Duration::from_secs(40)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let health = client.get(format!("{base}/healthz")).timeout(Duration::from_secs(5)).send().await;
    check(health.is_ok_and(|r| r.status() == 200), "/healthz was not answered beside the slow clients".into());
    let normal_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (open, cut_after) = slow.await.expect("slow clients");
    check(open == 0, format!("{open} trickling connections still open after {:.0} s", cut_after.as_secs_f64()));
    report.push(format!(
        "200 header-trickling clients: a normal request answered in {normal_ms:.1} ms; all cut off after {:.1} s",
        cut_after.as_secs_f64()
    ));

    // 8. A plugin that sleeps in a host call holds its sandbox only until its deadline: with both
    //    worker slots taken by two of its renders, another project's upload still gets its variants.
    let registered = crate::registry::register_at(
        &client,
        &base,
        &su,
        Some(crate::registry::hostile()),
        Some("hostile"),
        Some("1.0.0"),
    )
    .await;
    assert_eq!(registered.status(), 201, "register the hostile plugin");
    let nap = json!({"variants": [{"name": "nap", "width": 32, "height": 32, "fit": "cover", "format": "png",
        "quality": 80, "plugin": "hostile", "params": {"mode": "sleep"}}]});
    let sleepy = project_key(&client, &base, &su, "sleepy", nap).await;
    let normal = project_key(&client, &base, &su, "normal", serde_json::Value::Null).await;
    let photo = crate::helpers::fixture("photo.jpg");
    let mut naps = Vec::new();
    for _ in 0..2 {
        naps.push(upload_image(&client, &base, &sleepy, photo.clone()).await);
    }
    let started = Instant::now();
    let other = upload_image(&client, &base, &normal, photo.clone()).await;
    let ready = wait_settled(&client, &base, &normal, &other, Duration::from_secs(90)).await;
    let other_ready = ready.as_ref().map(|_| started.elapsed());
    check(
        ready.as_ref().is_some_and(|f| f["status"] == "ready" && f["variants"]["thumbnail"]["width"] == 150),
        format!("another project's upload did not get its variants while the plugin slept: {ready:?}"),
    );
    let napped = wait_settled(&client, &base, &sleepy, &naps[0], Duration::from_secs(30)).await;
    let reason = napped.as_ref().and_then(|f| f["variants"]["nap"]["error"].as_str()).unwrap_or("").to_owned();
    check(
        reason.contains("deadline"),
        format!("the sleeping render's variant did not fail at its deadline: {napped:?}"),
    );
    report.push(format!(
        "2 renders sleeping in a host call (deadline 3 s, 2 slots): another project's upload ready after {}; the sleeper's variant: {reason:?}",
        other_ready.map_or("never (90 s)".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    ));

    check(running.child.try_wait().expect("wait").is_none(), "the server stopped".into());
    let text = format!("abuse run (debug build, embedded default):\n  {}", report.join("\n  "));
    println!("{text}");
    if let Ok(dir) = std::env::var("MBK_TEST_REPORT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("abuse.txt"), format!("{text}\n"));
    }
    assert!(problems.is_empty(), "{text}\nfailed:\n  {}", problems.join("\n  "));
}

/// A project of `su` with `settings` and a key for it.
async fn project_key(
    client: &reqwest::Client,
    base: &str,
    su: &str,
    name: &str,
    settings: serde_json::Value,
) -> String {
    let (status, project) =
        post(client, base, "/projects", Some(su), json!({"name": name, "settings": settings})).await;
    assert_eq!(status, 201, "{project}");
    let keys = format!("/projects/{}/keys", project["id"].as_str().expect("id"));
    let (_, key) = post(client, base, &keys, Some(su), json!({"name": "k"})).await;
    key["key"].as_str().expect("key").to_owned()
}

/// Uploads an image with `key`; the new file's id.
/// Uploads `data` as an image with `key`; the new file's id.
pub(crate) async fn upload_image(client: &reqwest::Client, base: &str, key: &str, data: Vec<u8>) -> String {
    let (content_type, body) = crate::helpers::multipart_body("p.jpg", crate::helpers::chunks(data));
    let response = client
        .post(format!("{base}/upload/image"))
        .header("x-api-key", key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    let file: serde_json::Value = response.json().await.expect("json");
    file["id"].as_str().expect("id").to_owned()
}

/// The file once it is no longer `processing`, or `None` after `limit`.
async fn wait_settled(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    limit: Duration,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let response = client.get(format!("{base}/files/{id}")).header("x-api-key", key).send().await.expect("get");
        let file: serde_json::Value = response.json().await.expect("json");
        if file["status"] != "processing" {
            return Some(file);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn login_from(client: &reqwest::Client, base: &str, address: &str, username: &str) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{base}/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"username": username, "password": PW}))
        .send()
        .await
        .expect("login");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// Sends `POST /upload/file` with a `len`-byte body and no key, the whole body before reading,
/// then reads the answer: its status line, or what went wrong.
pub(crate) fn upload_unread(addr: std::net::SocketAddr, len: usize) -> String {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect(addr) else { return "cannot connect".into() };
    let head = format!(
        "POST /upload/file HTTP/1.1\r\nHost: mbk\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {len}\r\n\r\n"
    );
    let body = vec![b'a'; len];
    if let Err(e) = s.write_all(head.as_bytes()).and_then(|()| s.write_all(&body)) {
        return format!("sending failed: {e}");
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut answer = [0u8; 64];
    match s.read(&mut answer) {
        Ok(n) => String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or("").to_owned(),
        Err(e) => format!("reading failed: {e}"),
    }
}

/// `n` connections that send a request line, then a header byte every 250 ms, until the server
/// closes them or `limit` passes: how many were still open, and after how long.
pub(crate) fn trickle(addr: std::net::SocketAddr, n: usize, limit: Duration) -> (usize, Duration) {
    let mut streams: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: mbk\r\n").expect("request line");
            s
        })
        .collect();
    let started = Instant::now();
    let mut open = n;
    while open > 0 && started.elapsed() < limit {
        open = streams.iter_mut().filter_map(|s| s.write_all(b"X").ok()).count();
        std::thread::sleep(Duration::from_millis(250));
    }
    (open, started.elapsed())
}

/// SIGTERM while a client trickles its headers: the server still exits, within the header
/// timeout (15 s) at most; it used to wait for that client forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_cannot_hold_up_the_shutdown() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = bare(cwd.path());
    cmd.arg("serve").env("BIND_ADDR", format!("127.0.0.1:{port}"));
    let mut running = Running::start(cmd);
    wait_until_up(&format!("http://127.0.0.1:{port}"), &mut running).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let slow = std::thread::spawn(move || trickle(addr, 1, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(300));
    let killed = std::process::Command::new("kill").args(["-TERM", &running.child.id().to_string()]).status();
    assert!(killed.expect("kill").success());
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("wait") {
            break Some(status);
        }
        if asked.elapsed() > Duration::from_secs(45) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("SIGTERM with a client trickling its headers: exit after {:.1} s", asked.elapsed().as_secs_f64());
    let status = status.unwrap_or_else(|| panic!("no exit 45 s after SIGTERM:\n{}", running.log()));
    assert!(status.success(), "exit status {status}:\n{}", running.log());
    drop(slow);
}
