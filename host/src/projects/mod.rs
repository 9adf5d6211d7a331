//! Projects: their settings (variants, quotas), ownership, deletion, and their API keys.

pub mod delivery_settings;
mod schemas;
pub mod service;
pub mod settings;
pub mod variant_format;
pub mod variant_gravity;

pub use settings::{Fit, Format, ProjectSettings, Quotas, VariantName, VariantSpec};
pub use variant_format::VariantFormat;
pub use variant_gravity::VariantGravity;
