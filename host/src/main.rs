//! `mbk-host`: the command line. Parses arguments and dispatches; everything else is in the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mbk_host::config::Config;
use mbk_host::{AppState, app, telemetry};

#[derive(Parser)]
#[command(name = "mbk-host", version, about = "MediaBlobKit: media storage with sandboxed image processing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the job workers in one process (the embedded default).
    Serve,
    /// Run the HTTP API only (scale-out: several behind a load balancer).
    Api,
    /// Run the job workers only (scale-out: several on one PostgreSQL); WORKER_CONCURRENCY each.
    Worker,
    /// Run the cleanup now (purge projects deleted over 30 days ago, delete orphaned objects
    /// older than the grace period) and print what it removed as JSON.
    Cleanup,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print the OpenAPI spec of every route as JSON.
    Openapi,
    /// Benchmark the standard variant set over a folder of photos: native vs wasm (vs vipsthumbnail).
    Bench {
        /// A folder of JPEG, PNG or WebP photos.
        photos: std::path::PathBuf,
        /// Renders per measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Create a su user: the only way to make one. The password comes from a prompt (no echo).
    Superuser {
        /// Login name of the new su user.
        #[arg(long)]
        username: String,
        /// Read the password from standard input (first line) instead of prompting, for scripts.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check that FILE is a component exporting the mbk:plugin world, compile it, call info(),
    /// and render a built-in test image through it with the sandbox's limits. Exit 0 or 1.
    Validate {
        /// The component (.wasm).
        file: std::path::PathBuf,
    },
    /// Write a new plugin crate NAME (in the current folder, or --dir) on the SDK, with the
    /// world's WIT, a wasm32-wasip2 build setup, a filter to start from, a test and a README.
    New {
        /// The plugin's name (a-z, 0-9, '-', '_'): the crate's and the one to register.
        name: String,
        /// Where to create the crate's folder.
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        /// The `mbk-plugin-sdk` crate to depend on (default: this build's source tree).
        #[arg(long)]
        sdk: Option<std::path::PathBuf>,
    },
    /// Register FILE through the API (POST /plugins) on MBK_URL (default http://127.0.0.1:8080)
    /// as the user of MBK_TOKEN, or log in at a prompt.
    Push {
        /// The component (.wasm).
        file: std::path::PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Plugin { command } = &cli.command {
        return plugin_command(command);
    }
    if let Command::Bench { photos, runs } = &cli.command {
        return match mbk_host::pipeline::bench::run(photos, (*runs).max(1)) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Command::Openapi = cli.command {
        return match mbk_host::http::openapi().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(anyhow::Error::new(e)),
        };
    }

    // A bad variable is one clear line and exit code 2: no panic, no backtrace.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mbk-host: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => run(config, true, true).await,
            Command::Api => run(config, true, false).await,
            Command::Worker => run(config, false, true).await,
            Command::Cleanup => cleanup(config).await,
            Command::Migrate => migrate(config).await,
            Command::Superuser { username, password_stdin } => superuser(config, &username, password_stdin).await,
            Command::Openapi | Command::Plugin { .. } | Command::Bench { .. } => Ok(()),
        }
    });
    // Whatever blocking work is still running (a component compile a stop did not wait for) is
    // given a moment, then left: a stopping process owes it nothing.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    // `{:#}` prints the context chain on one line; Debug would add a backtrace when RUST_BACKTRACE is set.
    eprintln!("mbk-host: error: {e:#}");
    ExitCode::FAILURE
}

/// Runs the API, the workers, or both, until SIGTERM or ctrl-c; then finishes what is in hand.
async fn run(config: Config, api: bool, workers: bool) -> anyhow::Result<()> {
    let listener = if api {
        let bind_addr = config.bind_addr;
        Some(
            tokio::net::TcpListener::bind(bind_addr)
                .await
                .with_context(|| format!("cannot listen on BIND_ADDR {bind_addr}"))?,
        )
    } else {
        None
    };
    let state = AppState::init(config).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    // The API first: it answers while the workers' renderer compiles (seconds, once; then cached).
    if let Some(listener) = listener {
        tracing::info!(
            addr = %listener.local_addr()?,
            database = state.db.backend(),
            storage = state.store.backend(),
            "mbk-host listening"
        );
        let stop = stop.clone();
        tasks.spawn(app::serve(state.clone(), listener, async move { stop.cancelled().await }));
    }
    if workers {
        let (state, stop) = (state.clone(), stop.clone());
        tasks.spawn(async move {
            // Compiling the standard component is CPU work: not on the async runtime. The
            // renderer shares the App's plugin engine: one pool and one epoch thread per process.
            // A stop meanwhile does not wait for it (see `main`: the compile is abandoned).
            let app = state.clone();
            let setup = tokio::task::spawn_blocking(move || mbk_host::pipeline::Renderer::for_app(&app));
            let renderer = tokio::select! {
                made = setup => made.context("the renderer's set-up panicked")??,
                () = stop.cancelled() => return Ok(()),
            };
            let worker = mbk_host::jobs::Worker::new(state.clone(), std::sync::Arc::new(renderer));
            worker.run(state.config.worker_concurrency, stop).await;
            Ok(())
        });
    }
    tokio::select! {
        () = app::shutdown_signal() => {}
        // A part that ends by itself (the server failing) stops the others.
        Some(ended) = tasks.join_next() => {
            stop.cancel();
            ended.context("a task panicked")??;
        }
    }
    stop.cancel();
    while let Some(ended) = tasks.join_next().await {
        ended.context("a task panicked")??;
    }
    state.db.close().await;
    tracing::info!("mbk-host stopped");
    Ok(())
}

async fn cleanup(config: Config) -> anyhow::Result<()> {
    let state = AppState::init(config).await?;
    let report = mbk_host::jobs::cleanup::run(&state).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    state.db.close().await;
    Ok(())
}

async fn superuser(config: Config, username: &str, password_stdin: bool) -> anyhow::Result<()> {
    use mbk_host::auth::{password, service};
    service::check_username(username).map_err(|m| anyhow::anyhow!("--username: {m}"))?;
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first = prompt_hidden(&format!("Password for {username}: ")).context("cannot read the password")?;
        let second = prompt_hidden("Repeat it: ").context("cannot read the password")?;
        anyhow::ensure!(first == second, "the passwords differ; nothing was created");
        first
    };
    password::check_policy(&password).map_err(|m| anyhow::anyhow!("password: {m}"))?;

    let db = mbk_host::db::Db::connect(&config.db_url).await?;
    db.migrate().await?;
    let created = service::insert_user(&db, username, &password, mbk_host::db::users::Role::Su).await;
    db.close().await;
    match created {
        Ok(user) => {
            println!("created su user {} ({})", user.username, user.id);
            Ok(())
        }
        Err(mbk_host::error::Error::Conflict { .. }) => {
            anyhow::bail!("user {username:?} already exists; nothing was created")
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// `plugin validate | new | push`: what an author runs (no configuration, no database).
fn plugin_command(command: &PluginCommand) -> ExitCode {
    match command {
        PluginCommand::Validate { file } => validate_plugin(file),
        PluginCommand::New { name, dir, sdk } => {
            let sdk = sdk.clone().unwrap_or_else(mbk_host::author::scaffold::default_sdk);
            match mbk_host::author::scaffold::new_plugin(dir, name, &sdk) {
                Ok(made) => {
                    println!(
                        "created {}: see its README.md (cargo build --profile plugin, then validate and push)",
                        made.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        PluginCommand::Push { file, name, version } => {
            let pushed =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display())).and_then(|wasm| {
                    let url = std::env::var("MBK_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
                    let token = std::env::var("MBK_TOKEN").ok().filter(|t| !t.is_empty());
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(mbk_host::author::push::push(mbk_host::author::push::Push {
                        url: &url,
                        token,
                        wasm,
                        name,
                        version,
                    }))
                });
            match pushed {
                Ok(plugin) => {
                    println!("{}", serde_json::to_string_pretty(&plugin).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// `plugin validate FILE`: the checks live in `plugins::validate`; here, the limits and the
/// verdict lines (exit 0: every check passed, 1: one failed, 2: a bad limit).
fn validate_plugin(file: &std::path::Path) -> ExitCode {
    let (memory_mb, timeout) = match mbk_host::config::plugin_limits_from_env() {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("mbk-host: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = |ok: bool, line: &str| println!("{} {line}", if ok { "ok  " } else { "FAIL" });
    match mbk_host::plugins::validate::run(file, (memory_mb as usize) << 20, timeout, verdict) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(e),
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = mbk_host::db::Db::connect(&config.db_url).await?;
    db.migrate().await?;
    tracing::info!(database = db.backend(), "migrations applied");
    db.close().await;
    Ok(())
}

/// Asks for a password on the terminal, echo off. On Unix echo goes off before the prompt is
/// shown: rpassword shows the prompt first, so keys typed the moment it appears could echo.
#[cfg(unix)]
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};

    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // The Enter that ends the line still shows, so the next prompt starts on a line of its own.
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let read = (|| {
        let mut out = &tty;
        out.write_all(prompt.as_bytes())?;
        out.flush()?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    })();
    // Echo comes back whatever happened to the read.
    tcsetattr(&tty, OptionalActions::Now, &saved)?;
    read
}

#[cfg(not(unix))]
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}
