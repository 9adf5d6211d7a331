//! The repository layer: one face, SQLite (embedded default) and PostgreSQL underneath.
//!
//! [`Db`] holds one pool of either kind. Repository functions live in one module per table and
//! use [`dispatch!`] to run the same query on either pool when the SQL fits both dialects (both
//! accept `$1` placeholders and `RETURNING`; timestamps and ids are always made in Rust, never by
//! `now()` or a sequence). Where a dialect differs, the function matches on [`Db`] and writes each.
//! Each backend has its own, immutable migrations under `migrations/`.
//!
//! Writes that must go together take a [`Tx`] (from [`Db::begin`]) that the caller passes from
//! one repository function to the next and commits; inside, [`dispatch_tx!`] runs one SQL text on
//! either backend's connection, as [`dispatch!`] does on a pool.
//!
//! On SQLite, sqlx stores `DateTime<Utc>` as RFC 3339 text with a fixed `+00:00` offset and 0, 3,
//! 6 or 9 fraction digits; such strings compare in time order, so `expires_at <= $1` works on both.

pub mod api_keys;
pub mod file_analysis;
pub mod files;
pub mod jobs;
pub mod plugin_runs;
pub mod plugins;
pub mod projects;
pub mod refresh_tokens;
pub mod siblings;
pub mod status;
pub mod tus_uploads;
pub mod upload_tokens;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite};

use uuid::Uuid;

use crate::config::DbUrl;

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once per
/// backend, so the SQL, binds and row types are checked against both.
#[macro_export]
macro_rules! dispatch {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of whichever transaction `$tx` (a
/// `&mut Tx`) holds: [`dispatch!`] for a transaction. Pass `&mut *$conn` to each query (a
/// `&mut` handed to a generic executor moves rather than reborrows).
#[macro_export]
macro_rules! dispatch_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// Which dialect a [`Db`] or [`Tx`] speaks, for the few fragments that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A transaction on either backend, passed by `&mut` to the repository functions that must write
/// together, then [`Tx::commit`]ted by whoever began it. Dropped without a commit, it rolls back.
pub enum Tx<'a> {
    Sqlite(sqlx::Transaction<'a, Sqlite>),
    Postgres(sqlx::Transaction<'a, Postgres>),
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    pub fn kind(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A bind of a query whose SQL is put together (a paginated list's filter, a job's release).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Uuid(Uuid),
    MaybeUuid(Option<Uuid>),
    MaybeText(Option<&'a str>),
    Int(i64),
}

/// One page of a list and the number of rows its filter matches, what every paginated list
/// answers: `SELECT COUNT(*) FROM {from_where}`, then
/// `SELECT {columns} FROM {from_where} ORDER BY {order} LIMIT .. OFFSET ..`. `args` bind `$1..`
/// of `from_where`; the limit and offset take the next two placeholders.
pub(crate) async fn page<T>(
    db: &Db,
    columns: &str,
    from_where: &str,
    order: &str,
    args: &[Arg<'_>],
    limit: i64,
    offset: i64,
) -> Result<(Vec<T>, i64), sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let count_sql = format!("SELECT COUNT(*) FROM {from_where}");
    let n = args.len();
    let list_sql = format!("SELECT {columns} FROM {from_where} ORDER BY {order} LIMIT ${} OFFSET ${}", n + 1, n + 2);
    dispatch!(db, |pool| {
        let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql));
        let mut list = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(list_sql));
        for arg in args {
            (count, list) = match *arg {
                Arg::Uuid(v) => (count.bind(v), list.bind(v)),
                Arg::MaybeUuid(v) => (count.bind(v), list.bind(v)),
                Arg::MaybeText(v) => (count.bind(v), list.bind(v)),
                Arg::Int(v) => (count.bind(v), list.bind(v)),
            };
        }
        let total = count.fetch_one(pool).await?;
        let rows = list.bind(limit).bind(offset).fetch_all(pool).await?;
        Ok((rows, total))
    })
}

/// Rows of `table` (one of ours, never a caller's text) per status, for `GET /metrics`.
pub(crate) async fn count_by_status(db: &Db, table: &'static str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!("SELECT status, COUNT(*) FROM {table} GROUP BY status ORDER BY status");
    dispatch!(db, |pool| sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)
}

/// Error texts are stored at most this long (a plugin's message can be as long as it likes).
pub const MAX_ERROR_LEN: usize = 2048;

/// `text` cut to [`MAX_ERROR_LEN`] bytes on a character boundary.
pub fn clip(text: &str) -> &str {
    if text.len() <= MAX_ERROR_LEN {
        return text;
    }
    let mut end = MAX_ERROR_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How long start-up waits for a PostgreSQL that does not answer yet (starting, restarting, not
/// reachable yet): a process started beside its database, or while it restarts, comes up once it
/// does instead of exiting for its supervisor to try again.
const START_WAIT: Duration = Duration::from_secs(60);

/// `connect()` again, with a growing pause, while the server is not there or not ready (refused,
/// reset, "starting up", "shutting down") and `wait` has not passed; any other failure (a wrong
/// password, no such database) at once.
async fn connect_waiting<P, F>(connect: impl Fn() -> F, wait: Duration) -> Result<P, sqlx::Error>
where
    F: std::future::Future<Output = Result<P, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(250);
    loop {
        match connect().await {
            Err(e) if not_there_yet(&e) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, retry_in = ?pause, "the database does not answer yet; waiting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            answer => return answer,
        }
    }
}

/// The server is absent or not ready, as opposed to refusing us.
fn not_there_yet(e: &sqlx::Error) -> bool {
    // 57P03 cannot_connect_now: starting up, shutting down, in recovery.
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
        || e.as_database_error().and_then(|d| d.code()).is_some_and(|code| code == "57P03")
}

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects (creating the SQLite file and its folder when missing).
    pub async fn connect(url: &DbUrl) -> anyhow::Result<Db> {
        match url {
            DbUrl::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url)
                    .with_context(|| format!("DB_URL: cannot parse {url:?}"))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open the SQLite database {url}"))?;
                Ok(Db::Sqlite(pool))
            }
            DbUrl::Postgres(url) => {
                let options = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5));
                let pool = connect_waiting(|| options.clone().connect(url), START_WAIT)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {}", crate::config::redact_url(url)))?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await,
        }
        .context("database migration failed")
    }

    /// Begins a [`Tx`]. On SQLite it is `BEGIN IMMEDIATE`, which takes the write lock up front: a
    /// transaction is for writes that go together, and two deferred ones that both read and then
    /// write would deadlock into SQLITE_BUSY.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
            Db::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }

    pub fn kind(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// One round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        dispatch!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        dispatch!(self, |pool| pool.close().await)
    }
}

/// Whether the database refused for load rather than for the request: SQLite's "database is
/// locked" / "busy" after the busy timeout (codes 5 and 6, and their extended forms), PostgreSQL's
/// lock timeout, serialization failure, deadlock or too many connections. Worth a retry.
pub fn is_overloaded(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    let Some(code) = db.code() else { return false };
    match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        Some(_) => code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
        None => matches!(code.as_ref(), "55P03" | "40001" | "40P01" | "53300"),
    }
}

/// Whether an error is a unique-constraint violation (a clean 409, not a 500).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}
