//! Background jobs, one file per kind, and the workers that run them ([`worker`]). Handlers are
//! idempotent: running one twice yields the same blobs and rows.

pub mod cleanup;
pub mod process_image;
pub mod sync_file_variants;
pub mod sync_project_variants;
pub mod worker;

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
