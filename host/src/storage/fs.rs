//! The filesystem backend: one folder, one file per key.
//!
//! Writes go to `ROOT/.tmp/<uuid>` and are renamed into place once complete and synced, so a
//! reader never sees half an object and a crash leaves only a temp file. Keys are [`BlobKey`]s
//! (no `..`, no dot segments) and the joined path is checked to stay under the root anyway.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::hot::HotObjects;
use super::{
    BlobKey, BlobStore, ByteRange, ByteStream, GetObject, ObjectMeta, ObjectPages, StorageError, StorageResult,
};

const TMP_DIR: &str = ".tmp";

pub struct FsStore {
    root: PathBuf,
    public_base_url: String,
    /// Small objects read a moment ago, answered from memory.
    hot: HotObjects,
}

impl FsStore {
    /// Creates the root (and its temp folder) when missing.
    pub async fn open(root: &Path, public_base_url: &str) -> anyhow::Result<Self> {
        tokio::fs::create_dir_all(root.join(TMP_DIR))
            .await
            .with_context(|| format!("cannot create the blob folder {}", root.display()))?;
        let root = tokio::fs::canonicalize(root).await.with_context(|| format!("cannot resolve {}", root.display()))?;
        let public_base_url = public_base_url.trim_end_matches('/').to_owned();
        Ok(Self { root, public_base_url, hot: HotObjects::default() })
    }

    fn path_of(&self, key: &BlobKey) -> StorageResult<PathBuf> {
        let path = self.root.join(key.as_str());
        // BlobKey already refuses `..` and absolute paths; this keeps the promise local too.
        if !path.starts_with(&self.root) || path == self.root {
            return Err(StorageError::InvalidKey(format!("key {key} escapes the blob root")));
        }
        Ok(path)
    }

    async fn meta_of(&self, key: &BlobKey, path: &Path) -> StorageResult<ObjectMeta> {
        match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => Ok(to_meta(key.as_str().to_owned(), &m)),
            Ok(_) => Err(StorageError::NotFound(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound(key.to_string())),
            Err(e) => Err(StorageError::backend(e)),
        }
    }

    async fn write_temp(&self, tmp: &Path, mut body: ByteStream) -> anyhow::Result<()> {
        let mut file = tokio::fs::File::create(tmp).await.context("create temp file")?;
        while let Some(chunk) = body.try_next().await.context("read body")? {
            file.write_all(&chunk).await.context("write temp file")?;
        }
        file.sync_all().await.context("sync temp file")?;
        Ok(())
    }
}

impl FsStore {
    /// The objects of one folder under `prefix`; its subfolders go on `stack`.
    async fn read_folder(&self, dir: &Path, prefix: &str, stack: &mut Vec<PathBuf>) -> StorageResult<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            // Gone since it was seen (a delete pruned it).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StorageError::backend(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(StorageError::backend)? {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(&self.root) else { continue };
            let Some(rel) = rel.to_str() else { continue };
            if rel.split('/').any(|s| s.starts_with('.')) {
                continue; // the temp folder and anything not written through a BlobKey
            }
            let file_type = entry.file_type().await.map_err(StorageError::backend)?;
            if file_type.is_dir() {
                stack.push(path);
            } else if file_type.is_file() && rel.starts_with(prefix) {
                let m = entry.metadata().await.map_err(StorageError::backend)?;
                out.push(to_meta(rel.to_owned(), &m));
            }
        }
        Ok(out)
    }
}

/// Objects (or ranges) up to this size are read in one go and answered from memory: a variant
/// most often. Small enough that a thousand connections at once hold a quarter GiB at most.
pub const WHOLE_READ_MAX: u64 = 256 << 10;

struct Opened {
    meta: ObjectMeta,
    range: Option<(u64, u64)>,
    contents: Contents,
}

enum Contents {
    Whole(bytes::Bytes),
    /// Positioned at the first byte to send; the length to send.
    Open(std::fs::File, u64),
}

/// Opens the object at `path` (blocking), positioned at the start of `range`, and reads it when
/// it is small.
fn open_for_reading(path: &Path, key: String, range: Option<ByteRange>) -> StorageResult<Opened> {
    use std::io::{Read, Seek};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound(key)),
        Err(e) => return Err(StorageError::backend(e)),
    };
    let m = file.metadata().map_err(StorageError::backend)?;
    if !m.is_file() {
        return Err(StorageError::NotFound(key));
    }
    let meta = to_meta(key, &m);
    let resolved = ByteRange::resolve_in(range, meta.size)?;
    let (first, len) = resolved.map_or((0, meta.size), |(a, b)| (a, b - a + 1));
    if first > 0 {
        file.seek(SeekFrom::Start(first)).map_err(StorageError::backend)?;
    }
    let contents = if len <= WHOLE_READ_MAX {
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut buf).map_err(StorageError::backend)?;
        if (buf.len() as u64) < len {
            // Shorter than its size a moment ago: never answer fewer bytes than Content-Length says.
            return Err(StorageError::backend(anyhow::anyhow!("{} shrank while being read", meta.key)));
        }
        Contents::Whole(buf.into())
    } else {
        Contents::Open(file, len)
    };
    Ok(Opened { meta, range: resolved, contents })
}

/// A small object from [`HotObjects`], cut to `range`.
fn from_memory(meta: ObjectMeta, bytes: bytes::Bytes, range: Option<ByteRange>) -> StorageResult<GetObject> {
    let resolved = ByteRange::resolve_in(range, meta.size)?;
    let bytes = match resolved {
        None => bytes,
        Some((first, last)) => bytes.slice(first as usize..=last as usize),
    };
    Ok(GetObject { meta, range: resolved, body: Box::pin(futures_util::stream::once(async move { Ok(bytes) })) })
}

fn to_meta(key: String, m: &std::fs::Metadata) -> ObjectMeta {
    let modified = m.modified().ok();
    let nanos =
        modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or_default();
    ObjectMeta {
        key,
        size: m.len(),
        last_modified: modified.map(DateTime::<Utc>::from),
        // Keys are never rewritten with other content, so size + mtime identify a version.
        etag: Some(format!("\"{:x}-{:x}\"", m.len(), nanos)),
    }
}

#[async_trait::async_trait]
impl BlobStore for FsStore {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    async fn put(&self, key: &BlobKey, _content_type: &str, body: ByteStream) -> StorageResult<ObjectMeta> {
        let path = self.path_of(key)?;
        let tmp = self.root.join(TMP_DIR).join(uuid::Uuid::now_v7().to_string());
        if let Err(e) = self.write_temp(&tmp, body).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StorageError::Backend(e));
        }
        let placed = async {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.context("create folder")?;
            }
            tokio::fs::rename(&tmp, &path).await.context("rename into place")
        };
        let placed = placed.await;
        self.hot.forget(key.as_str());
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StorageError::Backend(e));
        }
        self.meta_of(key, &path).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> StorageResult<GetObject> {
        let path = self.path_of(key)?;
        if let Some((meta, bytes)) = self.hot.get(key.as_str()) {
            return from_memory(meta, bytes, range);
        }
        let name = key.as_str().to_owned();
        let generation = self.hot.generation();
        // One trip to the blocking pool opens, stats and, for a small object (a variant, most
        // often), reads it whole: tokio's file reads would take a trip per chunk.
        let opened = tokio::task::spawn_blocking(move || open_for_reading(&path, name, range))
            .await
            .map_err(|e| StorageError::backend(anyhow::anyhow!("the read task failed: {e}")))??;
        let body: ByteStream = match opened.contents {
            Contents::Whole(bytes) => {
                if range.is_none() {
                    self.hot.put(opened.meta.clone(), bytes.clone(), generation);
                }
                Box::pin(futures_util::stream::once(async move { Ok(bytes) }))
            }
            Contents::Open(file, len) => {
                Box::pin(ReaderStream::with_capacity(tokio::fs::File::from_std(file).take(len), 64 * 1024))
            }
        };
        Ok(GetObject { meta: opened.meta, range: opened.range, body })
    }

    async fn head(&self, key: &BlobKey) -> StorageResult<ObjectMeta> {
        let path = self.path_of(key)?;
        if let Some((meta, _)) = self.hot.get(key.as_str()) {
            return Ok(meta);
        }
        self.meta_of(key, &path).await
    }

    async fn delete(&self, key: &BlobKey) -> StorageResult<()> {
        let path = self.path_of(key)?;
        let removed = tokio::fs::remove_file(&path).await;
        self.hot.forget(key.as_str());
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::backend(e)),
        }
        // Prune folders left empty, up to the root, so a deleted project leaves no trace.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || tokio::fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    fn list_pages<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a> {
        // Start from the deepest folder the prefix names, then filter by the full prefix.
        let start_rel = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        if start_rel.split('/').any(|s| s == ".." || s.starts_with('.')) && !start_rel.is_empty() {
            let refused = StorageError::InvalidKey(format!("invalid prefix {prefix:?}"));
            return Box::pin(futures_util::stream::once(async move { Err(refused) }));
        }
        // Depth first, one folder per page: only the folders still to visit are held.
        let stack = vec![self.root.join(start_rel)];
        Box::pin(futures_util::stream::try_unfold(stack, move |mut stack| async move {
            while let Some(dir) = stack.pop() {
                let page = self.read_folder(&dir, prefix, &mut stack).await?;
                if !page.is_empty() {
                    return Ok(Some((page, stack)));
                }
            }
            Ok(None)
        }))
    }

    async fn sweep_incomplete(
        &self,
        before: DateTime<Utc>,
        _ours: &(dyn for<'k> Fn(&'k str) -> bool + Sync),
    ) -> StorageResult<usize> {
        // The temp folder is this store's alone: a file there is a write that never finished
        // (the process died between create and rename).
        let mut entries = tokio::fs::read_dir(self.root.join(TMP_DIR)).await.map_err(StorageError::backend)?;
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(StorageError::backend)? {
            let m = entry.metadata().await.map_err(StorageError::backend)?;
            let modified = m.modified().ok().map(DateTime::<Utc>::from);
            if m.is_file() && modified.is_some_and(|at| at < before) {
                match tokio::fs::remove_file(entry.path()).await {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::backend(e)),
                }
            }
        }
        Ok(removed)
    }

    fn public_url(&self, key: &BlobKey) -> String {
        format!("{}/blobs/{key}", self.public_base_url)
    }

    async fn presigned_get(&self, _key: &BlobKey, _ttl: Duration) -> StorageResult<Option<String>> {
        Ok(None)
    }

    async fn check(&self) -> StorageResult<()> {
        let m = tokio::fs::metadata(self.root.join(TMP_DIR)).await.map_err(StorageError::backend)?;
        if m.permissions().readonly() {
            return Err(StorageError::backend(anyhow::anyhow!("{} is read-only", self.root.display())));
        }
        Ok(())
    }
}
