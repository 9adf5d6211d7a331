//! Start-up: serve the API built on an [`AppState`] until a shutdown signal. The state itself
//! lives in [`crate::state`], which the domain modules use; nothing below `http/` imports this.

use std::future::Future;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::AppState;

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
