//! Sessions under attack: tokens of deleted users, racing refreshes, lockouts used as a weapon.

use mbk_host::db::users::Role;
use serde_json::json;

use crate::helpers::{DbKind, StoreKind, TestApp, assert_error, db_tests};

db_tests!(
    a_deleted_users_token_stops_working_at_once,
    parallel_refreshes_exchange_a_token_once,
    failures_from_one_address_never_lock_the_owner_out_elsewhere,
    forwarded_addresses_count_only_from_trusted_proxies,
);

const PW: &str = "password-of-test";

async fn a_deleted_users_token_stops_working_at_once(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (admin, admin_token) = app.user_with_token("ada", Role::Admin).await;
    assert_eq!(app.get_as("/plugins", Some(&admin_token)).await.status(), 200);

    assert_eq!(app.delete_as(&format!("/users/{admin}"), Some(&su)).await.status(), 204);
    // The access token has 15 minutes left, but its user is gone: nothing it names works.
    let message = assert_error(app.get_as("/auth/me", Some(&admin_token)).await, 401, "unauthorized").await;
    assert!(message.contains("no longer exists"), "{message}");
    assert_error(app.get_as("/plugins", Some(&admin_token)).await, 401, "unauthorized").await;
    assert_error(app.get_as("/admin/jobs", Some(&admin_token)).await, 401, "unauthorized").await;
    // Used to be a 500 (the project's owner no longer exists: a foreign-key violation).
    let created = app.post_json("/projects", Some(&admin_token), &json!({"name": "ghost"})).await;
    assert_error(created, 401, "unauthorized").await;
    assert_eq!(app.get_as("/auth/me", Some(&su)).await.status(), 200, "others are untouched");
}

/// Two refreshes of one token at once: at most one wins, and the loser's reuse detection
/// revokes the winner's new token too (it used to be inserted after the family was revoked).
async fn parallel_refreshes_exchange_a_token_once(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    app.make_user("alice", PW, Role::User).await;
    for round in 0..12 {
        let (_, token) = app.tokens("alice", PW).await;
        let body = json!({"refresh_token": token});
        let (a, b) =
            tokio::join!(app.post_json("/auth/refresh", None, &body), app.post_json("/auth/refresh", None, &body));
        let mut winners = Vec::new();
        for response in [a, b] {
            match response.status().as_u16() {
                200 => {
                    let pair: serde_json::Value = response.json().await.expect("json");
                    winners.push(pair["refresh_token"].as_str().expect("refresh").to_owned());
                }
                _ => {
                    assert_error(response, 401, "unauthorized").await;
                }
            }
        }
        assert!(winners.len() <= 1, "round {round}: the token was exchanged twice");
        // Whoever won, the race was reuse: the whole login is revoked, the new token included.
        for new_token in winners {
            let again = app.post_json("/auth/refresh", None, &json!({"refresh_token": new_token})).await;
            assert_error(again, 401, "unauthorized").await;
        }
        // Both at once presented the same token: nobody keeps the login.
        assert_error(app.post_json("/auth/refresh", None, &body).await, 401, "unauthorized").await;
    }
}

/// Logins through a trusted proxy, so that the test can speak from many client addresses.
async fn login_from(app: &TestApp, address: &str, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request")
}

async fn failures_from_one_address_never_lock_the_owner_out_elsewhere(db: DbKind) {
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |config| {
        config.trusted_proxies = vec![mbk_host::net::Cidr::parse("127.0.0.1").expect("cidr")];
    })
    .await;
    app.make_user("victim", PW, Role::User).await;
    app.make_user("root", PW, Role::Su).await;
    for username in ["victim", "root"] {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(login_from(&app, "203.0.113.66", username, "guess").await.status().as_u16());
        }
        assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
        assert!(statuses[10..].iter().all(|s| *s == 429), "the attacker is slowed down: {statuses:?}");
        // The owner, from their own address, logs in at once (this used to be a 429).
        let owner = login_from(&app, "198.51.100.7", username, PW).await;
        assert_eq!(owner.status(), 200, "{username} is not locked out");
        // And the attacker still is, even with the right password.
        assert_error(login_from(&app, "203.0.113.66", username, PW).await, 429, "rate_limited").await;
    }
}

async fn forwarded_addresses_count_only_from_trusted_proxies(db: DbKind) {
    // No TRUSTED_PROXIES: a client cannot launder its failures through made-up headers.
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    app.make_user("victim", PW, Role::User).await;
    for n in 0..10 {
        let response = login_from(&app, &format!("192.0.2.{n}"), "victim", "guess").await;
        assert_error(response, 401, "unauthorized").await;
    }
    let response = login_from(&app, "192.0.2.200", "victim", PW).await;
    assert_error(response, 429, "rate_limited").await;
}
