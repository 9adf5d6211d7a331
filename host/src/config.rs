//! Configuration: the environment (and an optional `.env`) validated into one [`Config`].
//!
//! Every variable of API.md's Configuration section is read here and nowhere else. A missing or
//! malformed value is a [`ConfigError`] naming the variable, which `main` prints as one line before
//! exiting with code 2: an operator should never have to read a backtrace to fix a typo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One bad variable: its name and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self { var, message: message.into() }
    }
}

/// Which SQL backend `DB_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(String),
    Postgres(String),
}

impl DbUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DbUrl::Sqlite(url) | DbUrl::Postgres(url) => url,
        }
    }
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// `DATA_DIR/blobs` (or any root), served publicly by the host under `/blobs/`.
    Filesystem {
        root: PathBuf,
    },
    S3(S3Config),
}

#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub force_path_style: bool,
    pub public_url: Option<String>,
}

// Hand-written so that the secret key can never reach a log line through `{:?}`.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("force_path_style", &self.force_path_style)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// `PIPELINE_ENGINE`: how the standard plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineEngine {
    /// The WebAssembly component (a build without one refuses to start).
    Wasm,
    /// Natively, linked into the host.
    Native,
    /// The component when this build has one, else natively.
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration of one process.
#[derive(Clone)]
pub struct Config {
    pub db_url: DbUrl,
    pub jwt_secret: String,
    pub data_dir: PathBuf,
    pub bind_addr: SocketAddr,
    /// Without a trailing slash; `{public_base_url}/blobs/{key}` is a filesystem blob's URL.
    pub public_base_url: String,
    pub storage: StorageConfig,
    pub worker_concurrency: usize,
    pub plugin_memory_mb: u64,
    pub plugin_timeout: Duration,
    pub pipeline_engine: PipelineEngine,
    pub log_format: LogFormat,
    /// Images with more pixels than this are refused at upload (decompression bombs).
    pub max_image_pixels: u64,
    /// Identity settings; fixed in production, shortened by tests (expiry without sleeping).
    pub auth: AuthSettings,
    /// Queue timings and the cleanup's limits.
    pub jobs: JobSettings,
    /// Connection limits and timeouts of the HTTP server.
    pub server: ServerSettings,
    /// `TRUSTED_PROXIES`: peers whose forwarding header names the client.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// `TRUSTED_PROXY_HEADER`: which header they write (`x-forwarded-for` or `forwarded`).
    pub forwarded_header: crate::net::ForwardedHeader,
    /// `METRICS_TOKEN`: when set, `GET /metrics` wants `Authorization: Bearer <it>`.
    pub metrics_token: Option<String>,
}

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
/// `JOB_STALE_AFTER_SECS` (default 60) sets how long a silent worker keeps its job.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// How often an idle worker looks for work (uploads in the same process wake it at once).
    pub poll_interval: Duration,
    /// A `processing` job whose heartbeat is older than this goes back to the queue.
    pub stale_after: Duration,
    /// Attempts before a job that keeps failing transiently (storage down) is `failed`.
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
}

impl JobSettings {
    /// How often a worker refreshes the heartbeat of the jobs it runs.
    pub fn heartbeat_every(&self) -> Duration {
        (self.stale_after / 4).max(Duration::from_millis(100))
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
            max_attempts: 5,
            job_timeout: Duration::from_secs(30 * 60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            cleanup_every: Duration::from_secs(24 * 3600),
            purge_after: Duration::from_secs(30 * 24 * 3600),
            orphan_grace: Duration::from_secs(3600),
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

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db_url", &redact_url(self.db_url.as_str()))
            .field("jwt_secret", &"<redacted>")
            .field("data_dir", &self.data_dir)
            .field("bind_addr", &self.bind_addr)
            .field("public_base_url", &self.public_base_url)
            .field("storage", &self.storage)
            .field("worker_concurrency", &self.worker_concurrency)
            .field("plugin_memory_mb", &self.plugin_memory_mb)
            .field("plugin_timeout", &self.plugin_timeout)
            .field("pipeline_engine", &self.pipeline_engine)
            .field("log_format", &self.log_format)
            .field("max_image_pixels", &self.max_image_pixels)
            .field("auth", &self.auth)
            .field("jobs", &self.jobs)
            .field("server", &self.server)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("forwarded_header", &self.forwarded_header)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

pub const DEFAULT_DB_URL: &str = "sqlite://./data/mbk.db";
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
const JWT_SECRET_FILE: &str = "jwt_secret";
const MIN_JWT_SECRET_LEN: usize = 32;

impl Config {
    /// Reads `.env` (when present) and then the process environment; real environment variables
    /// win over `.env` lines. Generates the JWT secret on the embedded default when unset.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", format!("cannot be read: {e}"))),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Validates variables given by `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let db_url = parse_db_url(get("DB_URL").as_deref().unwrap_or(DEFAULT_DB_URL))?;

        let bind_raw = get("BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.into());
        let bind_addr: SocketAddr = bind_raw.parse().map_err(|_| {
            ConfigError::new("BIND_ADDR", format!("expected IP:PORT such as {DEFAULT_BIND_ADDR}, got {bind_raw:?}"))
        })?;

        let public_base_url = match get("PUBLIC_BASE_URL") {
            Some(url) => parse_http_url("PUBLIC_BASE_URL", &url)?,
            None => format!("http://{bind_addr}"),
        };

        let storage = match get("S3_BUCKET_NAME") {
            None => StorageConfig::Filesystem { root: data_dir.join("blobs") },
            Some(bucket) => StorageConfig::S3(parse_s3(bucket, &get)?),
        };

        let worker_concurrency = parse_number("WORKER_CONCURRENCY", get("WORKER_CONCURRENCY"), 1, 1..=256)?;
        let plugin_memory_mb = parse_number("PLUGIN_MEMORY_MB", get("PLUGIN_MEMORY_MB"), 512, 16..=16384)?;
        let plugin_timeout_ms = parse_number("PLUGIN_TIMEOUT_MS", get("PLUGIN_TIMEOUT_MS"), 30_000, 10..=3_600_000)?;
        let stale_after_secs = parse_number("JOB_STALE_AFTER_SECS", get("JOB_STALE_AFTER_SECS"), 60, 1..=86_400)?;
        let max_image_pixels =
            parse_number("MAX_IMAGE_PIXELS", get("MAX_IMAGE_PIXELS"), 100_000_000, 1..=10_000_000_000)?;
        let pipeline_engine = match get("PIPELINE_ENGINE").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => PipelineEngine::Auto,
            Some("wasm") => PipelineEngine::Wasm,
            Some("native") => PipelineEngine::Native,
            Some(other) => {
                return Err(ConfigError::new(
                    "PIPELINE_ENGINE",
                    format!("expected wasm, native or auto, got {other:?}"),
                ));
            }
        };
        let log_format = match get("LOG_FORMAT").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(ConfigError::new("LOG_FORMAT", format!("expected text or json, got {other:?}"))),
        };

        let max_connections = parse_number("MAX_CONNECTIONS", get("MAX_CONNECTIONS"), 1024, 1..=1_000_000)?;
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|raw| {
                raw.split(',')
                    .filter(|part| !part.trim().is_empty())
                    .map(crate::net::Cidr::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ConfigError::new("TRUSTED_PROXIES", format!("expected CIDR ranges separated by commas: {e}"))
                    })
            })
            .transpose()?
            .unwrap_or_default();
        let forwarded_header = match get("TRUSTED_PROXY_HEADER").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("x-forwarded-for") => crate::net::ForwardedHeader::XForwardedFor,
            Some("forwarded") => crate::net::ForwardedHeader::Forwarded,
            Some(other) => {
                return Err(ConfigError::new(
                    "TRUSTED_PROXY_HEADER",
                    format!("expected x-forwarded-for or forwarded, got {other:?}"),
                ));
            }
        };
        let metrics_token = get("METRICS_TOKEN");
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::new("METRICS_TOKEN", "must be at least 16 characters long"));
        }

        let jwt_secret = match get("JWT_SECRET") {
            Some(secret) if secret.len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    format!("must be at least {MIN_JWT_SECRET_LEN} characters long"),
                ));
            }
            Some(secret) if is_weak_secret(&secret) => {
                return Err(ConfigError::new(
                    "JWT_SECRET",
                    "is a placeholder or too predictable; set 32+ random characters (e.g. `openssl rand -hex 32`)",
                ));
            }
            Some(secret) => secret,
            // Several API processes must share one secret, so only the embedded default may make its own.
            None if matches!(db_url, DbUrl::Postgres(_)) => {
                return Err(ConfigError::new("JWT_SECRET", "required when DB_URL is a PostgreSQL URL"));
            }
            None => load_or_create_secret(&data_dir)?,
        };

        Ok(Config {
            db_url,
            jwt_secret,
            data_dir,
            bind_addr,
            public_base_url,
            storage,
            worker_concurrency: worker_concurrency as usize,
            plugin_memory_mb,
            plugin_timeout: Duration::from_millis(plugin_timeout_ms),
            pipeline_engine,
            log_format,
            max_image_pixels,
            auth: AuthSettings::default(),
            jobs: JobSettings { stale_after: Duration::from_secs(stale_after_secs), ..JobSettings::default() },
            server: ServerSettings { max_connections: max_connections as usize, ..ServerSettings::default() },
            trusted_proxies,
            forwarded_header,
            metrics_token,
        })
    }
}

/// A JWT secret anyone could guess: the `.env.example` placeholder (or any "change me" value),
/// or one with so few distinct characters that it is a pattern rather than random.
fn is_weak_secret(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    let placeholder = ["change-me", "changeme", "change_me", "replace-me", "placeholder", "your-secret", "example"]
        .iter()
        .any(|p| lower.contains(p));
    let distinct = secret.chars().collect::<std::collections::HashSet<_>>().len();
    placeholder || distinct < 10
}

/// Only the plugin limits (`PLUGIN_MEMORY_MB`, `PLUGIN_TIMEOUT_MS`), for commands such as
/// `plugin validate` that need nothing else (and must not create a data folder).
pub fn plugin_limits_from_env() -> Result<(u64, Duration), ConfigError> {
    let _ = dotenvy::dotenv();
    let get = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let memory_mb = parse_number("PLUGIN_MEMORY_MB", get("PLUGIN_MEMORY_MB"), 512, 16..=16384)?;
    let timeout_ms = parse_number("PLUGIN_TIMEOUT_MS", get("PLUGIN_TIMEOUT_MS"), 30_000, 10..=3_600_000)?;
    Ok((memory_mb, Duration::from_millis(timeout_ms)))
}

fn parse_db_url(raw: &str) -> Result<DbUrl, ConfigError> {
    if raw.starts_with("sqlite:") {
        Ok(DbUrl::Sqlite(raw.to_owned()))
    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        Ok(DbUrl::Postgres(raw.to_owned()))
    } else {
        Err(ConfigError::new(
            "DB_URL",
            format!("expected sqlite://PATH or postgres://USER@HOST/DB, got {:?}", redact_url(raw)),
        ))
    }
}

fn parse_http_url(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim_end_matches('/');
    let valid = ["http://", "https://"].iter().any(|scheme| {
        trimmed.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
    });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::new(var, format!("expected an http:// or https:// URL, got {raw:?}")))
    }
}

fn parse_bool(var: &'static str, raw: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(var, format!("expected true or false, got {other:?}"))),
    }
}

fn parse_number(
    var: &'static str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            var,
            format!("expected a whole number from {} to {}, got {raw:?}", range.start(), range.end()),
        )),
    }
}

fn parse_s3(bucket: String, get: &impl Fn(&str) -> Option<String>) -> Result<S3Config, ConfigError> {
    let endpoint = get("S3_ENDPOINT").map(|e| parse_http_url("S3_ENDPOINT", &e)).transpose()?;
    let public_url = get("S3_PUBLIC_URL").map(|e| parse_http_url("S3_PUBLIC_URL", &e)).transpose()?;
    let access_key = get("AWS_ACCESS_KEY").or_else(|| get("AWS_ACCESS_KEY_ID")).ok_or_else(|| {
        ConfigError::new("AWS_ACCESS_KEY", "required when S3_BUCKET_NAME is set (or AWS_ACCESS_KEY_ID)")
    })?;
    let secret_key = get("AWS_SECRET_KEY").or_else(|| get("AWS_SECRET_ACCESS_KEY")).ok_or_else(|| {
        ConfigError::new("AWS_SECRET_KEY", "required when S3_BUCKET_NAME is set (or AWS_SECRET_ACCESS_KEY)")
    })?;
    // A custom endpoint (Garage, MinIO, ...) almost always wants path-style addressing.
    let force_path_style = parse_bool("S3_FORCE_PATH_STYLE", get("S3_FORCE_PATH_STYLE"), endpoint.is_some())?;
    Ok(S3Config {
        bucket,
        endpoint,
        region: get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        access_key,
        secret_key,
        force_path_style,
        public_url,
    })
}

/// The embedded default keeps its generated JWT secret in `DATA_DIR/jwt_secret` (mode 0600), so
/// tokens survive a restart without the operator configuring anything.
fn load_or_create_secret(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let io_err = |e: std::io::Error| {
        ConfigError::new("DATA_DIR", format!("cannot keep the JWT secret in {}: {e}", path.display()))
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_LEN => return Ok(secret.trim().to_owned()),
        Ok(_) => {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!("{} is too short; delete it or set JWT_SECRET", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(io_err)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| io_err(std::io::Error::other(e.to_string())))?;
    let secret = hex::encode(raw);
    write_private(&path, secret.as_bytes()).map_err(io_err)?;
    Ok(secret)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], dir: &Path) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.entry("DATA_DIR".into()).or_insert_with(|| dir.display().to_string());
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_the_stale_limit_is_configurable() {
        let jobs = JobSettings::default();
        let waits: Vec<u64> = (1..=10).map(|n| jobs.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(jobs.backoff(1_000).as_secs(), 300, "no overflow");
        assert_eq!(jobs.heartbeat_every(), Duration::from_secs(15));
        let dir = tempfile::tempdir().expect("tempdir");
        let config = load(&[("JOB_STALE_AFTER_SECS", "2")], dir.path()).expect("valid");
        assert_eq!(config.jobs.stale_after, Duration::from_secs(2));
        assert_eq!(config.jobs.heartbeat_every(), Duration::from_millis(500));
        let err = load(&[("JOB_STALE_AFTER_SECS", "0")], dir.path()).expect_err("out of range");
        assert!(err.to_string().starts_with("JOB_STALE_AFTER_SECS"), "{err}");
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = load(&[], dir.path()).expect("defaults are valid");
        assert_eq!(config.db_url, DbUrl::Sqlite(DEFAULT_DB_URL.into()));
        assert_eq!(config.bind_addr.to_string(), DEFAULT_BIND_ADDR);
        assert_eq!(config.public_base_url, "http://127.0.0.1:8080");
        assert!(matches!(config.storage, StorageConfig::Filesystem { ref root } if root == &dir.path().join("blobs")));
        assert_eq!(config.worker_concurrency, 1);
        assert_eq!(config.jobs.stale_after, Duration::from_secs(60));
        assert_eq!(config.plugin_memory_mb, 512);
        assert_eq!(config.plugin_timeout, Duration::from_secs(30));
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(config.trusted_proxies.is_empty(), "no proxy is believed unless listed");
        assert_eq!(config.metrics_token, None);
        assert_eq!(config.server.max_connections, 1024);
        let config = load(
            &[
                ("TRUSTED_PROXIES", " 10.0.0.0/8, ::1 "),
                ("MAX_CONNECTIONS", "64"),
                ("METRICS_TOKEN", "0123456789abcdef"),
            ],
            dir.path(),
        )
        .expect("valid");
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.server.max_connections, 64);
        assert!(!format!("{config:?}").contains("0123456789abcdef"), "the metrics token is redacted");
        let random =
            load(&[("JWT_SECRET", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")], dir.path());
        assert!(random.is_ok(), "a random hex secret is fine");
    }

    #[test]
    fn jwt_secret_is_generated_once_and_kept_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load(&[], dir.path()).expect("valid").jwt_secret;
        let second = load(&[], dir.path()).expect("valid").jwt_secret;
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(JWT_SECRET_FILE)).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BIND_ADDR", "nonsense")], "BIND_ADDR"),
            (&[("DB_URL", "mysql://x")], "DB_URL"),
            (&[("DB_URL", "postgres://u@h/db")], "JWT_SECRET"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("JWT_SECRET", "change-me-to-at-least-32-random-characters")], "JWT_SECRET"),
            (&[("JWT_SECRET", "CHANGEME-CHANGEME-CHANGEME-CHANGEME")], "JWT_SECRET"),
            (&[("JWT_SECRET", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")], "JWT_SECRET"),
            (&[("JWT_SECRET", "abababababababababababababababab12")], "JWT_SECRET"),
            (&[("TRUSTED_PROXIES", "10.0.0.0/8,nonsense")], "TRUSTED_PROXIES"),
            (&[("TRUSTED_PROXIES", "10.0.0.0/40")], "TRUSTED_PROXIES"),
            (&[("TRUSTED_PROXY_HEADER", "x-real-ip")], "TRUSTED_PROXY_HEADER"),
            (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
            (&[("METRICS_TOKEN", "short")], "METRICS_TOKEN"),
            (&[("PUBLIC_BASE_URL", "ftp://x")], "PUBLIC_BASE_URL"),
            (&[("WORKER_CONCURRENCY", "0")], "WORKER_CONCURRENCY"),
            (&[("WORKER_CONCURRENCY", "many")], "WORKER_CONCURRENCY"),
            (&[("PLUGIN_MEMORY_MB", "-1")], "PLUGIN_MEMORY_MB"),
            (&[("PLUGIN_TIMEOUT_MS", "1e3")], "PLUGIN_TIMEOUT_MS"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("PIPELINE_ENGINE", "gpu")], "PIPELINE_ENGINE"),
            (&[("MAX_IMAGE_PIXELS", "0")], "MAX_IMAGE_PIXELS"),
            (&[("S3_BUCKET_NAME", "b")], "AWS_ACCESS_KEY"),
            (&[("S3_BUCKET_NAME", "b"), ("AWS_ACCESS_KEY", "a")], "AWS_SECRET_KEY"),
            (
                &[
                    ("S3_BUCKET_NAME", "b"),
                    ("AWS_ACCESS_KEY", "a"),
                    ("AWS_SECRET_KEY", "s"),
                    ("S3_ENDPOINT", "garage:3900"),
                ],
                "S3_ENDPOINT",
            ),
            (
                &[
                    ("S3_BUCKET_NAME", "b"),
                    ("AWS_ACCESS_KEY", "a"),
                    ("AWS_SECRET_KEY", "s"),
                    ("S3_FORCE_PATH_STYLE", "maybe"),
                ],
                "S3_FORCE_PATH_STYLE",
            ),
        ];
        for (vars, var) in cases {
            let err = load(vars, dir.path()).expect_err(&format!("{vars:?} must be refused"));
            assert_eq!(err.var, *var, "{vars:?}: {err}");
            assert!(err.to_string().starts_with(&format!("{var}: ")), "{err}");
        }
    }

    #[test]
    fn s3_accepts_the_standard_aws_names_and_hides_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vars = [
            ("S3_BUCKET_NAME", "media"),
            ("AWS_ACCESS_KEY_ID", "GKabc"),
            ("AWS_SECRET_ACCESS_KEY", "topsecret"),
            ("S3_ENDPOINT", "http://127.0.0.1:3900/"),
        ];
        let config = load(&vars, dir.path()).expect("valid");
        let StorageConfig::S3(s3) = &config.storage else { panic!("expected S3") };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert!(s3.force_path_style, "custom endpoints default to path style");
        assert_eq!(s3.secret_key, "topsecret");
        assert!(!format!("{config:?}").contains("topsecret"));
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact_url("postgres://mbk:hunter2@db:5432/mbk"), "postgres://mbk:***@db:5432/mbk");
        assert_eq!(redact_url("sqlite://./data/mbk.db"), "sqlite://./data/mbk.db");
    }
}
