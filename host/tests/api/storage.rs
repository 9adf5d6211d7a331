//! The BlobStore contract, on the filesystem and on a real S3 server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mbk_host::storage::fs::FsStore;
use mbk_host::storage::s3::{PART_SIZE, S3Store};
use mbk_host::storage::{BlobKey, BlobStore, ByteRange, ByteStream, StorageError};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::helpers::{StoreKind, pattern, s3_config, store_tests};

store_tests!(
    put_get_head_round_trip,
    range_reads,
    missing_objects_are_not_found,
    delete_is_idempotent,
    list_by_prefix,
    large_uploads_stream_in_parts,
    failed_upload_leaves_nothing,
    presigned_url_is_fetchable,
    keys_cannot_escape,
);

/// A store and a prefix no other test uses.
struct Fixture {
    store: Arc<dyn BlobStore>,
    prefix: String,
    _dir: TempDir,
}

impl Fixture {
    async fn new(kind: StoreKind) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn BlobStore> = match kind {
            StoreKind::Filesystem => {
                Arc::new(FsStore::open(&dir.path().join("blobs"), "http://127.0.0.1:9").await.expect("open"))
            }
            StoreKind::S3 => Arc::new(S3Store::new(&s3_config())),
        };
        Fixture { store, prefix: format!("t-{}/", uuid::Uuid::now_v7()), _dir: dir }
    }

    fn key(&self, rest: &str) -> BlobKey {
        BlobKey::parse(&format!("{}{rest}", self.prefix)).expect("valid key")
    }
}

/// `data` as a stream of `chunk`-sized pieces, as a request body would arrive.
fn chunked(data: Vec<u8>, chunk: usize) -> ByteStream {
    let data = Bytes::from(data);
    let pieces: Vec<std::io::Result<Bytes>> =
        (0..data.len()).step_by(chunk).map(|i| Ok(data.slice(i..(i + chunk).min(data.len())))).collect();
    Box::pin(futures_util::stream::iter(pieces))
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn put_get_head_round_trip(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for (name, len) in [("empty.bin", 0usize), ("one.bin", 1), ("small.bin", 70_000)] {
        let data = pattern(len, 0);
        let key = f.key(name);
        let meta = f.store.put(&key, "application/octet-stream", chunked(data.clone(), 16 * 1024)).await.expect("put");
        assert_eq!(meta.size, len as u64, "{name}");
        assert_eq!(meta.key, key.as_str());
        let back = f.store.get_bytes(&key).await.expect("get");
        assert_eq!(sha256(&back), sha256(&data), "{name}");
        let head = f.store.head(&key).await.expect("head");
        assert_eq!(head.size, len as u64);
        assert!(head.etag.is_some(), "{name} has an ETag");
        assert!(head.last_modified.is_some(), "{name} has a modification time");
    }
    // Overwriting replaces the content.
    let key = f.key("one.bin");
    f.store.put_bytes(&key, "text/plain", Bytes::from_static(b"second")).await.expect("overwrite");
    assert_eq!(f.store.get_bytes(&key).await.expect("get"), Bytes::from_static(b"second"));
}

async fn range_reads(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let data = pattern(1000, 0);
    let key = f.key("r.bin");
    f.store.put_bytes(&key, "application/octet-stream", Bytes::from(data.clone())).await.expect("put");

    for (range, first, last) in [
        (ByteRange::FromTo(0, 99), 0, 99),
        (ByteRange::FromTo(990, 5000), 990, 999),
        (ByteRange::From(500), 500, 999),
        (ByteRange::Suffix(10), 990, 999),
    ] {
        let object = f.store.get(&key, Some(range)).await.expect("ranged get");
        assert_eq!(object.range, Some((first, last)), "{range:?}");
        assert_eq!(object.meta.size, 1000, "full size reported for {range:?}");
        assert_eq!(object.content_length(), last - first + 1);
        let mut body = object.body;
        let mut got = Vec::new();
        while let Some(chunk) = futures_util::TryStreamExt::try_next(&mut body).await.expect("chunk") {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, data[first as usize..=last as usize], "{range:?}");
    }
    match f.store.get(&key, Some(ByteRange::From(1000))).await {
        Err(StorageError::RangeNotSatisfiable { size }) => assert_eq!(size, Some(1000)),
        Err(other) => panic!("expected 416, got {other}"),
        Ok(_) => panic!("expected 416, got an object"),
    }
}

async fn missing_objects_are_not_found(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let key = f.key("absent.bin");
    assert!(matches!(f.store.head(&key).await, Err(StorageError::NotFound(_))));
    assert!(matches!(f.store.get(&key, None).await, Err(StorageError::NotFound(_))));
}

async fn delete_is_idempotent(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let key = f.key("d/x.bin");
    f.store.put_bytes(&key, "application/octet-stream", Bytes::from_static(b"bye")).await.expect("put");
    f.store.delete(&key).await.expect("delete");
    assert!(matches!(f.store.head(&key).await, Err(StorageError::NotFound(_))));
    f.store.delete(&key).await.expect("deleting again succeeds");
    assert!(f.store.list(&f.prefix).await.expect("list").is_empty());
}

async fn list_by_prefix(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for name in ["a/images/original/1.jpg", "a/images/thumb/1.webp", "a/files/2.pdf", "ab/files/3.pdf", "b/x.bin"] {
        f.store.put_bytes(&f.key(name), "application/octet-stream", Bytes::from(name.to_owned())).await.expect("put");
    }
    let keys = |metas: Vec<mbk_host::storage::ObjectMeta>| metas.into_iter().map(|m| m.key).collect::<Vec<_>>();
    let under_a = keys(f.store.list(&format!("{}a/", f.prefix)).await.expect("list"));
    assert_eq!(
        under_a,
        ["a/files/2.pdf", "a/images/original/1.jpg", "a/images/thumb/1.webp"].map(|k| format!("{}{k}", f.prefix))
    );
    let images = keys(f.store.list(&format!("{}a/images/", f.prefix)).await.expect("list"));
    assert_eq!(images.len(), 2);
    let all = f.store.list(&f.prefix).await.expect("list");
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|m| m.size > 0));
    assert!(f.store.list(&format!("{}zzz/", f.prefix)).await.expect("list").is_empty());
}

async fn large_uploads_stream_in_parts(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    // Over two parts, so S3 takes the multipart path with a short last part.
    let data = pattern(2 * PART_SIZE + 123_457, 0);
    let key = f.key("big.bin");
    let meta = f.store.put(&key, "application/octet-stream", chunked(data.clone(), 64 * 1024)).await.expect("put");
    assert_eq!(meta.size, data.len() as u64);
    let back = f.store.get_bytes(&key).await.expect("get");
    assert_eq!(back.len(), data.len());
    assert_eq!(sha256(&back), sha256(&data));
}

async fn failed_upload_leaves_nothing(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for len in [1000usize, PART_SIZE + 1000] {
        let key = f.key(&format!("broken-{len}.bin"));
        let data = Bytes::from(pattern(len, 0));
        let body: ByteStream = Box::pin(futures_util::stream::iter(vec![
            Ok(data),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
        ]));
        let result = f.store.put(&key, "application/octet-stream", body).await;
        assert!(matches!(result, Err(StorageError::Backend(_))), "a cut body fails the put ({len} bytes)");
        assert!(matches!(f.store.head(&key).await, Err(StorageError::NotFound(_))), "nothing under the key ({len})");
    }
    assert!(f.store.list(&f.prefix).await.expect("list").is_empty());
    if kind == StoreKind::Filesystem {
        let tmp = f._dir.path().join("blobs/.tmp");
        assert_eq!(std::fs::read_dir(tmp).expect("tmp dir").count(), 0, "no temp file left behind");
    }
}

async fn presigned_url_is_fetchable(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let key = f.key("signed.bin");
    let data = pattern(4096, 0);
    f.store.put_bytes(&key, "application/octet-stream", Bytes::from(data.clone())).await.expect("put");
    let url = f.store.presigned_get(&key, Duration::from_secs(60)).await.expect("presign");
    match kind {
        StoreKind::Filesystem => assert_eq!(url, None, "the filesystem store serves through the host"),
        StoreKind::S3 => {
            let url = url.expect("S3 presigns");
            assert!(url.contains("X-Amz-Signature="), "{url}");
            let response = reqwest::get(&url).await.expect("fetch presigned URL");
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(response.bytes().await.expect("body").as_ref(), data.as_slice());
            // Tampering with the signature is refused by the server: the URL really is signed.
            let tampered = url.replace(&f.prefix, &f.prefix.to_uppercase());
            assert_eq!(reqwest::get(&tampered).await.expect("fetch").status().as_u16(), 403);
        }
    }
}

async fn keys_cannot_escape(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for bad in ["../escape.bin", "a/../../escape.bin", "/etc/passwd", "a/./b", ".tmp/x"] {
        assert!(matches!(BlobKey::parse(bad), Err(StorageError::InvalidKey(_))), "{bad:?}");
    }
    let url = f.store.public_url(&f.key("p/x.webp"));
    assert!(url.ends_with(&format!("{}p/x.webp", f.prefix)), "{url}");
    if kind == StoreKind::Filesystem {
        assert!(url.starts_with("http://127.0.0.1:9/blobs/"), "{url}");
        // Nothing was written outside the root.
        assert!(!f._dir.path().join("escape.bin").exists());
    }
}
