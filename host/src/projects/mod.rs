//! Projects: their settings (variants, quotas), ownership, deletion, and their API keys.

pub mod delivery_settings;
pub mod service;
pub mod settings;
pub mod variant_format;

pub use settings::{Fit, Format, ProjectSettings, Quotas, VariantName, VariantSpec};
pub use variant_format::VariantFormat;
