//! The File answer (`GET /files/{id}`, uploads, webhook payloads): a file's row and its
//! variants', with URLs as the project's [`Links`] make them (signed for a private project).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::delivery::Links;
use crate::files::analysis::ImageFacts;
use crate::files::service::StoredFile;
use crate::projects::VariantFormat;
use crate::projects::service::Project;
use crate::webhooks::{self, Event};

/// Tells the webhooks of `project` of `event` about `stored`, with its File answer as the data.
pub async fn announce(state: &AppState, project: &Project, stored: &StoredFile, event: Event) {
    let file = async { FileView::new(stored.clone(), &Links::of(state, project)).await };
    webhooks::file_event(state, (project.row.id, stored.file.id), event, file).await;
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    /// Public URL (signed for a private project); valid once `status` is `ready`. For
    /// `format: "auto"`, `/v/{file_id}/{variant}`, which answers the format the request's
    /// `Accept` takes best.
    pub url: String,
    /// `pending`, `ready` or `failed`.
    #[schema(example = "pending")]
    pub status: String,
    #[schema(example = "webp")]
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Why rendering failed (`status: failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What rendered it, once rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<MadeBy>,
    /// `format: "auto"`, once rendered: each sibling by format (`avif`, `webp`, and `jpeg` or
    /// `png` for images with alpha).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formats: Option<BTreeMap<String, SiblingView>>,
}

/// One format of a `format: "auto"` variant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiblingView {
    /// This format's own URL (signed for a private project).
    pub url: String,
    pub size: i64,
}

/// The plugin that rendered a variant: its name, version and the digest of what ran (`native`
/// for the builtin rendered natively).
#[derive(Debug, Serialize, ToSchema)]
pub struct MadeBy {
    #[schema(example = "mbk-standard")]
    pub name: String,
    #[schema(example = "0.1.0")]
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    pub id: Uuid,
    pub project_id: Uuid,
    /// `file` or `image`.
    #[schema(example = "image")]
    pub kind: String,
    /// The client's file name, for display only.
    #[schema(example = "holiday.jpg")]
    pub filename: String,
    /// Sniffed from the bytes.
    #[schema(example = "image/jpeg")]
    pub mime_type: String,
    pub size: i64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// `processing` (images with variants still pending), `ready`, or `failed`.
    #[schema(example = "processing")]
    pub status: String,
    /// Public URL of the original.
    pub url: String,
    /// Upright width (EXIF orientation applied), images only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    pub variants: BTreeMap<String, VariantView>,
    /// Images only: placeholders, frames, focal point and metadata.
    #[serde(flatten)]
    pub image: Option<ImageFacts>,
    /// The `process_image` job (upload answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl FileView {
    /// The answer for `stored`, its URLs as `links` makes them (signed for a private project).
    pub async fn new(stored: StoredFile, links: &Links<'_>) -> crate::error::Result<FileView> {
        let f = stored.file;
        let image = ImageFacts::of(&f, links.keep_gps);
        let mut variants = BTreeMap::new();
        for v in stored.variants {
            let auto = v.format == VariantFormat::AUTO;
            let mut formats = BTreeMap::new();
            for (format, sibling) in v.siblings() {
                formats.insert(format, SiblingView { url: links.url(&sibling.key).await?, size: sibling.size });
            }
            let view = VariantView {
                url: if auto { links.variant_url(f.id, &v.name) } else { links.url(&v.storage_key).await? },
                formats: (auto && !formats.is_empty()).then_some(formats),
                status: v.status.to_string(),
                format: v.format,
                width: v.width,
                height: v.height,
                size: v.size,
                error: v.error,
                plugin: match (v.plugin_name, v.plugin_version, v.plugin_sha256) {
                    (Some(name), Some(version), Some(sha256)) => Some(MadeBy { name, version, sha256 }),
                    _ => None,
                },
            };
            variants.insert(v.name, view);
        }
        Ok(FileView {
            url: links.url(&f.storage_key).await?,
            id: f.id,
            project_id: f.project_id,
            kind: f.kind,
            filename: f.filename,
            mime_type: f.mime_type,
            size: f.size,
            sha256: f.sha256,
            status: f.status.to_string(),
            width: f.width,
            height: f.height,
            variants,
            image,
            job_id: stored.job_id,
            created_at: f.created_at,
        })
    }
}
