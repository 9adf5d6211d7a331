//! The siblings of a `format: "auto"` variant (migration 0011): the JSON of `variants.formats`,
//! read into types, and every key a variant's blobs are under.

use super::files::VariantRow;

/// The siblings of a `format: "auto"` variant by format name (`avif`, `webp`, `jpeg` or
/// `png`): where each is stored and its size.
pub type Siblings = std::collections::BTreeMap<String, Sibling>;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sibling {
    pub key: String,
    pub size: i64,
}

/// The siblings a `formats` column holds (none for NULL).
pub fn parse(formats: Option<&str>) -> Siblings {
    formats.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
}

impl VariantRow {
    /// Its siblings (none for a variant of one format, or one not rendered yet).
    pub fn siblings(&self) -> Siblings {
        parse(self.formats.as_deref())
    }

    /// Every key its blobs are stored under: its own, and its siblings'.
    pub fn blob_keys(&self) -> Vec<String> {
        let mut keys = vec![self.storage_key.clone()];
        keys.extend(self.siblings().into_values().map(|s| s.key).filter(|k| *k != self.storage_key));
        keys
    }
}
