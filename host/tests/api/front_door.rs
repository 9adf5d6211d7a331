//! The front door against hostile clients: trickled headers, stalled bodies, connection floods,
//! bodies refused before they were read, metrics blown up by made-up methods.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error};

async fn app_with(adjust: impl FnOnce(&mut mbk_host::config::Config)) -> TestApp {
    TestApp::spawn_with(DbKind::Sqlite, StoreKind::Filesystem, adjust).await
}

/// Reads from `stream` until the server closes it or `limit` passes; what arrived, and whether
/// it was closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trickling_headers_are_cut_off_and_delay_nobody() {
    let app = app_with(|c| c.server.header_read_timeout = Duration::from_secs(2)).await;
    let addr = app.addr;
    // 200 clients that send a request line and then one header byte now and then.
    let slow = tokio::task::spawn_blocking(move || crate::abuse::trickle(addr, 200, Duration::from_secs(20)));
    // Meanwhile a normal request is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = app.client.get(app.url("/healthz")).timeout(Duration::from_secs(5)).send().await.expect("answered");
    assert_eq!(response.status(), 200);
    let (open, elapsed) = slow.await.expect("slow clients");
    println!("200 header-trickling clients: all cut off after {:.1} s (header timeout 2 s)", elapsed.as_secs_f64());
    assert_eq!(open, 0, "{open} trickling connections were still open after {elapsed:?}");
}

/// Holds 3 idle connections to `app`: a 4th request is not served until they are dropped.
async fn three_held_connections_block_a_fourth(app: &TestApp) {
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(app.addr).expect("connect")).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let blocked = client.get(app.url("/healthz")).timeout(Duration::from_secs(1)).send().await;
    assert!(blocked.is_err(), "a 4th connection was served while 3 were held: {blocked:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = client.get(app.url("/healthz")).timeout(Duration::from_secs(5)).send().await.expect("served");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    three_held_connections_block_a_fourth(&app_with(|c| c.server.max_connections = 3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    three_held_connections_block_a_fourth(&app_with(|c| c.server.max_connections_per_client = 3).await).await;
}

/// A client that asks for a large blob and never reads it: its connection ends once the
/// response has made no progress for the stall timeout (seen here through the per-client cap
/// of 1: the next request of that client is served only after the stalled one ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_response_lets_go() {
    let app = app_with(|c| c.server.write_stall_timeout = Duration::from_secs(1)).await;
    let t = app.project_with_key(serde_json::json!({"quotas": {"max_file_bytes": null}})).await;
    let uploaded = app.upload("/upload/file", &t.key, "big.bin", crate::helpers::pattern(48 << 20, 3)).await;
    assert_eq!(uploaded.status(), 201);
    let file: serde_json::Value = uploaded.json().await.expect("json");
    let path = file["url"].as_str().expect("url").trim_start_matches(&app.base).to_owned();
    let addr = app.addr;
    let sizes = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: mbk\r\n\r\n").as_bytes()).expect("request");
        // Never read: the server's writes fill the socket buffers and stall.
        std::thread::sleep(Duration::from_secs(4));
        let (got, closed) = read_until_closed(&mut s, Duration::from_secs(20));
        (got.len(), closed)
    })
    .await
    .expect("client");
    assert!(sizes.1, "the server kept a never-reading client's connection open");
    assert!(sizes.0 < 48 << 20, "the whole blob was sent ({} bytes): the client did read", sizes.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_json_body_is_a_408() {
    let app = app_with(|c| c.server.body_read_timeout = Duration::from_secs(1)).await;
    let addr = app.addr;
    let (answer, _) = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"POST /auth/login HTTP/1.1\r\nHost: mbk\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
            .expect("write");
        read_until_closed(&mut s, Duration::from_secs(10))
    })
    .await
    .expect("client");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer:?}");
}

/// An 8 MB upload refused for its missing key: a client that writes its whole body before
/// reading (curl, Python) reads the 401 rather than a reset connection (which it used to get in
/// most tries); reqwest, which reads while it writes, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_refused_unread_still_gets_its_answer() {
    let app = app_with(|_| {}).await;
    let addr = app.addr;
    let answers = tokio::task::spawn_blocking(move || {
        (0..5).map(|_| crate::abuse::upload_unread(addr, 8 << 20)).collect::<Vec<_>>()
    })
    .await
    .expect("uploads");
    assert!(answers.iter().all(|a| a.starts_with("HTTP/1.1 401")), "{answers:?}");
    let (content_type, body) =
        crate::helpers::multipart_body("big.bin", crate::helpers::chunks(crate::helpers::pattern(8 << 20, 1)));
    let response = app.client.post(app.url("/upload/image")).header("content-type", content_type).body(body).send();
    assert_error(response.await.expect("answered"), 401, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = app_with(|_| {}).await;
    let size = || async { app.get("/metrics").await.text().await.expect("text").len() };
    let before = size().await;
    for n in 0..1500 {
        let method = reqwest::Method::from_bytes(format!("XM{n}").as_bytes()).expect("method");
        let _ = app.client.request(method, app.url(&format!("/files/{n}"))).send().await.expect("request");
    }
    let after = size().await;
    let text = app.get("/metrics").await.text().await.expect("text");
    println!("/metrics after 1,500 made-up methods: {before} -> {after} bytes");
    assert!(after < before + 4096, "/metrics grew from {before} to {after} bytes");
    assert!(text.contains("method=\"OTHER\""), "{text}");
    assert!(!text.contains("XM1"), "{text}");
    assert!(text.contains("route=\"/files/{id}\""), "routes are labelled by template: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_token_protects_the_metrics() {
    let token = "metrics-token-0123456789";
    let app = app_with(|c| c.metrics_token = Some(token.into())).await;
    assert_error(app.get("/metrics").await, 401, "unauthorized").await;
    assert_error(app.get_as("/metrics", Some("metrics-token-wrong-value")).await, 401, "unauthorized").await;
    let response = app.get_as("/metrics", Some(token)).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("text").contains("mbk_queue_depth"));
    assert_eq!(app.get("/healthz").await.status(), 200, "health stays open");
}
