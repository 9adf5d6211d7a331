//! The workers: take jobs from the queue (our `jobs` table, see [`crate::db::jobs`]), run the
//! handler of their kind, and record the end.
//!
//! One [`Worker`] per process holds `WORKER_CONCURRENCY` slots; each slot claims and runs one job
//! at a time under its own id (`{process}/{slot}`), so that a slot that lost its job (taken back
//! after a missed heartbeat) cannot record over the new owner. Beside the slots run the heartbeat
//! (every quarter of the stale limit, for exactly the jobs being run), the reclaimer (stale
//! `processing` jobs back to `pending`, or `failed` after every attempt; at start and then
//! periodically) and the daily `cleanup` schedule. A job runs for at most `job_timeout`.
//!
//! Outcomes: a handler that finished records `completed`, or `failed` with the first reason when a
//! variant failed for good (undecodable image, plugin error: no retry). A transient failure (the
//! store or the database did not answer) goes back to the queue with exponential backoff, and is
//! `failed` after `max_attempts`. Handlers are idempotent, so a job run twice (its worker died
//! after the work but before recording it) yields the same blobs and rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Transient, cleanup, process_image, sync_file_variants, sync_project_variants};
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
    state: AppState,
    renderer: Arc<Renderer>,
    process: String,
    /// The jobs this process' slots are running now, with the slot id holding each: the
    /// heartbeat keeps exactly these alive.
    held: Arc<std::sync::Mutex<Vec<(Uuid, String)>>>,
}

/// Removes a job from the held list when its run ends, however it ends (a panic included).
struct Held<'a> {
    held: &'a std::sync::Mutex<Vec<(Uuid, String)>>,
    id: Uuid,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        crate::sync::lock(self.held).retain(|(id, _)| *id != self.id);
    }
}

impl Worker {
    pub fn new(state: AppState, renderer: Arc<Renderer>) -> Worker {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        let process =
            format!("{}:{}:{}", if host.is_empty() { "host" } else { &host }, std::process::id(), Uuid::now_v7());
        Worker { state, renderer, process, held: Arc::default() }
    }

    /// This process' worker id prefix (slots are `{id}/{n}`).
    pub fn id(&self) -> &str {
        &self.process
    }

    fn slot_id(&self, slot: usize) -> String {
        format!("{}/{slot}", self.process)
    }

    /// Claims one runnable job for `slot` and runs it. `None` when the queue has nothing to run.
    pub async fn run_next(&self, slot: usize) -> Result<Option<(JobRow, Ran)>, sqlx::Error> {
        let me = self.slot_id(slot);
        let Some(job) = jobs::claim(&self.state.db, &me).await? else { return Ok(None) };
        crate::sync::lock(&self.held).push((job.id, me.clone()));
        let _held = Held { held: &self.held, id: job.id };
        let started = std::time::Instant::now();
        // A handler that hangs (a store that never answers) must not hold its job forever.
        let limit = self.state.config.jobs.job_timeout;
        let result = match tokio::time::timeout(limit, self.execute(&job)).await {
            Ok(result) => result,
            Err(_) => Err(Transient::TimedOut(limit)),
        };
        // When recording fails (the database is away), the job is no longer kept alive: it is
        // taken back after the stale limit and runs again.
        // The detail of a transient failure goes to this log line only; the row keeps the
        // reason a tenant may read.
        let detail = result.as_ref().err().map(|e| format!(" ({e})")).unwrap_or_default();
        let ran = self.record(&job, &me, result).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        crate::metrics::job_run(&job.kind, ran.label());
        let project = job.project_id.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let (kind, id, attempt, res) = (&job.kind, job.id, job.attempts, ran.label());
        match &ran {
            Ran::Failed(why) | Ran::Retrying(why) => {
                tracing::warn!(
                    "Jobs | {kind} {id} | project={project} attempt={attempt} {ms:.1}ms {why}{detail} | res={res}"
                )
            }
            Ran::Completed | Ran::Lost => {
                tracing::info!("Jobs | {kind} {id} | project={project} attempt={attempt} {ms:.1}ms | res={res}")
            }
        }
        Ok(Some((job, ran)))
    }

    /// Runs jobs until none is runnable now (tests, and `mbk-host cleanup`). Returns how many ran.
    pub async fn drain(&self) -> Result<usize, sqlx::Error> {
        let mut ran = 0;
        while self.run_next(0).await?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// The handler of the job's kind. `Ok(Err(reason))`: failed for good.
    async fn execute(&self, job: &JobRow) -> Result<Result<(), String>, Transient> {
        let settled = process_image::verdict;
        match job.kind.as_str() {
            "process_image" => match job.file_id {
                Some(file) => Ok(settled(process_image::run(&self.state, &self.renderer, file).await?)),
                None => Ok(Ok(())), // the file was deleted: nothing to do
            },
            "sync_file_variants" => match job.file_id {
                Some(file) => Ok(sync_file_variants::run(&self.state, &self.renderer, file)
                    .await?
                    .map_or(Ok(()), |synced| settled(synced.render))),
                None => Ok(Ok(())),
            },
            "sync_project_variants" => match job.project_id {
                Some(project) => {
                    sync_project_variants::run(&self.state, project).await?;
                    self.state.wake.notify_waiters();
                    Ok(Ok(()))
                }
                None => Ok(Ok(())),
            },
            "cleanup" => cleanup::run(&self.state).await.map(|_| Ok(())),
            other => Ok(Err(format!("unknown job kind {other:?}"))),
        }
    }

    async fn record(
        &self,
        job: &JobRow,
        me: &str,
        result: Result<Result<(), String>, Transient>,
    ) -> Result<Ran, sqlx::Error> {
        let db = &self.state.db;
        let settings = &self.state.config.jobs;
        let (held, ran) = match result {
            Ok(Ok(())) => (jobs::finish(db, job.id, me, "completed", None).await?, Ran::Completed),
            Ok(Err(why)) => (jobs::finish(db, job.id, me, "failed", Some(&why)).await?, Ran::Failed(why)),
            Err(transient) if job.attempts >= settings.max_attempts => {
                let why = format!("gave up after {} attempts: {}", job.attempts, transient.public_reason());
                let held = jobs::finish(db, job.id, me, "failed", Some(&why)).await?;
                // Nothing may stay `processing`: what was not rendered fails with the reason.
                if held && let Some(file) = job.file_id.filter(|_| jobs::renders_file(&job.kind)) {
                    crate::db::files::give_up(db, file, &why).await?;
                }
                (held, Ran::Failed(why))
            }
            Err(transient) => {
                let delay = settings.backoff(job.attempts);
                let why = format!("{}; retrying in {delay:?}", transient.public_reason());
                (jobs::retry_later(db, job.id, me, delay.as_millis() as i64, &why).await?, Ran::Retrying(why))
            }
        };
        Ok(if held { ran } else { Ran::Lost })
    }

    /// Runs the slots, the heartbeat, the reclaimer and the cleanup schedule until `stop` is
    /// cancelled; then lets the jobs in hand finish.
    pub async fn run(self, concurrency: usize, stop: CancellationToken) {
        let settings = self.state.config.jobs.clone();
        tracing::info!(worker = %self.process, concurrency, engine = ?self.renderer.engine(), "workers started");
        let mut tasks = tokio::task::JoinSet::new();
        for slot in 0..concurrency.max(1) {
            let worker = self.clone();
            let stop = stop.clone();
            tasks.spawn(async move { worker.slot_loop(slot, stop).await });
        }
        // Background duties end with the slots.
        let duties = CancellationToken::new();
        let housekeeping = tokio::spawn({
            let worker = self.clone();
            let duties = duties.clone();
            async move { worker.housekeeping(settings, duties).await }
        });
        while tasks.join_next().await.is_some() {}
        duties.cancel();
        let _ = housekeeping.await;
        tracing::info!(worker = %self.process, "workers stopped");
    }

    async fn slot_loop(&self, slot: usize, stop: CancellationToken) {
        let poll = self.state.config.jobs.poll_interval;
        while !stop.is_cancelled() {
            // Registered before looking, so an enqueue between the look and the wait is not missed.
            let woken = self.state.wake.notified();
            match self.run_next(slot).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "Jobs | cannot reach the queue; trying again"),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = woken => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn housekeeping(&self, settings: crate::config::JobSettings, stop: CancellationToken) {
        let db = &self.state.db;
        let stale_ms = settings.stale_after.as_millis() as i64;
        let mut beat = tokio::time::interval(settings.heartbeat_every());
        let mut reclaim = tokio::time::interval((settings.stale_after / 2).max(Duration::from_millis(200)));
        let mut schedule = tokio::time::interval(Duration::from_secs(3600).min(settings.cleanup_every));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = beat.tick() => {
                    let held = crate::sync::lock(&self.held).clone();
                    for (id, slot) in held {
                        if let Err(e) = jobs::heartbeat(db, id, &slot).await {
                            tracing::warn!(error = %e, "Jobs | heartbeat failed");
                        }
                    }
                }
                _ = reclaim.tick() => match jobs::reclaim_stale(db, stale_ms, settings.max_attempts).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!("Jobs | reclaim | {n} job(s) of a silent worker taken back | res=pending");
                        self.state.wake.notify_waiters();
                    }
                    Err(e) => tracing::warn!(error = %e, "Jobs | reclaim failed"),
                },
                _ = schedule.tick() => {
                    let since = Utc::now() - chrono::Duration::from_std(settings.cleanup_every).unwrap_or(chrono::Duration::MAX);
                    match jobs::schedule_cleanup(db, since).await {
                        Ok(true) => { tracing::info!("Jobs | cleanup scheduled"); self.state.wake.notify_waiters(); }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "Jobs | cannot schedule the cleanup"),
                    }
                }
            }
        }
    }
}
