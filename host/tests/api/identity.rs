//! Auth and Users of API.md: tokens, rotation, reuse detection, throttling, the role matrix.

use std::time::Duration;

use base64::Engine;
use mbk_host::db::refresh_tokens;
use mbk_host::db::users::Role;
use serde_json::json;

use crate::helpers::{DbKind, StoreKind, TEST_JWT_SECRET, TestApp, assert_error, db_tests};

db_tests!(
    login_returns_a_token_pair_and_me_answers,
    login_failures_look_alike,
    refresh_rotates_and_detects_reuse,
    reuse_revokes_only_that_login,
    logout_revokes_the_token,
    expired_tokens_are_refused,
    forged_access_tokens_are_refused,
    users_routes_follow_the_role_matrix,
    create_user_enforces_the_rules,
    list_users_paginates,
    delete_user_rules,
    failed_logins_are_throttled,
    secrets_are_stored_as_hashes_only,
);

const PW: &str = "password-of-test";

async fn app(db: DbKind) -> TestApp {
    TestApp::spawn(db, StoreKind::Filesystem).await
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", None, &json!({"refresh_token": token})).await
}

async fn login_returns_a_token_pair_and_me_answers(db: DbKind) {
    let app = app(db).await;
    let id = app.make_user("alice", PW, Role::Admin).await;
    let response = app.login("alice", PW).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().expect("access token");
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() > 40));

    let me: serde_json::Value = app.get_as("/auth/me", Some(access)).await.json().await.expect("json");
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["username"], "alice");
    assert_eq!(me["role"], "admin");
    assert!(chrono::DateTime::parse_from_rfc3339(me["created_at"].as_str().expect("created_at")).is_ok());
    assert_eq!(me.as_object().expect("object").len(), 4, "no hash or other internals: {me}");
}

async fn login_failures_look_alike(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    let unknown = assert_error(app.login("nobody", PW).await, 401, "unauthorized").await;
    let wrong = assert_error(app.login("alice", "wrong-password").await, 401, "unauthorized").await;
    assert_eq!(unknown, wrong, "no user enumeration by message");
    let huge = "x".repeat(100_000);
    assert_error(app.login("alice", &huge).await, 401, "unauthorized").await;

    let raw = |body: &'static str, content_type: &'static str| {
        app.client.post(app.url("/auth/login")).header("content-type", content_type).body(body).send()
    };
    assert_error(raw("{", "application/json").await.expect("send"), 400, "bad_request").await;
    let message =
        assert_error(raw(r#"{"username":"alice"}"#, "application/json").await.expect("send"), 400, "validation_failed")
            .await;
    assert!(message.contains("password"), "{message}");
    let message = assert_error(
        raw(r#"{"username":1,"password":"x"}"#, "application/json").await.expect("send"),
        400,
        "validation_failed",
    )
    .await;
    assert!(message.starts_with("username"), "{message}");
    assert_error(
        raw("username=alice", "application/x-www-form-urlencoded").await.expect("send"),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(app.get_as("/auth/me", None).await, 401, "unauthorized").await;
}

async fn refresh_rotates_and_detects_reuse(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    let (_, first) = app.tokens("alice", PW).await;

    let rotated = refresh(&app, &first).await;
    assert_eq!(rotated.status(), 200);
    let body: serde_json::Value = rotated.json().await.expect("json");
    let second = body["refresh_token"].as_str().expect("new refresh token").to_owned();
    assert_ne!(second, first);
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().expect("access");
    assert_eq!(app.get_as("/auth/me", Some(access)).await.status(), 200);

    // The old token again: reuse. It fails, and so does the token that replaced it.
    assert_error(refresh(&app, &first).await, 401, "unauthorized").await;
    assert_error(refresh(&app, &second).await, 401, "unauthorized").await;
    assert_error(refresh(&app, "mbkr_never-issued").await, 401, "unauthorized").await;
}

async fn reuse_revokes_only_that_login(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    let (_, phone) = app.tokens("alice", PW).await;
    let (_, laptop) = app.tokens("alice", PW).await;
    let phone_next: serde_json::Value = refresh(&app, &phone).await.json().await.expect("json");
    assert!(phone_next["refresh_token"].is_string());
    assert_eq!(refresh(&app, &phone).await.status(), 401, "reuse on the phone's login");
    // The laptop's login is another family and keeps working.
    assert_eq!(refresh(&app, &laptop).await.status(), 200);
}

async fn logout_revokes_the_token(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    let (_, token) = app.tokens("alice", PW).await;
    let response = app.post_json("/auth/logout", None, &json!({"refresh_token": token})).await;
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.expect("body").is_empty());
    assert_error(refresh(&app, &token).await, 401, "unauthorized").await;
    // Logging out twice, or with a token never issued, changes nothing and is not an error.
    assert_eq!(app.post_json("/auth/logout", None, &json!({"refresh_token": token})).await.status(), 204);
    assert_eq!(app.post_json("/auth/logout", None, &json!({"refresh_token": "junk"})).await.status(), 204);
    assert_error(app.post_json("/auth/logout", None, &json!({})).await, 400, "validation_failed").await;
}

async fn expired_tokens_are_refused(db: DbKind) {
    // Zero lifetimes: tokens are dead at birth, so no test sleeps for 15 minutes or 30 days.
    let app = TestApp::spawn_with(db, StoreKind::Filesystem, |c| {
        c.auth.access_ttl = Duration::ZERO;
        c.auth.refresh_ttl = Duration::ZERO;
    })
    .await;
    app.make_user("alice", PW, Role::User).await;
    let (access, refresh_token) = app.tokens("alice", PW).await;
    let message = assert_error(app.get_as("/auth/me", Some(&access)).await, 401, "unauthorized").await;
    assert!(message.contains("expired"), "{message}");
    let message = assert_error(refresh(&app, &refresh_token).await, 401, "unauthorized").await;
    assert!(message.contains("expired"), "{message}");
    // ... and purged.
    let hash = mbk_host::auth::tokens::hash_secret(&refresh_token);
    assert!(refresh_tokens::find_by_hash(&app.state.db, &hash).await.expect("query").is_none());
}

async fn forged_access_tokens_are_refused(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    let (access, _) = app.tokens("alice", PW).await;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = access.split('.').collect();
    let payload = String::from_utf8(engine.decode(parts[1]).expect("b64")).expect("utf8");

    let tampered = format!("{}.{}.{}", parts[0], engine.encode(payload.replace("\"user\"", "\"su\"")), parts[2]);
    let none = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(payload.replace("\"user\"", "\"su\""))
    );
    let other_key =
        mbk_host::auth::tokens::TokenKeys::new("another-secret-another-secret-xyz", Duration::from_secs(900))
            .expect("keys")
            .issue(uuid::Uuid::now_v7(), Role::Su)
            .expect("token");
    for token in [tampered.as_str(), none.as_str(), other_key.as_str(), "garbage", "a.b.c"] {
        assert_error(app.get_as("/auth/me", Some(token)).await, 401, "unauthorized").await;
        assert_error(app.get_as("/users", Some(token)).await, 401, "unauthorized").await;
    }
    let basic =
        app.client.get(app.url("/auth/me")).header("authorization", "Basic YWxpY2U6eA==").send().await.expect("send");
    assert_error(basic, 401, "unauthorized").await;
    // Sanity: the real token, signed with the test secret, is accepted.
    assert!(TEST_JWT_SECRET.len() >= 32);
    assert_eq!(app.get_as("/auth/me", Some(&access)).await.status(), 200);
}

async fn users_routes_follow_the_role_matrix(db: DbKind) {
    let app = app(db).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let (_, admin) = app.user_with_token("ada", Role::Admin).await;
    let (_, user) = app.user_with_token("uma", Role::User).await;
    let bad = "not-a-token";

    for (token, status, code) in [
        (Some(admin.as_str()), 403, "forbidden"),
        (Some(user.as_str()), 403, "forbidden"),
        (None, 401, "unauthorized"),
        (Some(bad), 401, "unauthorized"),
    ] {
        let target = app.make_user(&format!("t{}", uuid::Uuid::now_v7().simple()), PW, Role::User).await;
        assert_error(
            app.post_json("/users", token, &json!({"username": "x1", "password": PW, "role": "user"})).await,
            status,
            code,
        )
        .await;
        assert_error(app.get_as("/users", token).await, status, code).await;
        assert_error(app.delete_as(&format!("/users/{target}"), token).await, status, code).await;
    }
    let created =
        app.post_json("/users", Some(&su), &json!({"username": "newbie", "password": PW, "role": "user"})).await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    assert_eq!(app.get_as("/users", Some(&su)).await.status(), 200);
    let id = created["id"].as_str().expect("id");
    assert_eq!(app.delete_as(&format!("/users/{id}"), Some(&su)).await.status(), 204);
}

async fn create_user_enforces_the_rules(db: DbKind) {
    let app = app(db).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    let create = |body: serde_json::Value| {
        let (app, su) = (&app, su.clone());
        async move { app.post_json("/users", Some(&su), &body).await }
    };

    let response = create(json!({"username": "ada", "password": "long enough pw", "role": "admin"})).await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["username"], "ada");
    assert_eq!(body["role"], "admin");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().expect("id")).is_ok());
    assert!(body.get("password_hash").is_none() && body.get("password").is_none(), "{body}");
    assert_eq!(app.login("ada", "long enough pw").await.status(), 200, "the new user can log in");

    let cases = [
        (json!({"username": "s", "password": PW, "role": "su"}), "role"),
        (json!({"username": "s", "password": PW, "role": "boss"}), "role"),
        (json!({"username": "s", "password": "short", "role": "user"}), "password"),
        (json!({"username": "", "password": PW, "role": "user"}), "username"),
        (json!({"username": "has space", "password": PW, "role": "user"}), "username"),
        (json!({"username": "s", "password": PW}), "role"),
    ];
    for (body, field) in cases {
        let message = assert_error(create(body.clone()).await, 400, "validation_failed").await;
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let message =
        assert_error(create(json!({"username": "ada", "password": PW, "role": "user"})).await, 409, "conflict").await;
    assert!(message.contains("ada"), "{message}");
}

async fn list_users_paginates(db: DbKind) {
    let app = app(db).await;
    let (_, su) = app.user_with_token("root", Role::Su).await;
    for i in 0..5 {
        app.make_user(&format!("user{i}"), PW, Role::User).await;
    }
    let page: serde_json::Value = app.get_as("/users?per_page=2&page=2", Some(&su)).await.json().await.expect("json");
    assert_eq!(
        (page["page"].as_i64(), page["per_page"].as_i64(), page["total"].as_i64(), page["total_pages"].as_i64()),
        (Some(2), Some(2), Some(6), Some(3))
    );
    let names: Vec<&str> =
        page["items"].as_array().expect("items").iter().map(|u| u["username"].as_str().expect("name")).collect();
    assert_eq!(names, ["user1", "user2"], "oldest first");
    let all: serde_json::Value = app.get_as("/users", Some(&su)).await.json().await.expect("json");
    assert_eq!(all["per_page"], 20);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(6));
    assert!(!all.to_string().contains("argon2"), "no password hash is ever listed");
    let past_end: serde_json::Value = app.get_as("/users?page=9", Some(&su)).await.json().await.expect("json");
    assert_eq!(past_end["items"].as_array().map(Vec::len), Some(0));
    for query in ["per_page=0", "per_page=101", "page=0", "page=-3", "per_page=ten"] {
        let message =
            assert_error(app.get_as(&format!("/users?{query}"), Some(&su)).await, 400, "validation_failed").await;
        assert!(message.starts_with(query.split('=').next().expect("field")), "{query}: {message}");
    }
}

async fn delete_user_rules(db: DbKind) {
    let app = app(db).await;
    let (root, su) = app.user_with_token("root", Role::Su).await;
    let other_su = app.make_user("root2", PW, Role::Su).await;
    let victim = app.make_user("victim", PW, Role::User).await;
    let (_, victim_refresh) = app.tokens("victim", PW).await;

    assert_eq!(app.delete_as(&format!("/users/{victim}"), Some(&su)).await.status(), 204);
    assert_error(app.login("victim", PW).await, 401, "unauthorized").await;
    assert_error(refresh(&app, &victim_refresh).await, 401, "unauthorized").await;
    assert_error(app.delete_as(&format!("/users/{victim}"), Some(&su)).await, 404, "not_found").await;
    assert_error(app.delete_as(&format!("/users/{root}"), Some(&su)).await, 403, "forbidden").await;
    assert_error(app.delete_as(&format!("/users/{other_su}"), Some(&su)).await, 403, "forbidden").await;
    assert_error(app.delete_as("/users/not-a-uuid", Some(&su)).await, 400, "bad_request").await;

    // A user who still owns projects is kept (their blobs would be orphaned otherwise).
    let (owner, owner_token) = app.user_with_token("owner", Role::User).await;
    app.create_project(&owner_token, "still here").await;
    let message = assert_error(app.delete_as(&format!("/users/{owner}"), Some(&su)).await, 409, "conflict").await;
    assert!(message.contains("project"), "{message}");
    assert_eq!(app.login("owner", PW).await.status(), 200, "the user is untouched");
}

async fn failed_logins_are_throttled(db: DbKind) {
    let app = app(db).await;
    app.make_user("alice", PW, Role::User).await;
    app.make_user("bob", PW, Role::User).await;
    for _ in 0..10 {
        assert_error(app.login("alice", "guess").await, 401, "unauthorized").await;
    }
    // Blocked now from this address, even with the right password.
    let response = app.login("alice", PW).await;
    let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, 429, "rate_limited").await;
    // Another username from the same address still gets its own tries...
    assert_eq!(app.login("bob", PW).await.status(), 200);
    // ...until the address has sprayed three times the limit over any usernames.
    for n in 0..20 {
        assert_error(app.login(&format!("sprayed{n}"), "guess").await, 401, "unauthorized").await;
    }
    assert_error(app.login("bob", PW).await, 429, "rate_limited").await;
}

async fn secrets_are_stored_as_hashes_only(db: DbKind) {
    let app = app(db).await;
    let id = app.make_user("alice", PW, Role::User).await;
    let (_, token) = app.tokens("alice", PW).await;
    let user = mbk_host::db::users::find_by_id(&app.state.db, id).await.expect("query").expect("row");
    assert!(user.password_hash.starts_with("$argon2id$"), "{}", user.password_hash);
    assert!(!user.password_hash.contains(PW));
    let row =
        refresh_tokens::find_by_hash(&app.state.db, &mbk_host::auth::tokens::hash_secret(&token)).await.expect("query");
    assert!(row.is_some(), "found by hash");
    let stored: Vec<String> =
        mbk_host::dispatch!(&app.state.db, |pool| sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
            .fetch_all(pool)
            .await)
        .expect("query");
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&token)), "{stored:?}");
    assert_eq!(refresh_tokens::count_active_for_user(&app.state.db, id).await.expect("count"), 1);
}
