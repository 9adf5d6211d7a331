//! Uploads (finding, serving and deleting files: `access.rs`).
//!
//! An upload streams: the first bytes are held just long enough to sniff the type (and, for
//! images, to read the dimensions from the header), then every chunk goes on to the blob store
//! as it arrives, counted against the quotas and hashed on the way. A body over a limit is cut
//! off at once and nothing is left in storage. The rows are written after the blob, in one
//! transaction that re-checks the quotas under a lock.

use std::io;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::probe::{self, Probe};
use super::sniff::{self, SNIFF_LEN, Sniffed};
use crate::AppState;
use crate::db::files::{self, FileRow, NewFile, NewVariant, VariantRow};
use crate::db::status::FileStatus;
use crate::db::{jobs, projects};
use crate::error::{Error, Result};
use crate::projects::service::Project;
use crate::storage::keys::{file_key, original_key, variant_key};
use crate::storage::{BlobKey, ByteStream};
use crate::webhooks::Event;

/// Where an upload's bytes come from (the HTTP layer adapts a multipart field).
#[async_trait::async_trait]
pub trait ChunkSource: Send {
    /// The next chunk; `None` at the end. Errors are the client's (cut off, too slow).
    async fn next_chunk(&mut self) -> Result<Option<Bytes>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Image,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Image => "image",
        }
    }
}

/// What an upload may be. A direct upload's token narrows it further than the project's quotas.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// `None`: whatever the bytes are (an image when they sniff as one).
    pub kind: Option<Kind>,
    /// At most this many bytes (and at most the project's `max_file_bytes`).
    pub max_bytes: Option<u64>,
    /// Only these sniffed types (lower-case `type/subtype`); `None`: any the kind takes.
    pub content_types: Option<Vec<String>>,
}

impl Wanted {
    pub fn kind(kind: Kind) -> Wanted {
        Wanted { kind: Some(kind), ..Wanted::default() }
    }

    /// What a stored upload token (or the TUS upload it made) takes: its `kind` (`file`,
    /// `image`, or `any`), `max_bytes`, and `content_types` as their JSON list.
    pub fn stored(kind: &str, max_bytes: Option<i64>, content_types: Option<&str>) -> Result<Wanted> {
        let kind = match kind {
            "file" => Some(Kind::File),
            "image" => Some(Kind::Image),
            _ => None,
        };
        let content_types = match content_types {
            Some(json) => Some(serde_json::from_str(json).map_err(|e| Error::Internal(e.into()))?),
            None => None,
        };
        Ok(Wanted { kind, max_bytes: max_bytes.map(|n| n.max(0) as u64), content_types })
    }
}

/// A file with its variants, as stored.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub file: FileRow,
    pub variants: Vec<VariantRow>,
    pub job_id: Option<Uuid>,
}

/// Counts and hashes bytes as they pass, and says when a limit is passed.
struct Meter {
    size: u64,
    hasher: Sha256,
    max_file_bytes: Option<u64>,
    total_left: Option<u64>,
}

impl Meter {
    fn take(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if let Some(max) = self.max_file_bytes
            && self.size > max
        {
            // The project's max_file_bytes, or a direct upload token's lower max_bytes.
            return Err(Error::PayloadTooLarge(format!("the file is larger than this upload's limit of {max} bytes")));
        }
        if let Some(left) = self.total_left
            && self.size > left
        {
            return Err(Error::Conflict {
                code: "quota_exceeded",
                message: format!("the file would pass the project's storage quota ({left} bytes left)"),
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }
}

/// A display name: the last path component, no control characters, at most 255 characters.
pub fn sanitize_filename(raw: Option<&str>, fallback_ext: &str) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if cleaned.is_empty() { format!("upload.{fallback_ext}") } else { cleaned }
}

fn quota_exceeded(message: String) -> Error {
    Error::Conflict { code: "quota_exceeded", message }
}

/// The live project an upload goes to; 401 when it is gone (its key or token no longer counts).
pub async fn uploading_to(state: &AppState, project_id: Uuid) -> Result<Project> {
    let row =
        projects::find(&state.db, project_id).await?.ok_or_else(|| Error::Unauthorized("invalid API key".into()))?;
    Project::from_row(row)
}

/// Stores an upload of what `wanted` takes for `project` (from [`uploading_to`]; deleted
/// meanwhile, the rows are refused under the project's lock).
pub async fn upload(
    state: &AppState,
    project: &Project,
    wanted: &Wanted,
    filename: Option<&str>,
    body: &mut dyn ChunkSource,
) -> Result<StoredFile> {
    let quotas = project.settings.quotas.clone();
    let (used_bytes, used_files) = files::usage(&state.db, project.row.id).await?;
    if let Some(max) = quotas.max_files
        && used_files >= max
    {
        return Err(quota_exceeded(format!("the project holds {used_files} of at most {max} files")));
    }
    let mut meter = Meter {
        size: 0,
        hasher: Sha256::new(),
        max_file_bytes: match (quotas.max_file_bytes.map(|n| n.max(0) as u64), wanted.max_bytes) {
            (Some(quota), Some(token)) => Some(quota.min(token)),
            (quota, token) => quota.or(token),
        },
        total_left: quotas.max_total_bytes.map(|max| (max - used_bytes).max(0) as u64),
    };

    // Hold the head: enough to sniff, and for images enough to read the header.
    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() < SNIFF_LEN && !ended {
        read_more(body, &mut head, &mut meter, &mut ended).await?;
    }
    let sniffed = sniff::sniff(&head);
    if let Some(types) = &wanted.content_types
        && !types.iter().any(|t| t == sniffed.mime)
    {
        return Err(Error::UnsupportedMediaType(format!(
            "the bytes are {}, and this upload takes only {}",
            sniffed.mime,
            types.join(", ")
        )));
    }
    let kind = wanted.kind.unwrap_or(if sniffed.is_image { Kind::Image } else { Kind::File });
    let info = match kind {
        Kind::File => None,
        Kind::Image => {
            if !sniffed.is_image {
                return Err(Error::UnsupportedMediaType(format!(
                    "not a supported image: the bytes are {} (accepted: JPEG, PNG, WebP, GIF, AVIF, TIFF, HEIC, JPEG XL)",
                    sniffed.mime
                )));
            }
            let info = loop {
                match probe::probe(sniffed, &head, ended) {
                    Probe::Done(info) => break info,
                    Probe::Invalid(why) => return Err(Error::UnsupportedMediaType(why)),
                    Probe::NeedMore => read_more(body, &mut head, &mut meter, &mut ended).await?,
                }
            };
            let pixels = u64::from(info.width) * u64::from(info.height);
            if pixels > state.config.max_image_pixels {
                return Err(Error::UnsupportedMediaType(format!(
                    "the image is {}x{} ({pixels} pixels), over the limit of {} pixels",
                    info.width, info.height, state.config.max_image_pixels
                )));
            }
            Some(info)
        }
    };

    let file_id = Uuid::now_v7();
    let (slug, pid) = (project.row.slug.as_str(), project.row.id);
    let key = match kind {
        Kind::File => file_key(slug, pid, file_id, sniffed.ext),
        Kind::Image => original_key(slug, pid, file_id, sniffed.ext),
    };
    let size = stream_to_store(state, &key, sniffed, head.freeze(), ended, body, &mut meter).await?;
    let sha256 = hex::encode(std::mem::take(&mut meter.hasher).finalize());

    let variants: Vec<NewVariant> = match kind {
        Kind::File => Vec::new(),
        Kind::Image => project
            .settings
            .variants
            .iter()
            .map(|v| NewVariant {
                name: v.name.as_str().to_owned(),
                storage_key: variant_key(slug, pid, v.name.as_str(), file_id, v.format.extension()).to_string(),
                format: v.format.as_str().to_owned(),
            })
            .collect(),
    };
    let status = if kind == Kind::Image && !variants.is_empty() { FileStatus::Processing } else { FileStatus::Ready };
    let filename = sanitize_filename(filename, sniffed.ext);
    let new_file = NewFile {
        id: file_id,
        project_id: pid,
        kind: kind.as_str(),
        filename: &filename,
        mime_type: sniffed.mime,
        size: size as i64,
        sha256: &sha256,
        storage_key: key.as_str(),
        status,
        width: info.map(|i| i.width as i32),
        height: info.map(|i| i.height as i32),
    };
    let limits = Limits { max_total_bytes: quotas.max_total_bytes, max_files: quotas.max_files };
    let inserted = write_rows(state, &new_file, &variants, limits, kind == Kind::Image).await;
    let job_id = match inserted {
        Ok(Inserted::Ok { job_id }) => job_id,
        other => {
            // The blob has no row: take it back before answering.
            if let Err(e) = state.store.delete(&key).await {
                tracing::error!(key = %key, error = %e, "could not remove the blob of a refused upload; the orphan scan will");
            }
            return Err(match other {
                Ok(Inserted::QuotaExceeded(message)) => quota_exceeded(message),
                Ok(_) => Error::Unauthorized("the project was deleted during the upload".into()),
                Err(e) => e.into(),
            });
        }
    };
    if job_id.is_some() {
        state.wake.notify_waiters();
    }
    let file = files::find(&state.db, file_id).await?.ok_or_else(|| Error::not_found("file", file_id))?;
    let variants = files::variants_of(&state.db, file_id).await?;
    let stored = StoredFile { file, variants, job_id };
    super::view::announce(state, project, &stored, Event::FileCreated).await;
    if stored.file.status == FileStatus::Ready {
        super::view::announce(state, project, &stored, Event::FileReady).await;
    }
    Ok(stored)
}

/// The limits an upload's rows must respect (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    max_total_bytes: Option<i64>,
    max_files: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Inserted {
    /// The rows were written; the `process_image` job's id when one was made.
    Ok { job_id: Option<Uuid> },
    /// A quota would be passed; nothing was written. The message says which.
    QuotaExceeded(String),
    /// The project was deleted meanwhile; nothing was written.
    ProjectGone,
}

/// Writes the file row, its pending variant rows and (with `job`) its `process_image` job in one
/// transaction, after re-checking the quotas under a lock on the project (the checks before the
/// streaming saw the project as it was then). A refusal writes nothing: the dropped `Tx` rolls back.
async fn write_rows(
    state: &AppState,
    file: &NewFile<'_>,
    variants: &[NewVariant],
    limits: Limits,
    job: bool,
) -> std::result::Result<Inserted, sqlx::Error> {
    let now = chrono::Utc::now();
    let mut tx = state.db.begin().await?;
    let Some((bytes, count)) = files::usage_for_update(&mut tx, file.project_id).await? else {
        return Ok(Inserted::ProjectGone);
    };
    if let Some(max) = limits.max_files
        && count + 1 > max
    {
        return Ok(Inserted::QuotaExceeded(format!("the project holds {count} of at most {max} files")));
    }
    if let Some(max) = limits.max_total_bytes
        && bytes + file.size > max
    {
        return Ok(Inserted::QuotaExceeded(format!(
            "storing {} more bytes would pass the project's limit of {max} bytes ({bytes} used)",
            file.size
        )));
    }
    files::insert(&mut tx, file, now).await?;
    for v in variants {
        files::insert_pending_variant(&mut tx, file.id, v, now).await?;
    }
    let job_id = match job {
        true => Some(jobs::enqueue(&mut tx, Some(file.project_id), Some(file.id), jobs::kinds::PROCESS_IMAGE).await?),
        false => None,
    };
    tx.commit().await?;
    Ok(Inserted::Ok { job_id })
}

/// Appends the next chunk of `body` to `head` (or notes the end).
async fn read_more(body: &mut dyn ChunkSource, head: &mut BytesMut, meter: &mut Meter, ended: &mut bool) -> Result<()> {
    match body.next_chunk().await? {
        Some(chunk) => {
            meter.take(&chunk)?;
            head.extend_from_slice(&chunk);
        }
        None => *ended = true,
    }
    Ok(())
}

/// Sends `head` and the rest of `body` to the store under `key`; the number of bytes stored.
async fn stream_to_store(
    state: &AppState,
    key: &BlobKey,
    sniffed: Sniffed,
    head: Bytes,
    ended: bool,
    body: &mut dyn ChunkSource,
    meter: &mut Meter,
) -> Result<u64> {
    // A small channel between the request and the store: memory stays at a few chunks.
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let stream: ByteStream = Box::pin(futures_util::StreamExt::fuse(stream));
    let put = state.store.put(key, sniffed.mime, stream);
    let pump = async move {
        if !head.is_empty() && tx.send(Ok(head)).await.is_err() {
            return Ok(false);
        }
        if !ended {
            loop {
                let chunk = match body.next_chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::other("the upload was cut short"))).await;
                        return Err(e);
                    }
                };
                if let Err(e) = meter.take(&chunk) {
                    let _ = tx.send(Err(io::Error::other("the upload passed a limit"))).await;
                    return Err(e);
                }
                if tx.send(Ok(chunk)).await.is_err() {
                    return Ok(false); // the store gave up; its error is the answer
                }
            }
        }
        Ok(true)
    };
    let (stored, pumped) = tokio::join!(put, pump);
    match (stored, pumped) {
        (Ok(meta), Ok(true)) => Ok(meta.size),
        (_, Err(client_error)) => {
            // The store saw the error and left nothing; make sure of it.
            let _ = state.store.delete(key).await;
            Err(client_error)
        }
        (Err(storage_error), _) => Err(storage_error.into()),
        (Ok(_), Ok(false)) => Err(Error::Internal(anyhow::anyhow!("the store finished before the body"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_cleaned_for_display() {
        assert_eq!(sanitize_filename(Some("holiday.jpg"), "jpg"), "holiday.jpg");
        assert_eq!(sanitize_filename(Some("../../etc/passwd"), "txt"), "passwd");
        assert_eq!(sanitize_filename(Some("C:\\Users\\me\\cat.png"), "png"), "cat.png");
        assert_eq!(sanitize_filename(Some("a\u{0}b\nc.txt"), "txt"), "abc.txt");
        assert_eq!(sanitize_filename(Some("..."), "bin"), "upload.bin");
        assert_eq!(sanitize_filename(None, "pdf"), "upload.pdf");
        assert_eq!(sanitize_filename(Some(&"x".repeat(1000)), "bin").len(), 255);
    }
}
