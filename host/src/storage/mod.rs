//! Blob storage: the [`BlobStore`] trait and its two backends, the local filesystem (embedded
//! default) and S3-compatible object storage. Bodies stream in and out so that memory stays
//! bounded whatever the object size.

pub mod fs;
mod hot;
pub mod keys;
pub mod s3;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

pub use keys::BlobKey;

use crate::config::StorageConfig;

/// A body in flight: chunks of bytes, or the I/O error that cut it short.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidKey(String),
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: Option<u64> },
    /// The backend failed or could not be reached. Details are for logs only.
    #[error("blob store failure: {0:#}")]
    Backend(#[source] anyhow::Error),
}

impl StorageError {
    pub fn backend(e: impl Into<anyhow::Error>) -> Self {
        Self::Backend(e.into())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A listing page by page (an S3 `ListObjectsV2` answer, or one folder of the filesystem), so
/// memory holds one page however large the store.
pub type ObjectPages<'a> = Pin<Box<dyn Stream<Item = StorageResult<Vec<ObjectMeta>>> + Send + 'a>>;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
    /// Quoted, as in an HTTP `ETag` header.
    pub etag: Option<String>,
}

/// A byte range as an HTTP client asks for it (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first..=last`; `last` may lie past the end (it is clamped).
    FromTo(u64, u64),
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a single-range `Range` header value. `None` when it is not one we serve (then the
    /// whole object is the answer, as RFC 9110 allows).
    pub fn parse_header(value: &str) -> Option<Self> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        match (first.is_empty(), last.is_empty()) {
            (true, false) => last.parse().ok().map(ByteRange::Suffix),
            (false, true) => first.parse().ok().map(ByteRange::From),
            (false, false) => {
                let (a, b) = (first.parse().ok()?, last.parse().ok()?);
                (a <= b).then_some(ByteRange::FromTo(a, b))
            }
            (true, true) => None,
        }
    }

    /// The inclusive `(first, last)` offsets within an object of `size` bytes, or `None` when
    /// nothing of the object is in the range (416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        match self {
            ByteRange::FromTo(a, b) if a < size => Some((a, b.min(size - 1))),
            ByteRange::From(a) if a < size => Some((a, size - 1)),
            ByteRange::Suffix(n) if n > 0 => Some((size.saturating_sub(n), size - 1)),
            _ => None,
        }
    }

    /// `range` (none: the whole object) within an object of `size` bytes: its offsets, or the
    /// 416 when nothing of the object is in it.
    pub fn resolve_in(range: Option<ByteRange>, size: u64) -> StorageResult<Option<(u64, u64)>> {
        range.map(|r| r.resolve(size).ok_or(StorageError::RangeNotSatisfiable { size: Some(size) })).transpose()
    }

    /// The `Range` header S3 understands for this range.
    pub fn to_header(self) -> String {
        match self {
            ByteRange::FromTo(a, b) => format!("bytes={a}-{b}"),
            ByteRange::From(a) => format!("bytes={a}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// An object being read.
pub struct GetObject {
    /// Metadata of the whole object (its full size).
    pub meta: ObjectMeta,
    /// The inclusive byte range being returned, when a range was asked for.
    pub range: Option<(u64, u64)>,
    pub body: ByteStream,
}

impl GetObject {
    /// Bytes in `body`.
    pub fn content_length(&self) -> u64 {
        match self.range {
            Some((a, b)) => b - a + 1,
            None => self.meta.size,
        }
    }
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `filesystem` or `s3`.
    fn backend(&self) -> &'static str;

    /// Stores `body` under `key`, replacing any object there. Readers never see a half-written
    /// object. On error nothing is left under `key`.
    async fn put(&self, key: &BlobKey, content_type: &str, body: ByteStream) -> StorageResult<ObjectMeta>;

    /// Reads an object, or the part of it `range` names.
    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> StorageResult<GetObject>;

    async fn head(&self, key: &BlobKey) -> StorageResult<ObjectMeta>;

    /// Removes an object. Removing a missing object succeeds (deletes are retried).
    async fn delete(&self, key: &BlobKey) -> StorageResult<()>;

    /// Every object whose key starts with `prefix`, sorted by key (project deletion, tests).
    /// Held in memory: a whole store's listing goes through [`BlobStore::list_pages`].
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        use futures_util::TryStreamExt;
        let mut out: Vec<ObjectMeta> = self.list_pages(prefix).try_concat().await?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Every object whose key starts with `prefix`, one page at a time (the orphan scan). Keys of
    /// one folder come together (S3 lists in key order; the filesystem walks depth first).
    fn list_pages<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a>;

    /// Removes what interrupted writes left behind, begun before `before`: temp files of the
    /// filesystem backend, incomplete multipart uploads on S3 (whose parts a bucket keeps, and
    /// bills, until aborted). On S3 only uploads whose key `ours` accepts are touched: the
    /// bucket may be shared. Returns how many went.
    async fn sweep_incomplete(
        &self,
        before: DateTime<Utc>,
        ours: &(dyn for<'k> Fn(&'k str) -> bool + Sync),
    ) -> StorageResult<usize>;

    /// The URL a client fetches the object from without credentials.
    fn public_url(&self, key: &BlobKey) -> String;

    /// A time-limited URL to the object; `None` when the backend serves through the host instead.
    async fn presigned_get(&self, key: &BlobKey, ttl: Duration) -> StorageResult<Option<String>>;

    /// Whether the store answers (for `/readyz`).
    async fn check(&self) -> StorageResult<()>;

    /// Convenience for small, already-buffered bodies.
    async fn put_bytes(&self, key: &BlobKey, content_type: &str, bytes: Bytes) -> StorageResult<ObjectMeta> {
        let body: ByteStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
        self.put(key, content_type, body).await
    }

    /// Reads a whole object into memory (for small objects and tests).
    async fn get_bytes(&self, key: &BlobKey) -> StorageResult<Bytes> {
        use futures_util::TryStreamExt;
        let object = self.get(key, None).await?;
        let mut buf = bytes::BytesMut::with_capacity(object.meta.size.min(64 << 20) as usize);
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await.map_err(StorageError::backend)? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// Whether a browser opening a body of type `mime` would run it as a page or a script: HTML,
/// XHTML, SVG and every other XML (XSLT, XML with scripts), JavaScript, and the old plug-in
/// types. Such uploads must never be served inline from a store's origin (stored XSS).
pub fn is_active_type(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else { return false };
    sub == "html"
        || sub == "xml"
        || sub.ends_with("+xml")
        || sub.contains("javascript")
        || sub.contains("ecmascript")
        || (kind == "text" && matches!(sub, "xsl" | "vtt" | "cache-manifest"))
        || matches!(sub, "x-shockwave-flash" | "x-mixed-replace" | "x-silverlight-app")
}

/// How an object of type `mime` is stored and served, on every store: an active type (see
/// [`is_active_type`]) as `application/octet-stream`, and every `application/octet-stream` with
/// `Content-Disposition: attachment`, so a browser downloads it instead of rendering it. The
/// database keeps the sniffed type (the File's `mime_type`).
pub fn served_as(mime: &str) -> (&str, Option<&'static str>) {
    const OCTET: &str = "application/octet-stream";
    if is_active_type(mime) || mime.trim().eq_ignore_ascii_case(OCTET) {
        (OCTET, Some("attachment"))
    } else {
        (mime, None)
    }
}

/// Opens the store the configuration names.
pub async fn open(config: &StorageConfig, public_base_url: &str) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match config {
        StorageConfig::Filesystem { root } => Arc::new(fs::FsStore::open(root, public_base_url).await?),
        StorageConfig::S3(s3) => Arc::new(s3::S3Store::new(s3)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_types_are_served_as_downloads() {
        for active in [
            "text/html",
            "text/html; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/rss+xml",
            "text/javascript",
            "application/javascript",
            "application/x-javascript",
            "text/ecmascript",
            "text/xsl",
            "application/x-shockwave-flash",
            "TEXT/HTML",
            "application/octet-stream",
        ] {
            assert_eq!(served_as(active), ("application/octet-stream", Some("attachment")), "{active}");
        }
        for passive in [
            "image/webp",
            "image/jpeg",
            "text/plain; charset=utf-8",
            "application/json",
            "application/pdf",
            "video/mp4",
        ] {
            assert_eq!(served_as(passive), (passive, None), "{passive}");
        }
    }

    #[test]
    fn parses_single_ranges() {
        assert_eq!(ByteRange::parse_header("bytes=0-99"), Some(ByteRange::FromTo(0, 99)));
        assert_eq!(ByteRange::parse_header("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(ByteRange::parse_header("bytes=-5"), Some(ByteRange::Suffix(5)));
        for ignored in ["bytes=5-1", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=a-b", "bytes=--1"] {
            assert_eq!(ByteRange::parse_header(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn resolves_against_the_object_size() {
        assert_eq!(ByteRange::FromTo(0, 99).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::FromTo(10, 20).resolve(10), None);
        assert_eq!(ByteRange::From(9).resolve(10), Some((9, 9)));
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
    }
}
