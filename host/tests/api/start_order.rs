//! Start order: a process started before its PostgreSQL answers (compose starts them together; a
//! restart loop may start one while the database restarts) waits for it and comes up, instead of
//! exiting for its supervisor to try again.

use std::time::Duration;

use crate::cli::{Running, bare, free_port, wait_until_up};
use crate::helpers::PgTestDb;

/// Forwards every connection on `port` to `to`: the database "appears" when this starts.
async fn forward(port: u16, to: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the forwarder");
    loop {
        let Ok((mut client, _)) = listener.accept().await else { continue };
        let to = to.clone();
        tokio::spawn(async move {
            if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

#[tokio::test]
async fn an_api_started_before_its_database_comes_up_when_it_answers() {
    let db = PgTestDb::create().await;
    let mut url = reqwest::Url::parse(&db.url).expect("a URL");
    let real = format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432));
    let (db_port, api_port) = (free_port(), free_port());
    url.set_port(Some(db_port)).expect("a port");

    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = bare(data.path());
    cmd.arg("api")
        .env("DB_URL", url.as_str())
        .env("BIND_ADDR", format!("127.0.0.1:{api_port}"))
        .env("DATA_DIR", data.path())
        .env("JWT_SECRET", "a-test-secret-of-at-least-thirty-two-characters");
    let mut api = Running::start(cmd);
    let waiting = api.wait_for_log("the database does not answer yet");
    assert!(waiting.contains("the database does not answer yet"), "{waiting}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(api.child.try_wait().expect("try_wait").is_none(), "it gave up on its database:\n{}", api.log());

    let forwarder = tokio::spawn(forward(db_port, real));
    let base = format!("http://127.0.0.1:{api_port}");
    wait_until_up(&base, &mut api).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 200, "{}", api.log());
    assert!(!api.log().contains(&db.url), "the database URL (with its credentials) reached the log");
    forwarder.abort();
}
