//! Background jobs: one type per kind ([`kind`], each kind's work in its own file), the apalis
//! backend over our `jobs` table ([`queue`]), the stack each job runs through ([`record`]) and
//! the workers ([`worker`]). Jobs are idempotent: running one twice yields the same blobs and rows.

pub mod cleanup;
pub mod kind;
pub mod process_image;
pub mod queue;
pub mod record;
pub mod sync_file_variants;
pub mod sync_project_variants;
pub mod worker;

pub use kind::{BackgroundJob, Job, JobContext, Verdict};
pub use worker::{Ran, Worker};

use crate::{pipeline, storage};

/// Failures worth a retry (the store or the database did not answer, the job ran too long, every
/// plugin sandbox was busy): the job goes back to the queue with a backoff.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the job ran past its limit of {0:?}")]
    TimedOut(std::time::Duration),
    /// Every plugin sandbox of this process was in use.
    #[error("{0}")]
    Busy(String),
    /// The job panicked (the text is for the log).
    #[error("the job panicked: {0}")]
    Crashed(String),
    /// A webhook's receiver did not take a delivery (the tenant's own endpoint: the reason is
    /// theirs to read).
    #[error("{0}")]
    Receiver(String),
}

impl Transient {
    /// What a tenant is shown (the job's and its variants' `error`): a stable reason. The
    /// detail (a store endpoint, a bucket, a path, the SQL a database refused) is for the log
    /// only, where the worker writes it.
    pub fn public_reason(&self) -> String {
        match self {
            Transient::Storage(_) => "storage unavailable".into(),
            Transient::Database(_) => "database unavailable".into(),
            Transient::TimedOut(_) => self.to_string(),
            Transient::Busy(_) => "every plugin sandbox was busy".into(),
            Transient::Crashed(_) => "the job crashed".into(),
            Transient::Receiver(why) => why.clone(),
        }
    }
}

/// A render that stopped short is retried like any other job.
impl From<pipeline::Retry> for Transient {
    fn from(retry: pipeline::Retry) -> Self {
        match retry {
            pipeline::Retry::Storage(e) => Transient::Storage(e),
            pipeline::Retry::Database(e) => Transient::Database(e),
            pipeline::Retry::Busy(why) => Transient::Busy(why),
        }
    }
}
