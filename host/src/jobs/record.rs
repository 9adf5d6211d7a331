//! The service an apalis worker runs each claimed job through, outermost first:
//!
//! - [`Record`] (ours): keeps the job's heartbeat fresh while it runs, then writes how it ended
//!   to its row (fenced by the holder's name) and logs it. It sits outside the two below, so a
//!   job that panicked or ran past `job_timeout` is recorded at once as a transient failure
//!   (retried with backoff, `failed` after `max_attempts`), not left `processing` until the
//!   stale limit.
//! - apalis' `timeout` (tower's), `job_timeout`: a hung store must not hold a job for ever.
//! - apalis' `catch_panic`: a panic becomes an error of the job, not of the worker.
//! - [`RunJob`]: decodes the row into its [`Job`] and runs it.
//!
//! There is no in-memory retry: a retry is the row going back to `pending` with its backoff.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis::layers::catch_panic::{CatchPanicLayer, CatchPanicService};
use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tower::timeout::Timeout;
use tower::{Layer, Service};

use super::kind::{Job, JobContext, Verdict};
use super::queue::Claimed;
use super::{Ran, Transient};
use crate::AppState;
use crate::config::JobSettings;
use crate::db::jobs::{self, JobRow};
use crate::db::status::JobStatus;

/// The whole stack for one worker.
pub type JobService = Stack<RunJob>;

/// [`Record`], timeout and catch-panic around `S`.
pub type Stack<S> = Record<Timeout<CatchPanicService<S, fn(&Panic) -> Transient>>>;

type Panic = Box<dyn std::any::Any + Send>;

pub fn job_service(ctx: &Arc<JobContext>) -> JobService {
    around(&ctx.state, RunJob { ctx: Arc::clone(ctx) })
}

/// The stack around `run` (the jobs' own [`RunJob`]; tests put jobs that panic or hang there).
pub fn around<S>(state: &AppState, run: S) -> Stack<S> {
    let on_panic: fn(&Panic) -> Transient = |panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Transient::Crashed(text)
    };
    let run = CatchPanicLayer::with_panic_handler(on_panic).layer(run);
    Record { inner: Timeout::new(run, state.config.jobs.job_timeout), state: state.clone() }
}

/// Runs the job a claimed row asks for.
#[derive(Clone)]
pub struct RunJob {
    ctx: Arc<JobContext>,
}

impl Service<Task<Claimed>> for RunJob {
    type Response = Verdict;
    type Error = Transient;
    type Future = BoxFuture<'static, Result<Verdict, Transient>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Transient>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<Claimed>) -> Self::Future {
        let ctx = Arc::clone(&self.ctx);
        let id = task.args.row.id;
        let run = async move {
            match Job::from_row(&task.args.row, &task.args.holder) {
                Ok(Some(job)) => job.run(&ctx).await,
                Ok(None) => Ok(Ok(())), // its file or project was deleted: nothing to do
                Err(unknown) => Ok(Err(unknown)),
            }
        };
        // The plugin calls it makes are counted as this job's.
        crate::pipeline::metering::JOB.scope(id, run).boxed()
    }
}

/// Heartbeat, then the record of how the job ended. Errs only when the record cannot be written
/// (the database is away): the job is then no longer kept alive, so the stale reclaim takes it
/// back and it runs again.
#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Task<Claimed>> for Record<S>
where
    S: Service<Task<Claimed>, Response = Verdict>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
{
    type Response = Ran;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<Ran, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxDynError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Claimed>) -> Self::Future {
        let claimed = task.args.clone();
        let state = self.state.clone();
        let beat = Heartbeat::start(&state, &claimed);
        let started = Instant::now();
        let work = self.inner.call(task);
        async move {
            let result = work.await.map_err(|e| transient(e.into(), state.config.jobs.job_timeout));
            drop(beat);
            // The detail of a transient failure goes to this log line only; the row keeps the
            // reason a tenant may read.
            let detail = result.as_ref().err().map(|e| format!(" ({e})")).unwrap_or_default();
            let ran = record(&state, &claimed, result).await.inspect_err(|e| {
                tracing::warn!(error = %e, job = %claimed.row.id, "Jobs | cannot record the end; the stale limit takes it back");
            })?;
            log(&claimed, &ran, started.elapsed(), &detail);
            Ok(ran)
        }
        .boxed()
    }
}

/// The failure an error of the stack stands for: the job's own, a timeout, or a panic.
fn transient(error: BoxDynError, limit: Duration) -> Transient {
    if error.is::<tower::timeout::error::Elapsed>() {
        return Transient::TimedOut(limit);
    }
    match error.downcast::<Transient>() {
        Ok(transient) => *transient,
        Err(other) => Transient::Crashed(other.to_string()),
    }
}

async fn record(state: &AppState, claimed: &Claimed, result: Result<Verdict, Transient>) -> Result<Ran, sqlx::Error> {
    let (db, settings) = (&state.db, &state.config.jobs);
    let (job, me) = (&claimed.row, claimed.holder.as_str());
    let (held, ran) = match result {
        Ok(Ok(())) => (jobs::finish(db, job.id, me, JobStatus::Completed, None).await?, Ran::Completed),
        Ok(Err(why)) => (jobs::finish(db, job.id, me, JobStatus::Failed, Some(&why)).await?, Ran::Failed(why)),
        Err(transient) if retry_after(settings, job).is_none() => {
            let why = format!("gave up after {} attempts: {}", job.attempts, transient.public_reason());
            let held = jobs::finish(db, job.id, me, JobStatus::Failed, Some(&why)).await?;
            // Nothing may stay `processing`: what was not rendered fails with the reason.
            if held && let Some(file) = job.file_id.filter(|_| jobs::renders_file(&job.kind)) {
                crate::db::files::give_up(db, file, &why).await?;
            }
            // Nor `pending`: a delivery whose job gave up has failed.
            if held && job.kind == jobs::kinds::DELIVER_WEBHOOK {
                crate::db::webhooks::fail_by_job(db, job.id, &why).await?;
            }
            (held, Ran::Failed(why))
        }
        Err(transient) => {
            let delay = retry_after(settings, job).unwrap_or_default();
            let why = format!("{}; retrying in {delay:?}", transient.public_reason());
            (jobs::retry_later(db, job.id, me, delay.as_millis() as i64, &why).await?, Ran::Retrying(why))
        }
    };
    Ok(if held { ran } else { Ran::Lost })
}

/// The wait before `job` runs again after a transient failure; `None` when that was its last
/// attempt. Webhook deliveries keep their own, day-long schedule.
fn retry_after(settings: &JobSettings, job: &JobRow) -> Option<Duration> {
    if job.kind == jobs::kinds::DELIVER_WEBHOOK {
        return settings.webhook_retry(job.attempts);
    }
    (job.attempts < settings.max_attempts).then(|| settings.backoff(job.attempts))
}

fn log(claimed: &Claimed, ran: &Ran, took: Duration, detail: &str) {
    let job = &claimed.row;
    crate::metrics::job_run(&job.kind, ran.label());
    let ms = took.as_secs_f64() * 1000.0;
    let project = job.project_id.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let (kind, id, attempt, res) = (&job.kind, job.id, job.attempts, ran.label());
    match ran {
        Ran::Failed(why) | Ran::Retrying(why) => {
            tracing::warn!(
                "Jobs | {kind} {id} | project={project} attempt={attempt} {ms:.1}ms {why}{detail} | res={res}"
            )
        }
        Ran::Completed | Ran::Lost => {
            tracing::info!("Jobs | {kind} {id} | project={project} attempt={attempt} {ms:.1}ms | res={res}")
        }
    }
}

/// Keeps one job's heartbeat fresh while it runs, on a task of its own (a job busy on a
/// runtime thread cannot starve it); stops when dropped, however the job ended.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(state: &AppState, claimed: &Claimed) -> Heartbeat {
        let (db, id, holder) = (state.db.clone(), claimed.row.id, claimed.holder.clone());
        let every = state.config.jobs.heartbeat_every();
        Heartbeat(tokio::spawn(async move {
            let mut beat = tokio::time::interval(every);
            beat.tick().await; // the claim itself set the first one
            loop {
                beat.tick().await;
                match jobs::heartbeat(&db, id, &holder).await {
                    Ok(true) => {}
                    Ok(false) => break, // taken back or its project deleted: the new owner beats
                    Err(e) => tracing::warn!(error = %e, job = %id, "Jobs | heartbeat failed"),
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
