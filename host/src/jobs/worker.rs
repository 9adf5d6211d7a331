//! The workers of one process: `WORKER_CONCURRENCY` apalis workers under one apalis `Monitor`,
//! each over its own [`JobQueue`] (our `jobs` table, see [`crate::db::jobs`]) and named
//! `{process}/{slot}`: the name a job is claimed and fenced under, so a slot that lost its job
//! (taken back after a missed heartbeat) cannot record over the new owner. Each job runs on a
//! task of its own (apalis' `parallelize`) through the stack of [`super::record`]: heartbeat,
//! record, timeout, catch-panic, the job. Beside the workers run the reclaimer (stale
//! `processing` jobs back to `pending`, or `failed` after every attempt; at start and then
//! periodically) and the daily `cleanup` schedule.
//!
//! Outcomes: a job that finished records `completed`, or `failed` with the first reason when a
//! variant failed for good (undecodable image, plugin error: no retry). A transient failure (the
//! store or the database did not answer, a timeout, a panic) goes back to the queue with
//! exponential backoff, and is `failed` after `max_attempts`. Jobs are idempotent, so one run
//! twice (its worker died after the work but before recording it) yields the same blobs and rows.

use std::sync::Arc;
use std::time::Duration;

use apalis_core::monitor::Monitor;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::ext::parallelize::ParallelizeExt;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};
use uuid::Uuid;

use super::kind::JobContext;
use super::queue::{Claimed, JobQueue};
use super::record::job_service;
use crate::AppState;
use crate::db::jobs::{self, JobRow};
use crate::pipeline::Renderer;

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Completed,
    /// Failed for good, with the reason.
    Failed(String),
    /// A transient failure: queued again to run after the backoff.
    Retrying(String),
    /// The job was no longer this worker's when it ended (taken back, or its project deleted).
    Lost,
}

impl Ran {
    /// The outcome's name, for the log line and the metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Ran::Completed => "completed",
            Ran::Failed(_) => "failed",
            Ran::Retrying(_) => "retrying",
            Ran::Lost => "lost",
        }
    }
}

/// The workers of one process.
#[derive(Clone)]
pub struct Worker {
    ctx: Arc<JobContext>,
    process: String,
}

impl Worker {
    pub fn new(state: AppState, renderer: Arc<Renderer>) -> Worker {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        let process =
            format!("{}:{}:{}", if host.is_empty() { "host" } else { &host }, std::process::id(), Uuid::now_v7());
        Worker { ctx: Arc::new(JobContext { state, renderer }), process }
    }

    /// This process' worker id prefix (slots are `{id}/{n}`).
    pub fn id(&self) -> &str {
        &self.process
    }

    fn state(&self) -> &AppState {
        &self.ctx.state
    }

    /// Claims one runnable job for `slot` and runs it through the workers' own stack, here and
    /// now (tests, and `mbk-host cleanup`). `None` when the queue has nothing to run.
    pub async fn run_next(&self, slot: usize) -> Result<Option<(JobRow, Ran)>, sqlx::Error> {
        let holder = format!("{}/{slot}", self.process);
        let Some(row) = jobs::claim(&self.state().db, &holder).await? else { return Ok(None) };
        let mut service = job_service(&self.ctx);
        let task = Task::new(Claimed { row: row.clone(), holder });
        let ran = service.ready().await.expect("the job stack is always ready").call(task).await;
        match ran {
            Ok(ran) => Ok(Some((row, ran))),
            Err(e) => match e.downcast::<sqlx::Error>() {
                Ok(e) => Err(*e),
                Err(e) => Err(sqlx::Error::Protocol(e.to_string())),
            },
        }
    }

    /// Runs jobs until none is runnable now. Returns how many ran.
    pub async fn drain(&self) -> Result<usize, sqlx::Error> {
        let mut ran = 0;
        while self.run_next(0).await?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs the workers, the reclaimer and the cleanup schedule until `stop` is cancelled; then
    /// lets the jobs in hand finish (a claim in flight hands its job back).
    pub async fn run(self, concurrency: usize, stop: CancellationToken) {
        let engine = self.ctx.renderer.engine();
        tracing::info!(worker = %self.process, concurrency, engine = ?engine, "workers started");
        let duties = CancellationToken::new();
        let housekeeping = tokio::spawn({
            let (state, duties) = (self.state().clone(), duties.clone());
            async move { housekeeping(state, duties).await }
        });
        let (ctx, process) = (Arc::clone(&self.ctx), self.process.clone());
        let monitor = Monitor::new()
            .register_n(concurrency.max(1), move |slot, _restarts| {
                WorkerBuilder::new(format!("{process}/{slot}"))
                    .backend(JobQueue::new(ctx.state.clone()))
                    .parallelize(tokio::spawn)
                    .build(job_service(&ctx))
            })
            // Our queue reports no error (it logs and retries itself); should a worker end with
            // one all the same, it starts again rather than leaving its slot empty.
            .should_restart(|worker, error| {
                tracing::warn!(worker = worker.name(), error = %error, "Jobs | a worker stopped; starting it again");
                true
            });
        if let Err(e) = monitor
            .run_with_signal(async move {
                stop.cancelled().await;
                Ok(())
            })
            .await
        {
            tracing::error!(error = %e, "Jobs | the workers ended with an error");
        }
        duties.cancel();
        let _ = housekeeping.await;
        tracing::info!(worker = %self.process, "workers stopped");
    }
}

/// The reclaimer and the cleanup schedule: safe on every worker process at once.
async fn housekeeping(state: AppState, stop: CancellationToken) {
    let (db, settings) = (&state.db, &state.config.jobs);
    let stale_ms = settings.stale_after.as_millis() as i64;
    let mut reclaim = tokio::time::interval((settings.stale_after / 2).max(Duration::from_millis(200)));
    let mut schedule = tokio::time::interval(Duration::from_secs(3600).min(settings.cleanup_every));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = reclaim.tick() => match jobs::reclaim_stale(db, stale_ms, settings.reclaim_limits()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!("Jobs | reclaim | {n} job(s) of a silent worker taken back | res=pending");
                    state.wake.notify_waiters();
                }
                Err(e) => tracing::warn!(error = %e, "Jobs | reclaim failed"),
            },
            _ = schedule.tick() => {
                let since = Utc::now() - chrono::Duration::from_std(settings.cleanup_every).unwrap_or(chrono::Duration::MAX);
                match jobs::schedule_cleanup(db, since).await {
                    Ok(true) => { tracing::info!("Jobs | cleanup scheduled"); state.wake.notify_waiters(); }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "Jobs | cannot schedule the cleanup"),
                }
            }
        }
    }
}
