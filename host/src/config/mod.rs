//! Configuration: the environment (and an optional `.env`) validated into one [`Config`].
//!
//! Every variable of API.md's Configuration section is read here and nowhere else. A missing or
//! malformed value is a [`ConfigError`] naming the variable, which `main` prints as one line before
//! exiting with code 2: an operator should never have to read a backtrace to fix a typo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod secret;
mod settings;

use secret::{is_weak_secret, load_or_create_secret};
pub use settings::{AuthSettings, JobSettings, ServerSettings};

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
    /// Frames of an animation its WebP variants keep (`MAX_ANIMATION_FRAMES`); longer ones, and
    /// ones over `max_image_pixels` in all their frames, render their first frame.
    pub max_animation_frames: u32,
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
    /// `WEBHOOK_ALLOW_PRIVATE`: webhooks may target private, loopback and link-local addresses
    /// (tests, and a receiver on the host's own network).
    pub webhook_allow_private: bool,
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
            .field("max_animation_frames", &self.max_animation_frames)
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
        let orphan_grace_secs = parse_number("ORPHAN_GRACE_SECS", get("ORPHAN_GRACE_SECS"), 3600, 0..=30 * 86_400)?;
        let max_image_pixels =
            parse_number("MAX_IMAGE_PIXELS", get("MAX_IMAGE_PIXELS"), 100_000_000, 1..=10_000_000_000)?;
        let max_animation_frames = parse_number(
            "MAX_ANIMATION_FRAMES",
            get("MAX_ANIMATION_FRAMES"),
            u64::from(mbk_standard::Limits::DEFAULT_MAX_FRAMES),
            1..=100_000,
        )? as u32; // within the range
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

        let webhook_allow_private = parse_bool("WEBHOOK_ALLOW_PRIVATE", get("WEBHOOK_ALLOW_PRIVATE"), false)?;

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
            max_animation_frames,
            auth: AuthSettings::default(),
            jobs: JobSettings {
                stale_after: Duration::from_secs(stale_after_secs),
                orphan_grace: Duration::from_secs(orphan_grace_secs),
                ..JobSettings::default()
            },
            server: ServerSettings { max_connections: max_connections as usize, ..ServerSettings::default() },
            trusted_proxies,
            forwarded_header,
            metrics_token,
            webhook_allow_private,
        })
    }
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

#[cfg(test)]
mod tests;
