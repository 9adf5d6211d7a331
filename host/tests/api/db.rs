//! The repository layer on both backends.

use mbk_host::config::DbUrl;
use mbk_host::db::users::{self, NewUser, Role};
use mbk_host::db::{Db, is_unique_violation};

use crate::helpers::{DbKind, TestDb, db_tests};

db_tests!(
    migrations_create_every_table,
    migrations_are_idempotent,
    users_roundtrip,
    a_database_busy_past_its_timeout_is_a_503
);

async fn connect(kind: DbKind, test_db: &TestDb) -> Db {
    let url = match kind {
        DbKind::Sqlite => DbUrl::Sqlite(test_db.url.clone()),
        DbKind::Postgres => DbUrl::Postgres(test_db.url.clone()),
    };
    let db = Db::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

async fn migrations_create_every_table(kind: DbKind) {
    let test_db = TestDb::new(kind).await;
    let db = connect(kind, &test_db).await;
    assert_eq!(
        db.backend(),
        match kind {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    );
    for table in ["users", "refresh_tokens", "projects", "api_keys", "plugins", "files", "variants", "jobs"] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let count: i64 =
            mbk_host::dispatch!(&db, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(pool).await)
                .unwrap_or_else(|e| panic!("table {table}: {e}"));
        assert_eq!(count, 0, "{table}");
    }
}

async fn migrations_are_idempotent(kind: DbKind) {
    let test_db = TestDb::new(kind).await;
    let db = connect(kind, &test_db).await;
    db.migrate().await.expect("second run is a no-op");
    db.ping().await.expect("ping");
}

async fn users_roundtrip(kind: DbKind) {
    let test_db = TestDb::new(kind).await;
    let db = connect(kind, &test_db).await;
    let made = users::insert(&db, &NewUser { username: "alice", password_hash: "$argon2id$fake", role: Role::Admin })
        .await
        .expect("insert");
    assert_eq!(made.username, "alice");
    assert_eq!(made.role(), Role::Admin);
    assert_eq!(made.id.get_version_num(), 7, "ids are UUIDv7");

    let found = users::find_by_username(&db, "alice").await.expect("query").expect("found");
    assert_eq!(found.id, made.id);
    assert_eq!(found.password_hash, "$argon2id$fake");
    // Timestamps survive the round trip to the second on both backends.
    assert_eq!(found.created_at.timestamp(), made.created_at.timestamp());
    assert_eq!(users::find_by_id(&db, made.id).await.expect("query").map(|u| u.username), Some("alice".into()));
    assert!(users::find_by_username(&db, "bob").await.expect("query").is_none());

    let duplicate = users::insert(&db, &NewUser { username: "alice", password_hash: "x", role: Role::User }).await;
    let err = duplicate.expect_err("usernames are unique");
    assert!(is_unique_violation(&err), "{err}");
    assert_eq!(users::count(&db).await.expect("count"), 1);
}

/// A write that waits on another transaction's lock past its timeout (SQLite's "database is
/// locked", PostgreSQL's lock_not_available) is overload, answered 503 with Retry-After; it used
/// to be a 500.
async fn a_database_busy_past_its_timeout_is_a_503(kind: DbKind) {
    use axum::response::IntoResponse;
    use sqlx::{ConnectOptions, Connection};
    let test_db = TestDb::new(kind).await;
    let db = connect(kind, &test_db).await;
    users::insert(&db, &NewUser { username: "held", password_hash: "x", role: Role::User }).await.expect("insert");
    let update = "UPDATE users SET username = 'moved' WHERE username = 'held'";
    let refused = match kind {
        DbKind::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = test_db.url.parse().expect("url");
            let options = options.busy_timeout(std::time::Duration::from_millis(50));
            let mut holder = options.connect().await.expect("connect");
            let mut waiter = options.connect().await.expect("connect");
            let mut tx = holder.begin().await.expect("begin");
            sqlx::query(update).execute(&mut *tx).await.expect("take the write lock");
            let refused = sqlx::query(update).execute(&mut waiter).await.expect_err("locked");
            tx.rollback().await.expect("rollback");
            refused
        }
        DbKind::Postgres => {
            let mut holder = sqlx::PgConnection::connect(&test_db.url).await.expect("connect");
            let mut waiter = sqlx::PgConnection::connect(&test_db.url).await.expect("connect");
            let mut tx = holder.begin().await.expect("begin");
            sqlx::query(update).execute(&mut *tx).await.expect("lock the row");
            sqlx::query("SET lock_timeout = '50ms'").execute(&mut waiter).await.expect("set");
            let refused = sqlx::query(update).execute(&mut waiter).await.expect_err("lock timeout");
            tx.rollback().await.expect("rollback");
            refused
        }
    };
    assert!(mbk_host::db::is_overloaded(&refused), "{refused:?}");
    let response = mbk_host::http::error::AppError::from(refused).into_response();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let unique = users::insert(&db, &NewUser { username: "held", password_hash: "x", role: Role::User }).await;
    assert!(!mbk_host::db::is_overloaded(&unique.expect_err("taken")), "a unique violation is not overload");
}
