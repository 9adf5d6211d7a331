//! One attempt of one delivery (the `deliver_webhook` job): sign the stored body afresh (a new
//! `webhook-timestamp` per attempt, the same `webhook-id` and bytes), POST it to the address
//! that was checked ([`super::target`]), follow at most 3 redirects (307 and 308 only, which
//! keep the POST), each checked again.
//!
//! A 2xx answer is delivered. Any other answer, a timeout or a refused connection is retried on
//! the day-long schedule (`JobSettings::webhook_retry_after`) and fails after its last attempt.
//! A target refused as private is failed at once: a retry would be refused alike.

use std::time::Duration;

use reqwest::{StatusCode, header};

use super::signature;
use super::target::{self, Unreachable};
use crate::AppState;
use crate::db::webhooks::{self, Outgoing};
use crate::jobs::{Transient, Verdict};

/// How long a receiver has to answer one attempt (Standard Webhooks senders allow 15 s).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 3;

/// How one attempt went.
enum Attempt {
    Delivered(StatusCode),
    /// An answer that was not a 2xx, or none: worth another attempt.
    Failed {
        status: Option<StatusCode>,
        why: String,
    },
    /// The target (or a redirect) is not allowed: no attempt will do better.
    Refused(String),
}

/// Runs the delivery of job `job_id`, on the job's attempt `attempts` (1 for the first).
pub async fn run(state: &AppState, job_id: uuid::Uuid, attempts: i32) -> Result<Verdict, Transient> {
    let Some(outgoing) = webhooks::outgoing(&state.db, job_id).await? else {
        return Ok(Ok(())); // its webhook was deleted or disabled: nothing to send
    };
    let last = state.config.jobs.webhook_retry(attempts).is_none();
    let code = |s: Option<StatusCode>| s.map(|s| i32::from(s.as_u16()));
    match attempt(state, &outgoing).await {
        Attempt::Delivered(status) => {
            webhooks::record_attempt(&state.db, outgoing.id, "succeeded", code(Some(status)), None).await?;
            Ok(Ok(()))
        }
        Attempt::Refused(why) => {
            webhooks::record_attempt(&state.db, outgoing.id, "failed", None, Some(&why)).await?;
            Ok(Err(why))
        }
        Attempt::Failed { status, why } => {
            let now = if last { "failed" } else { "pending" };
            webhooks::record_attempt(&state.db, outgoing.id, now, code(status), Some(&why)).await?;
            if last { Ok(Err(why)) } else { Err(Transient::Receiver(why)) }
        }
    }
}

async fn attempt(state: &AppState, outgoing: &Outgoing) -> Attempt {
    let allow_private = state.config.webhook_allow_private;
    let mut url = match target::parse(&outgoing.url) {
        Ok(url) => url,
        Err(why) => return Attempt::Refused(format!("the webhook's URL: {why}")),
    };
    let id = format!("msg_{}", outgoing.id.simple());
    let timestamp = chrono::Utc::now().timestamp();
    let signed = signature::sign(&outgoing.secret, &id, timestamp, &outgoing.body);
    for _ in 0..=MAX_REDIRECTS {
        let address = match target::resolve(&url, allow_private).await {
            Ok(address) => address,
            Err(Unreachable::NotAllowed(why)) => return Attempt::Refused(why),
            // A name that does not resolve now may tomorrow (DNS being fixed, a resolver down).
            Err(Unreachable::NoAddress(why)) => return Attempt::Failed { status: None, why },
        };
        let Some(host) = url.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned()) else {
            return Attempt::Refused("the URL names no host".into());
        };
        // The checked address, and no other: reqwest must not look the name up again.
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .resolve(&host, address)
            .no_proxy()
            .build()
        {
            Ok(client) => client,
            Err(e) => return Attempt::Failed { status: None, why: format!("cannot make a client: {e}") },
        };
        let sent = client
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, concat!("MediaBlobKit-Webhooks/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", &signed)
            .body(outgoing.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                return Attempt::Failed { status: None, why: format!("no answer within {ATTEMPT_TIMEOUT:?}") };
            }
            // Without the URL: its query may hold the receiver's own secret, and this text is
            // shown in the job and the delivery.
            Err(e) => {
                return Attempt::Failed {
                    status: None,
                    why: format!("cannot reach the receiver: {}", e.without_url()),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered(status);
        }
        // Only 307 and 308 promise the same POST elsewhere; the others would have a client turn
        // it into a GET, and a signed event is not for whatever a 302 points at.
        if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT {
            return Attempt::Failed { status: Some(status), why: format!("the receiver answered {status}") };
        }
        let next = response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).map(|l| url.join(l));
        url = match next {
            Some(Ok(next)) => match target::parse(next.as_str()) {
                Ok(next) => next,
                Err(why) => return Attempt::Refused(format!("a redirect's target: {why}")),
            },
            _ => return Attempt::Failed { status: Some(status), why: format!("{status} without a usable Location") },
        };
    }
    Attempt::Failed { status: None, why: format!("more than {MAX_REDIRECTS} redirects") }
}
