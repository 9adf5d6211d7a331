use super::*;
use std::collections::HashMap;
use std::path::Path;

fn load(vars: &[(&str, &str)], dir: &Path) -> Result<Config, ConfigError> {
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.entry("DATA_DIR".into()).or_insert_with(|| dir.display().to_string());
    Config::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn a_job_keeps_retrying_through_a_storage_outage_of_four_minutes() {
    let jobs = JobSettings::default();
    let retrying: Duration = (1..jobs.max_attempts).map(|n| jobs.backoff(n)).sum();
    assert!(retrying >= Duration::from_secs(240), "the retries give up after {retrying:?}");
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
    assert_eq!(jobs.orphan_grace, Duration::from_secs(3600));
    let config = load(&[("ORPHAN_GRACE_SECS", "0")], dir.path()).expect("valid");
    assert_eq!(config.jobs.orphan_grace, Duration::ZERO);
    let err = load(&[("ORPHAN_GRACE_SECS", "-1")], dir.path()).expect_err("out of range");
    assert!(err.to_string().starts_with("ORPHAN_GRACE_SECS"), "{err}");
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
        &[("TRUSTED_PROXIES", " 10.0.0.0/8, ::1 "), ("MAX_CONNECTIONS", "64"), ("METRICS_TOKEN", "0123456789abcdef")],
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
