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
    /// Apply the database migrations and exit.
    Migrate,
    /// Print the OpenAPI spec of every route as JSON.
    Openapi,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            Command::Serve | Command::Api => run_api(config).await,
            Command::Migrate => migrate(config).await,
            Command::Superuser { username, password_stdin } => superuser(config, &username, password_stdin).await,
            Command::Openapi => Ok(()),
        }
    });
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

async fn run_api(config: Config) -> anyhow::Result<()> {
    let bind_addr = config.bind_addr;
    let listener = tokio::net::TcpListener::bind(bind_addr)
        .await
        .with_context(|| format!("cannot listen on BIND_ADDR {bind_addr}"))?;
    let state = AppState::init(config).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        database = state.db.backend(),
        storage = state.store.backend(),
        "mbk-host listening"
    );
    app::serve(state.clone(), listener, app::shutdown_signal()).await?;
    state.db.close().await;
    tracing::info!("mbk-host stopped");
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
        let first =
            rpassword::prompt_password(format!("Password for {username}: ")).context("cannot read the password")?;
        let second = rpassword::prompt_password("Repeat it: ").context("cannot read the password")?;
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
        Err(mbk_host::AppError::Conflict { .. }) => {
            anyhow::bail!("user {username:?} already exists; nothing was created")
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = mbk_host::db::Db::connect(&config.db_url).await?;
    db.migrate().await?;
    tracing::info!(database = db.backend(), "migrations applied");
    db.close().await;
    Ok(())
}
