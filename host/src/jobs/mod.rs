//! Background jobs, one file per kind, and the workers that run them ([`worker`]). Handlers are
//! idempotent: running one twice yields the same blobs and rows.

pub mod cleanup;
pub mod process_image;
pub mod sync_file_variants;
pub mod sync_project_variants;
pub mod worker;

pub use worker::{Ran, Worker};
