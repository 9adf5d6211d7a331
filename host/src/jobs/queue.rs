//! [`JobQueue`]: apalis' [`Backend`] over our `jobs` table, one per apalis worker (one worker
//! per `WORKER_CONCURRENCY` slot, named `{process}/{slot}`: the name it claims under).
//!
//! The table keeps the guarantees (see [`crate::db::jobs`]): a claim is one statement (`FOR
//! UPDATE SKIP LOCKED` on PostgreSQL) that counts the attempt; the backoff is the row's
//! `run_after`, so it survives a restart; every later write is fenced by the worker's name. The
//! queue adds how a worker waits: it claims only when its slot is free, and when nothing is
//! runnable it sleeps until an enqueue in this process wakes it ([`crate::App::wake`]) or the
//! poll interval passes (another process' enqueue, a backoff running out).
//!
//! apalis ends a worker on its backend's first error; a database that does not answer is not a
//! reason to stop working, so the queue never reports one: it logs it and tries again after the
//! poll interval.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::futures::OwnedNotified;
use tower::layer::util::Identity;

use crate::AppState;
use crate::config::JobSettings;
use crate::db::jobs::{self, JobRow};

/// What the queue hands its worker: the claimed row, and the name it is held under.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row: JobRow,
    pub holder: String,
}

type Claim = BoxFuture<'static, Result<Option<JobRow>, sqlx::Error>>;

/// Where the queue is between two jobs.
enum Next {
    /// Nothing under way: the next poll claims.
    Idle,
    /// A claim is in flight. The wake-up was registered before it, so an enqueue between the
    /// claim's look and the wait is not missed.
    Claiming { claim: Claim, woken: Pin<Box<OwnedNotified>> },
    /// Nothing was runnable (or the database did not answer): wait for a wake-up or the poll.
    Waiting { woken: Pin<Box<OwnedNotified>>, poll: Pin<Box<tokio::time::Sleep>> },
    /// Stopping with a job just claimed: handing it back.
    Releasing(BoxFuture<'static, ()>),
}

pub struct JobQueue {
    state: AppState,
    next: Next,
}

impl JobQueue {
    pub fn new(state: AppState) -> JobQueue {
        JobQueue { state, next: Next::Idle }
    }

    fn claim(&self, holder: &str) -> Next {
        let mut woken = Box::pin(self.state.wake.clone().notified_owned());
        woken.as_mut().enable();
        let (state, holder) = (self.state.clone(), holder.to_owned());
        let claim = async move { jobs::claim(&state.db, &holder).await }.boxed();
        Next::Claiming { claim, woken }
    }

    fn wait(&self, woken: Pin<Box<OwnedNotified>>) -> Next {
        Next::Waiting { woken, poll: Box::pin(tokio::time::sleep(self.state.config.jobs.poll_interval)) }
    }
}

impl Backend for JobQueue {
    type Task = Task<Claimed>;
    type Error = Infallible;

    /// Ready when this worker's slot is free: a job is claimed only when it can start at once
    /// (apalis wakes the worker when its last task ends).
    fn poll_ready(&mut self, _cx: &mut Context<'_>, worker: &WorkerContext) -> Poll<Result<(), Infallible>> {
        if worker.task_count() > 0 { Poll::Pending } else { Poll::Ready(Ok(())) }
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<Claimed>, Infallible>>> {
        loop {
            self.next = match std::mem::replace(&mut self.next, Next::Idle) {
                Next::Idle | Next::Releasing(_) => self.claim(worker.name()),
                Next::Claiming { mut claim, woken } => match claim.poll_unpin(cx) {
                    Poll::Pending => {
                        self.next = Next::Claiming { claim, woken };
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(Some(row))) => {
                        let holder = worker.name().to_owned();
                        return Poll::Ready(Some(Ok(Task::new(Claimed { row, holder }))));
                    }
                    Poll::Ready(Ok(None)) => self.wait(woken),
                    Poll::Ready(Err(e)) => {
                        tracing::warn!(error = %e, worker = worker.name(), "Jobs | cannot reach the queue; trying again");
                        self.wait(woken)
                    }
                },
                Next::Waiting { mut woken, mut poll } => {
                    if woken.as_mut().poll(cx).is_pending() && poll.as_mut().poll(cx).is_pending() {
                        self.next = Next::Waiting { woken, poll };
                        return Poll::Pending;
                    }
                    Next::Idle
                }
            };
        }
    }

    /// A claim in flight when the worker stops is finished, and a job it took handed back
    /// (pending, runnable at once, its attempt not counted) rather than left `processing` until
    /// the stale limit takes it back.
    fn poll_close(&mut self, cx: &mut Context<'_>, worker: &WorkerContext) -> Poll<Result<(), Infallible>> {
        loop {
            self.next = match std::mem::replace(&mut self.next, Next::Idle) {
                Next::Idle | Next::Waiting { .. } => return Poll::Ready(Ok(())),
                Next::Claiming { mut claim, woken } => match claim.poll_unpin(cx) {
                    Poll::Pending => {
                        self.next = Next::Claiming { claim, woken };
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(Some(row))) => {
                        let (db, holder) = (self.state.db.clone(), worker.name().to_owned());
                        Next::Releasing(
                            async move {
                                if let Err(e) = jobs::release(&db, row.id, &holder).await {
                                    tracing::warn!(error = %e, job = %row.id, "Jobs | cannot hand a job back; the stale limit will");
                                }
                            }
                            .boxed(),
                        )
                    }
                    Poll::Ready(_) => return Poll::Ready(Ok(())),
                },
                Next::Releasing(mut release) => match release.poll_unpin(cx) {
                    Poll::Pending => {
                        self.next = Next::Releasing(release);
                        return Poll::Pending;
                    }
                    Poll::Ready(()) => return Poll::Ready(Ok(())),
                },
            };
        }
    }
}

impl BackendConfig for JobQueue {
    type Args = Claimed;
    type Id = uuid::Uuid;
    /// The rows are the persistence: apalis has nothing to encode or decode.
    type Kind = Ephemeral;
    type Config = JobSettings;
    /// Heartbeat and recording are our own layer ([`super::record`]), outside apalis' timeout.
    type Layer = Identity;

    fn config(&self) -> &JobSettings {
        &self.state.config.jobs
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Identity {
        Identity::new()
    }
}
