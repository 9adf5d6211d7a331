//! Logging: one subscriber for the process, text or JSON (`LOG_FORMAT`), filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Quiet by default for the chatty dependencies; our own lines at info.
const DEFAULT_FILTER: &str = "info,sqlx=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn,hyper=warn";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal; never escape codes in files or log collectors.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(std::io::stdout().is_terminal());
    // `try_init`: tests and embedders may already have installed a subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
