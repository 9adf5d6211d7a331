//! PATCH: one body becomes one stored part; the part that reaches the length turns the upload
//! into a File.
//!
//! The work runs in a task of its own: a client that drops the connection makes hyper drop the
//! request's future, and the bytes that had arrived must still be stored and recorded (a tus
//! client resumes from the offset HEAD reports), and a conversion under way must not be cut off.

use std::io;

use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;
use uuid::Uuid;

use super::{Credential, Upload, authorised, check_not_expired, forget, remove_parts, wanted};
use crate::AppState;
use crate::db::tus_uploads::{self, PartRow};
use crate::error::{Error, Result};
use crate::files::service::{self, ChunkSource};
use crate::storage::keys::project_prefix;
use crate::storage::{BlobKey, ByteStream};

/// How long one conversion may hold an upload before another request may try again.
const COMPLETION_LEASE: chrono::Duration = chrono::Duration::hours(1);
/// How long a PATCH waits for another one of the same upload (see [`super::in_flight`]).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The key of a part starting at `offset`. Zero-padded, so a folder listing is in byte order;
/// a fresh id per PATCH, so two PATCHes racing from one offset never overwrite each other's
/// object (the loser deletes its own).
fn part_key(slug: &str, project_id: Uuid, upload_id: Uuid, offset: i64) -> Result<BlobKey> {
    let prefix = project_prefix(slug, project_id);
    Ok(BlobKey::parse(&format!("{prefix}tus/{upload_id}/{offset:020}-{}", Uuid::now_v7().simple()))?)
}

/// Appends `body` at `offset` (`Upload-Offset`) to upload `id`; the upload as it is after.
/// `content_length` (when the client said it) is checked against what is left before a byte is
/// read. A body cut short keeps what arrived.
pub async fn append(
    state: &AppState,
    credential: &Credential,
    id: Uuid,
    offset: i64,
    content_length: Option<u64>,
    body: Box<dyn ChunkSource + 'static>,
) -> Result<Upload> {
    let turn = super::in_flight::wait_turn(id, PATIENCE).await;
    let row = authorised(state, credential, id).await?;
    check_not_expired(&row, Utc::now())?;
    if offset != row.upload_offset {
        return Err(Error::conflict(format!(
            "Upload-Offset is {offset}, and the upload is at {}: resume from there",
            row.upload_offset
        )));
    }
    let left = row.length - row.upload_offset;
    if let Some(n) = content_length
        && n > left as u64
    {
        return Err(Error::PayloadTooLarge(format!("the body of {n} bytes passes Upload-Length ({left} bytes left)")));
    }
    if row.file_id.is_some() {
        return Ok(row); // finished already: a repeated last PATCH, answered as the first was
    }
    let state = state.clone();
    let task = tokio::spawn(async move {
        let _turn = turn; // held until the part is recorded, even when the client is gone
        let row = match row.upload_offset < row.length {
            true => store_part(&state, row, body).await?,
            false => row, // all there: a conversion that failed for a while is tried again
        };
        if row.upload_offset < row.length { Ok(row) } else { complete(&state, row).await }
    });
    task.await.map_err(|e| Error::Internal(anyhow::anyhow!("the PATCH task failed: {e}")))?
}

/// Streams `body` to the store as the part at the upload's offset and records it; the upload
/// with its offset moved on (unmoved when nothing arrived).
async fn store_part(state: &AppState, mut row: Upload, mut body: Box<dyn ChunkSource>) -> Result<Upload> {
    let left = (row.length - row.upload_offset) as u64;
    // Nothing is stored for an empty body (or one cut off before its first byte).
    let first = match body.next_chunk().await {
        Ok(Some(chunk)) => chunk,
        Ok(None) | Err(_) => return Ok(row),
    };
    let project = service::uploading_to(state, row.project_id).await?;
    let key = part_key(&project.row.slug, project.row.id, row.id, row.upload_offset)?;

    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let stream: ByteStream = Box::pin(stream.fuse());
    let put = state.store.put(&key, "application/octet-stream", stream);
    let pump = async move {
        let mut sent = 0u64;
        let mut chunk = Some(first);
        while let Some(bytes) = chunk.take() {
            sent += bytes.len() as u64;
            if sent > left {
                let _ = tx.send(Err(io::Error::other("the body passed Upload-Length"))).await;
                return Err(Error::PayloadTooLarge(format!("the body passes Upload-Length ({left} bytes left)")));
            }
            if tx.send(Ok(bytes)).await.is_err() {
                return Ok(()); // the store gave up; its error is the answer
            }
            // A body cut off or stalled ends the part here: what arrived is kept (dropping
            // `tx` ends the stream cleanly), and the client resumes from the new offset.
            chunk = body.next_chunk().await.unwrap_or_else(|e| {
                tracing::info!(error = %e, "tus: a PATCH body ended early; keeping what arrived");
                None
            });
        }
        Ok(())
    };
    let (stored, pumped) = tokio::join!(put, pump);
    let size = match (stored, pumped) {
        (Ok(meta), Ok(())) => meta.size as i64,
        (_, Err(e)) => {
            let _ = state.store.delete(&key).await;
            return Err(e);
        }
        (Err(e), Ok(())) => return Err(e.into()),
    };
    let part = PartRow { start_offset: row.upload_offset, size, storage_key: key.to_string() };
    let recorded = match tus_uploads::record_part(&state.db, row.id, row.upload_offset, &part).await {
        Ok(recorded) => recorded,
        Err(e) => {
            let _ = state.store.delete(&key).await;
            return Err(e.into());
        }
    };
    if !recorded {
        let _ = state.store.delete(&key).await;
        return Err(Error::conflict("another PATCH of this upload landed first: ask HEAD for the offset"));
    }
    row.upload_offset += size;
    Ok(row)
}

/// Turns the finished upload into a File (through [`service::upload`]) and removes its parts;
/// the upload with its `file_id`. A refusal of the bytes (type, quota, size) ends the upload;
/// any other failure leaves it for a retry (a PATCH at its length with an empty body).
pub async fn complete(state: &AppState, mut row: Upload) -> Result<Upload> {
    let until = Utc::now() + COMPLETION_LEASE;
    if !tus_uploads::claim_completion(&state.db, row.id, until).await? {
        let now = tus_uploads::find(&state.db, row.id).await?.ok_or_else(|| Error::not_found("upload", row.id))?;
        if now.file_id.is_some() {
            return Ok(now);
        }
        return Err(Error::conflict("the upload is being turned into a file: ask HEAD in a moment"));
    }
    let converted = convert(state, &row).await;
    let file_id = match converted {
        Ok(file_id) => file_id,
        Err(e) => {
            let refused = matches!(
                e,
                Error::PayloadTooLarge(_)
                    | Error::UnsupportedMediaType(_)
                    | Error::Conflict { .. }
                    | Error::Validation { .. }
                    | Error::Unauthorized(_)
            );
            let cleanup = if refused { forget(state, row.id).await } else { Ok(()) };
            if let Err(cleanup) = cleanup {
                tracing::warn!(upload = %row.id, error = %cleanup, "tus: cannot remove a refused upload; expiry will");
            }
            let _ = tus_uploads::release_completion(&state.db, row.id).await;
            return Err(e);
        }
    };
    if !tus_uploads::set_file(&state.db, row.id, file_id).await? {
        tracing::warn!(upload = %row.id, file = %file_id, "tus: the upload went while it became a file");
    }
    row.file_id = Some(file_id);
    if let Err(e) = remove_parts(state, row.id).await {
        // The File is made; leftover parts go with the upload's expiry.
        tracing::warn!(upload = %row.id, error = %e, "tus: cannot remove the parts of a finished upload");
    }
    Ok(row)
}

async fn convert(state: &AppState, row: &Upload) -> Result<Uuid> {
    let parts = tus_uploads::parts(&state.db, row.id).await?;
    let mut end = 0;
    for part in &parts {
        if part.start_offset != end {
            return Err(Error::Internal(anyhow::anyhow!("upload {}: a gap in its parts at {end}", row.id)));
        }
        end += part.size;
    }
    if end != row.length {
        return Err(Error::Internal(anyhow::anyhow!("upload {}: parts end at {end}, not {}", row.id, row.length)));
    }
    let project = service::uploading_to(state, row.project_id).await?;
    let mut source = PartsSource { state, parts: parts.into_iter(), current: None };
    let stored = service::upload(state, &project, &wanted(row)?, row.filename.as_deref(), &mut source).await?;
    Ok(stored.file.id)
}

/// The stored parts read back one after another, as one body.
struct PartsSource<'a> {
    state: &'a AppState,
    parts: std::vec::IntoIter<PartRow>,
    current: Option<ByteStream>,
}

#[async_trait::async_trait]
impl ChunkSource for PartsSource<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(stream) = &mut self.current {
                match stream.next().await {
                    Some(Ok(chunk)) => return Ok(Some(chunk)),
                    Some(Err(e)) => return Err(Error::unavailable("the blob store is unavailable", e)),
                    None => self.current = None,
                }
            }
            let Some(part) = self.parts.next() else { return Ok(None) };
            let object = self.state.store.get(&BlobKey::parse(&part.storage_key)?, None).await?;
            self.current = Some(object.body);
        }
    }
}
