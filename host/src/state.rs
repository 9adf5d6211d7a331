//! [`AppState`]: everything a request handler, a domain flow or a job may use, built once from the
//! [`Config`]. It knows no HTTP: the domain modules take it, and `http/` hands it to axum as its
//! state. The start-up (serving, shutdown) lives beside it in `app.rs`.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::db::Db;
use crate::delivery::owners::Owners;
use crate::delivery::signing::UrlSigner;
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
    /// Signs and verifies private projects' blob URLs (filesystem store).
    pub url_signer: UrlSigner,
    /// Which live project owns a blob key, remembered for a second (`GET /blobs`).
    pub owners: Owners,
    /// Poked after a job is enqueued, so this process' idle workers look at once.
    /// Shared, so a queue can wait on it from a future of its own ([`crate::jobs::queue`]).
    pub wake: Arc<tokio::sync::Notify>,
    /// The process' one plugin engine: it checks uploaded plugins, and a worker's renderer runs
    /// on it too ([`crate::pipeline::Renderer::for_app`]). Made on first use: API processes
    /// that never see a plugin upload never reserve its memory.
    plugin_engine: std::sync::Mutex<Option<Arc<PluginEngine>>>,
}

impl App {
    /// The plugin engine of this process, made on first use.
    pub fn plugin_engine(&self) -> crate::error::Result<Arc<PluginEngine>> {
        let mut slot = crate::sync::lock(&self.plugin_engine);
        if let Some(engine) = slot.as_ref() {
            return Ok(Arc::clone(engine));
        }
        let engine = PluginEngine::new(crate::pipeline::plugin_settings(&self.config))
            .map_err(|e| crate::error::Error::Internal(e.context("cannot start the plugin engine")))?;
        *slot = Some(Arc::clone(&engine));
        Ok(engine)
    }
}

/// Cheap to clone; `http/` uses it directly as the router's state.
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
        let url_signer = UrlSigner::new(&config.jwt_secret);
        let throttle = LoginThrottle::new(config.auth.login_max_failures, config.auth.login_window);
        let (version, sha256, size) = crate::pipeline::builtin_identity();
        // The builtin's component exports the newest world; it takes no params (nor does its
        // native fallback, the same library).
        let params = crate::db::plugins::params_json(&mbk_standard::params::standard());
        crate::db::plugins::ensure_builtin(&db, version, &sha256, size, crate::plugins::WORLD, &params).await?;
        Ok(AppState(Arc::new(App {
            config,
            db,
            store,
            tokens,
            throttle,
            url_signer,
            owners: Owners::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            plugin_engine: std::sync::Mutex::new(None),
        })))
    }
}
