//! What happens to a request body the handler did not read.
//!
//! A request refused before its body was read (an 8 MB upload without a key: 401; a 413 or 415
//! answered early) used to end in a reset connection: hyper closes a connection whose request
//! body is unread, the kernel answers the client's further bytes with a RST, and the client,
//! still sending, loses the status it was about to read (EPIPE in curl, `ConnectionResetError`
//! in Python). So on an error answer the rest of the body is read and discarded first, up to
//! `drain_limit` bytes and [`DRAIN_DEADLINE`]; past those the answer says `Connection: close`.
//! A client that sent `Expect: 100-continue` and was never told to continue is not drained: it
//! has sent nothing and reads the answer as it is.
//!
//! The same middleware hands JSON extractors their read deadline ([`BodyDeadline`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::AppState;

/// The longest a refused request's body is drained before the connection is closed instead.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How long a buffered (JSON) body may take to arrive, as configured; read by the extractors.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// The request body, shared between the handler and this middleware.
struct Shared {
    body: Mutex<Body>,
    polled: AtomicBool,
}

/// The handler's view of the shared body.
struct SharedBody(Arc<Shared>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.0.polled.store(true, Ordering::Relaxed);
        let mut body = crate::sync::lock(&self.0.body);
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        crate::sync::lock(&self.0.body).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        crate::sync::lock(&self.0.body).size_hint()
    }
}

pub async fn guard_bodies(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let settings = &state.config.server;
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(BodyDeadline(settings.body_read_timeout));
    let shared = Arc::new(Shared { body: Mutex::new(body), polled: AtomicBool::new(false) });
    let mut response = next.run(Request::from_parts(parts, Body::new(SharedBody(Arc::clone(&shared))))).await;

    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || (expects_continue && !shared.polled.load(Ordering::Relaxed))
    {
        return response;
    }
    if status == axum::http::StatusCode::REQUEST_TIMEOUT {
        // The client stopped sending: waiting for the rest would only hold the answer back.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let remaining = {
        let body = crate::sync::lock(&shared.body);
        (!body.is_end_stream()).then(|| body.size_hint().exact())
    };
    let Some(remaining) = remaining else { return response };
    let drained = match remaining {
        Some(n) if n > settings.drain_limit => false,
        _ => drain(&shared, settings.drain_limit).await,
    };
    if !drained {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and discards what is left of the body; whether it ended within the limits.
async fn drain(shared: &Arc<Shared>, limit: u64) -> bool {
    let mut body = SharedBody(Arc::clone(shared));
    let mut read = 0u64;
    let reading = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > limit {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_DEADLINE, reading).await.unwrap_or(false)
}
