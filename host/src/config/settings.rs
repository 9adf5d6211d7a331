//! The fixed limits and timings of a process: the server's, the queue's, identity's. Defaults
//! here; `Config::from_lookup` reads the few that have a variable.

use std::time::Duration;

/// What a slow or idle client may hold of the server. `MAX_CONNECTIONS` sets the cap; the
/// timeouts are fixed defaults (tests shorten them).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections one client address may hold at once (trusted proxies excepted); more are
    /// closed at once, so that one machine cannot take every slot.
    pub max_connections_per_client: usize,
    /// A request's headers must arrive within this (a client trickling them is cut off); hyper
    /// starts the same timer whenever a keep-alive connection waits for its next request, so it
    /// is the idle timeout too.
    pub header_read_timeout: Duration,
    /// A JSON body must arrive within this (uploads have their own stall timeout instead).
    pub body_read_timeout: Duration,
    /// A response the client does not read for this long (not a byte taken) ends its
    /// connection: a client that never reads must not hold a connection forever.
    pub write_stall_timeout: Duration,
    /// After a shutdown signal, in-flight requests get this long before they are dropped.
    pub shutdown_grace: Duration,
    /// A refused request's unread body is read and discarded up to this many bytes, so that the
    /// client, still sending, gets to read the answer instead of a reset connection.
    pub drain_limit: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_client: 256,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            write_stall_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            drain_limit: 64 << 20,
        }
    }
}

/// How workers take, keep alive and retry jobs, and what the cleanup removes. Fixed defaults;
/// `JOB_STALE_AFTER_SECS` (default 60) sets how long a silent worker keeps its job, `ORPHAN_GRACE_SECS`
/// (default 3600) how old an object no row names must be before the cleanup deletes it.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// How often an idle worker looks for work (uploads in the same process wake it at once).
    pub poll_interval: Duration,
    /// A `processing` job whose heartbeat is older than this goes back to the queue.
    pub stale_after: Duration,
    /// Attempts before a job that keeps failing transiently (storage down) is `failed`. With the
    /// default backoff, 8 attempts span about 4 minutes: a bucket restarted or failed over in
    /// that time loses no variant (5 attempts spanned 30 s).
    pub max_attempts: i32,
    /// The longest one run of a job may take (a hung store must not hold a job forever).
    pub job_timeout: Duration,
    /// Retry delay after attempt n: `backoff_base * 2^(n-1)`, at most `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A `cleanup` job is enqueued when none was made within this period.
    pub cleanup_every: Duration,
    /// Soft-deleted projects older than this are purged (30 days).
    pub purge_after: Duration,
    /// Objects no row names are deleted only when older than this (an upload may be in flight).
    pub orphan_grace: Duration,
    /// The waits between a webhook delivery's attempts; after the last, it has failed. The
    /// default is the schedule of Svix (the Standard Webhooks authors: 5 s, 5 min, 30 min, 2 h,
    /// 5 h, then 10 h twice), its last two waits cut to 8 h so that the whole stays within 24 h
    /// (23.6 h): a receiver down for most of a day still gets every event.
    pub webhook_retry_after: Vec<Duration>,
}

impl JobSettings {
    /// How often a worker refreshes the heartbeat of the jobs it runs.
    pub fn heartbeat_every(&self) -> Duration {
        (self.stale_after / 4).max(Duration::from_millis(100))
    }

    /// The wait before a webhook delivery's attempt `attempts + 1`; `None` when it was the last.
    pub fn webhook_retry(&self, attempts: i32) -> Option<Duration> {
        usize::try_from(attempts - 1).ok().and_then(|n| self.webhook_retry_after.get(n)).copied()
    }

    /// The attempts after which a job taken back from a silent worker fails: any job's, and a
    /// webhook delivery's (its schedule's).
    pub fn reclaim_limits(&self) -> (i32, i32) {
        (self.max_attempts, self.webhook_retry_after.len() as i32 + 1)
    }

    /// The wait before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = attempts.clamp(1, 20) as u32 - 1;
        self.backoff_base.saturating_mul(1u32 << exp).min(self.backoff_max)
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            stale_after: Duration::from_secs(60),
            max_attempts: 8,
            job_timeout: Duration::from_secs(30 * 60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            cleanup_every: Duration::from_secs(24 * 3600),
            purge_after: Duration::from_secs(30 * 24 * 3600),
            orphan_grace: Duration::from_secs(3600),
            webhook_retry_after: [5, 300, 1800, 7200, 18000, 28800, 28800].map(Duration::from_secs).to_vec(),
        }
    }
}

/// Lifetimes and login throttling. Not read from the environment: the contract fixes them.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access token (JWT) lifetime: 15 minutes.
    pub access_ttl: Duration,
    /// Refresh token lifetime: 30 days.
    pub refresh_ttl: Duration,
    /// Failed logins allowed per username and per client address within `login_window`.
    pub login_max_failures: usize,
    pub login_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            login_max_failures: 10,
            login_window: Duration::from_secs(60),
        }
    }
}
