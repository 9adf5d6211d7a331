//! [`AppState`]: everything a request handler may use, built once from the [`Config`].

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db::Db;
use crate::plugins::PluginEngine;
use crate::storage::{self, BlobStore};

/// The shared parts of a running host.
pub struct App {
    /// The validated configuration the process started with.
    pub config: Config,
    /// Metadata: SQLite or PostgreSQL.
    pub db: Db,
    /// Blobs: the filesystem or S3.
    pub store: Arc<dyn BlobStore>,
    /// Signs and verifies access tokens.
    pub tokens: TokenKeys,
    /// Counts failed logins per username and client address.
    pub throttle: LoginThrottle,
    /// Poked after a job is enqueued, so this process' idle workers look at once.
    pub wake: tokio::sync::Notify,
    /// The engine that checks uploaded plugins (made on first use: API processes that never see
    /// a plugin upload never reserve its memory).
    plugin_engine: std::sync::Mutex<Option<Arc<PluginEngine>>>,
}

impl App {
    /// The plugin engine of this process for checking components, made on first use.
    pub fn plugin_engine(&self) -> Result<Arc<PluginEngine>, crate::AppError> {
        let mut slot = self.plugin_engine.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(engine) = slot.as_ref() {
            return Ok(Arc::clone(engine));
        }
        let engine = PluginEngine::new(crate::pipeline::plugin_settings(&self.config))
            .map_err(|e| crate::AppError::Internal(e.context("cannot start the plugin engine")))?;
        *slot = Some(Arc::clone(&engine));
        Ok(engine)
    }
}

/// Cheap to clone; used directly as axum state (`State<AppState>`).
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// Connects the database (applying migrations) and opens the blob store.
    pub async fn init(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.db_url).await?;
        db.migrate().await?;
        let store = storage::open(&config.storage, &config.public_base_url).await?;
        let tokens = TokenKeys::new(&config.jwt_secret, config.auth.access_ttl)?;
        let throttle = LoginThrottle::new(config.auth.login_max_failures, config.auth.login_window);
        let (version, sha256, size) = crate::pipeline::builtin_identity();
        crate::db::plugins::ensure_builtin(&db, version, &sha256, size, crate::plugins::WORLD).await?;
        Ok(AppState(Arc::new(App {
            config,
            db,
            store,
            tokens,
            throttle,
            wake: tokio::sync::Notify::new(),
            plugin_engine: std::sync::Mutex::new(None),
        })))
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (within the shutdown deadline).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (settings, trusted) = (state.config.server.clone(), state.config.trusted_proxies.clone());
    crate::http::server::serve(crate::http::router(state), listener, settings, trusted, shutdown)
        .await
        .context("HTTP server failed")
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
