//! The kinds of job: one type per kind, each a [`BackgroundJob`] with its `KIND` (the row's
//! `kind` column) and a `run` of one shape, and [`Job`], the one a queued row asks for.

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use super::{Transient, cleanup, process_image, sync_file_variants, sync_project_variants};
use crate::AppState;
use crate::db::jobs::{self, JobRow, kinds};
use crate::pipeline::Renderer;

/// What every job may use.
pub struct JobContext {
    pub state: AppState,
    pub renderer: Arc<Renderer>,
}

/// How a job that ran to its end went: `Err(reason)` is failed for good (no retry).
pub type Verdict = Result<(), String>;

/// One kind of job.
pub trait BackgroundJob: Sized {
    /// The row's `kind`.
    const KIND: &'static str;

    /// Does the work. A [`Transient`] error runs the job again after a backoff.
    fn run(self, ctx: &JobContext) -> impl Future<Output = Result<Verdict, Transient>> + Send;
}

/// Render the pending variants of one uploaded image.
pub struct ProcessImage {
    pub file: Uuid,
}

impl BackgroundJob for ProcessImage {
    const KIND: &'static str = kinds::PROCESS_IMAGE;

    async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        Ok(process_image::verdict(process_image::run(&ctx.state, &ctx.renderer, self.file).await?))
    }
}

/// Make one image's variants match its project's settings now; its report says what changed.
pub struct SyncFileVariants {
    pub job: Uuid,
    /// The worker holding the job, which fences its report.
    pub holder: String,
    pub file: Uuid,
}

impl BackgroundJob for SyncFileVariants {
    const KIND: &'static str = kinds::SYNC_FILE_VARIANTS;

    async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        let synced = sync_file_variants::run(&ctx.state, &ctx.renderer, self.file).await?;
        if let Some(synced) = &synced {
            jobs::set_report(&ctx.state.db, self.job, &self.holder, &json(&synced.report)).await?;
        }
        Ok(synced.map_or(Ok(()), |synced| process_image::verdict(synced.render)))
    }
}

/// Fan out one [`SyncFileVariants`] per image of a project that the sync changes; its report
/// sums what they will change.
pub struct SyncProjectVariants {
    pub job: Uuid,
    pub holder: String,
    pub project: Uuid,
}

impl BackgroundJob for SyncProjectVariants {
    const KIND: &'static str = kinds::SYNC_PROJECT_VARIANTS;

    async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        let (_, report) = sync_project_variants::run(&ctx.state, self.project).await?;
        jobs::set_report(&ctx.state.db, self.job, &self.holder, &json(&report)).await?;
        // The jobs just made are for this process' idle workers too.
        ctx.state.wake.notify_waiters();
        Ok(Ok(()))
    }
}

/// Purge soft-deleted projects and orphans (daily).
pub struct Cleanup;

impl BackgroundJob for Cleanup {
    const KIND: &'static str = kinds::CLEANUP;

    async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        cleanup::run(&ctx.state).await.map(|_| Ok(()))
    }
}

/// Send one webhook delivery (the one made with this job), on the job's attempt `attempts`.
pub struct DeliverWebhook {
    pub job: Uuid,
    pub attempts: i32,
}

impl BackgroundJob for DeliverWebhook {
    const KIND: &'static str = kinds::DELIVER_WEBHOOK;

    async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        crate::webhooks::send::run(&ctx.state, self.job, self.attempts).await
    }
}

/// The job a queued row asks for.
pub enum Job {
    ProcessImage(ProcessImage),
    SyncFileVariants(SyncFileVariants),
    SyncProjectVariants(SyncProjectVariants),
    Cleanup(Cleanup),
    DeliverWebhook(DeliverWebhook),
}

impl Job {
    /// The job `row` (held by `holder`) asks for. `Ok(None)`: its file or project was deleted
    /// since it was queued (nothing is left to do). `Err`: a kind this build does not know (it
    /// fails for good).
    pub fn from_row(row: &JobRow, holder: &str) -> Result<Option<Job>, String> {
        let (job, holder) = (row.id, holder.to_owned());
        let job = match row.kind.as_str() {
            ProcessImage::KIND => row.file_id.map(|file| Job::ProcessImage(ProcessImage { file })),
            SyncFileVariants::KIND => {
                row.file_id.map(|file| Job::SyncFileVariants(SyncFileVariants { job, holder, file }))
            }
            SyncProjectVariants::KIND => {
                row.project_id.map(|project| Job::SyncProjectVariants(SyncProjectVariants { job, holder, project }))
            }
            Cleanup::KIND => Some(Job::Cleanup(Cleanup)),
            // Not tied to its file: a `file.deleted` delivery outlives the file.
            DeliverWebhook::KIND => Some(Job::DeliverWebhook(DeliverWebhook { job, attempts: row.attempts })),
            other => return Err(format!("unknown job kind {other:?}")),
        };
        Ok(job)
    }

    pub async fn run(self, ctx: &JobContext) -> Result<Verdict, Transient> {
        match self {
            Job::ProcessImage(job) => job.run(ctx).await,
            Job::SyncFileVariants(job) => job.run(ctx).await,
            Job::SyncProjectVariants(job) => job.run(ctx).await,
            Job::Cleanup(job) => job.run(ctx).await,
            Job::DeliverWebhook(job) => job.run(ctx).await,
        }
    }
}

/// A report as stored in the job's row.
fn json(report: &sync_file_variants::Report) -> String {
    serde_json::to_string(report).unwrap_or_else(|_| "{}".into())
}
