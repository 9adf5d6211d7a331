//! The HTTP server loop: what a slow, idle or greedy client may hold of the host.
//!
//! `axum::serve` has no header timeout (hyper's needs a timer it does not set), no connection
//! cap and no shutdown deadline, so a client trickling its headers was kept open forever. Here:
//! - at most `MAX_CONNECTIONS` connections are served at once; further ones wait in the
//!   kernel's backlog until one ends (they are not accepted and then starved); one client
//!   address holds at most `max_connections_per_client` of them (trusted proxies, which carry
//!   many clients, excepted): more are closed at once;
//! - a request's headers must arrive within `header_read_timeout` (hyper's timer starts when the
//!   connection waits for a request head, so an idle keep-alive connection is closed after the
//!   same time);
//! - a response the client stops reading ends its connection after `write_stall_timeout`;
//! - `TCP_NODELAY` on every socket: a small response is not held back waiting for an ACK;
//! - on shutdown, connections finish their request in flight within `shutdown_grace`, then are
//!   dropped.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::ServerSettings;
use crate::net::Cidr;

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    settings: ServerSettings,
    trusted_proxies: Vec<Cidr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let per_client = PerClient::new(settings.max_connections_per_client, trusted_proxies);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout).keep_alive(true);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.context("the connection slots closed")?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(held) = per_client.admit(peer.ip()) else {
            tracing::debug!(client = %peer.ip(), "connection closed: too many from this client");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move { Ok::<_, Infallible>(router.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
        });
        let io = TokioIo::new(StallGuard::new(stream, settings.write_stall_timeout));
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // A client that vanishes or times out mid-request is its own problem, not an error here.
            let _ = connection.await;
            drop((permit, held));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(grace = ?settings.shutdown_grace, "connections still open at the shutdown deadline; dropping them");
        }
    }
    Ok(())
}

/// Connections held per client address.
#[derive(Clone)]
struct PerClient {
    limit: usize,
    trusted: Arc<Vec<Cidr>>,
    held: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
}

/// One client's connection; given back when dropped.
struct Held(Option<(PerClient, std::net::IpAddr)>);

impl PerClient {
    fn new(limit: usize, trusted: Vec<Cidr>) -> Self {
        Self { limit: limit.max(1), trusted: Arc::new(trusted), held: Arc::default() }
    }

    fn admit(&self, ip: std::net::IpAddr) -> Option<Held> {
        if self.trusted.iter().any(|c| c.contains(ip)) {
            return Some(Held(None));
        }
        let mut held = crate::sync::lock(&self.held);
        let count = held.entry(ip).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Held(Some((self.clone(), ip))))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((clients, ip)) = self.0.take() {
            let mut held = crate::sync::lock(&clients.held);
            if let Some(count) = held.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&ip);
                }
            }
        }
    }
}

/// A socket whose writes fail once they have made no progress for `limit`: hyper has no write
/// timeout, so a client that requests a large blob and never reads would hold its connection
/// (and a slot of the cap) forever.
struct StallGuard {
    stream: tokio::net::TcpStream,
    limit: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl StallGuard {
    fn new(stream: tokio::net::TcpStream, limit: Duration) -> Self {
        Self { stream, limit, stalled: None }
    }

    /// What a write, flush or vectored write of the socket answered: a pending one starts the
    /// stall timer (or fails once it has run out), anything else is progress and stops it.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading the response",
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for StallGuard {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallGuard {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
