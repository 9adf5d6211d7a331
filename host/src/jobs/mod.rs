//! Background jobs, one file per kind. Handlers are idempotent: running one twice yields the same
//! blobs and rows. (The queue and the workers that call them come with the jobs issue.)

pub mod process_image;
pub mod sync_file_variants;
pub mod sync_project_variants;
