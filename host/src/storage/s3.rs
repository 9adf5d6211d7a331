//! The S3 backend on aws-sdk-s3: AWS, Garage, MinIO or any S3-protocol server.
//!
//! Uploads of unknown length are buffered one part at a time: a body that ends within the first
//! part is one `PutObject`, a longer one becomes a multipart upload of [`PART_SIZE`] parts, so
//! memory stays at about one part whatever the object size. A failed multipart upload is aborted.

use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tokio_util::io::ReaderStream;

use super::{
    BlobKey, BlobStore, ByteRange, ByteStream, GetObject, ObjectMeta, ObjectPages, StorageError, StorageResult,
};
use crate::config::S3Config;

/// Part size of multipart uploads, and the size above which an upload becomes one.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

pub struct S3Store {
    client: Client,
    bucket: String,
    public_base: String,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Self {
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(&config.access_key, &config.secret_key, None, None, "mbk-config"))
            .force_path_style(config.force_path_style)
            // Garage (and some other servers) reject the SDK's default signed checksum trailer on
            // streaming uploads over plain HTTP; only send checksums when an operation needs one.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let public_base = match (&config.public_url, &config.endpoint) {
            (Some(url), _) => url.clone(),
            (None, Some(endpoint)) if config.force_path_style => format!("{endpoint}/{}", config.bucket),
            (None, Some(endpoint)) => match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{}.{host}", config.bucket),
                None => format!("{endpoint}/{}", config.bucket),
            },
            (None, None) => format!("https://{}.s3.{}.amazonaws.com", config.bucket, config.region),
        };
        Self { client: Client::from_conf(builder.build()), bucket: config.bucket.clone(), public_base }
    }

    async fn put_multipart(
        &self,
        key: &BlobKey,
        content_type: &str,
        first: Bytes,
        mut body: ByteStream,
    ) -> StorageResult<()> {
        let (content_type, disposition) = super::served_as(content_type);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .set_content_disposition(disposition.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify(key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::backend(anyhow!("CreateMultipartUpload returned no upload id")))?
            .to_owned();

        let result: StorageResult<()> = async {
            let mut parts = Vec::new();
            let mut pending = Some(first);
            let mut buf = BytesMut::with_capacity(PART_SIZE);
            loop {
                let part = match pending.take() {
                    Some(part) => part,
                    None => {
                        fill(&mut buf, &mut body).await?;
                        if buf.is_empty() {
                            break;
                        }
                        buf.split().freeze()
                    }
                };
                let number = parts.len() as i32 + 1;
                let uploaded = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(S3Body::from(part))
                    .send()
                    .await
                    .map_err(|e| classify(key, e))?;
                parts.push(
                    CompletedPart::builder().set_e_tag(uploaded.e_tag().map(str::to_owned)).part_number(number).build(),
                );
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| classify(key, e))?;
            Ok(())
        }
        .await;

        if result.is_err() {
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(key = %key, error = %DisplayErrorContext(&e), "could not abort a failed multipart upload");
            }
        }
        result
    }
}

/// Reads from `body` until `buf` holds a full part or the body ends. `body` must be fused: it
/// is polled again after it ended.
async fn fill(buf: &mut BytesMut, body: &mut ByteStream) -> StorageResult<()> {
    while buf.len() < PART_SIZE {
        match body.try_next().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => return Err(StorageError::backend(anyhow::Error::new(e).context("read body"))),
        }
    }
    Ok(())
}

fn classify<E>(key: &BlobKey, e: SdkError<E, HttpResponse>) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match e.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => StorageError::NotFound(key.to_string()),
        Some(416) => StorageError::RangeNotSatisfiable { size: None },
        _ => StorageError::backend(anyhow!("{}", DisplayErrorContext(&e))),
    }
}

fn to_chrono(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// `bytes 0-99/1234` -> `(0, 99, 1234)`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &BlobKey, content_type: &str, body: ByteStream) -> StorageResult<ObjectMeta> {
        let mut body: ByteStream = Box::pin(futures_util::StreamExt::fuse(body));
        let mut buf = BytesMut::with_capacity(64 * 1024);
        fill(&mut buf, &mut body).await?;
        if buf.len() < PART_SIZE {
            // What the bucket's origin serves it as (its public URL): never an active type.
            let (content_type, disposition) = super::served_as(content_type);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .content_type(content_type)
                .set_content_disposition(disposition.map(str::to_owned))
                .body(S3Body::from(buf.freeze()))
                .send()
                .await
                .map_err(|e| classify(key, e))?;
        } else {
            self.put_multipart(key, content_type, buf.freeze(), body).await?;
        }
        self.head(key).await
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> StorageResult<GetObject> {
        let request = self.client.get_object().bucket(&self.bucket).key(key.as_str());
        let request = match range {
            Some(r) => request.range(r.to_header()),
            None => request,
        };
        let output = match request.send().await.map_err(|e| classify(key, e)) {
            Ok(output) => output,
            Err(StorageError::RangeNotSatisfiable { .. }) => {
                let size = self.head(key).await?.size;
                return Err(StorageError::RangeNotSatisfiable { size: Some(size) });
            }
            Err(e) => return Err(e),
        };
        let length = output.content_length().unwrap_or_default().max(0) as u64;
        let (resolved, size) = match output.content_range().and_then(parse_content_range) {
            Some((a, b, total)) if range.is_some() => (Some((a, b)), total),
            _ => (None, length),
        };
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            last_modified: to_chrono(output.last_modified()),
            etag: output.e_tag().map(str::to_owned),
        };
        let body: ByteStream = Box::pin(ReaderStream::with_capacity(output.body.into_async_read(), 64 * 1024));
        Ok(GetObject { meta, range: resolved, body })
    }

    async fn head(&self, key: &BlobKey) -> StorageResult<ObjectMeta> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify(key, e))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: output.content_length().unwrap_or_default().max(0) as u64,
            last_modified: to_chrono(output.last_modified()),
            etag: output.e_tag().map(str::to_owned),
        })
    }

    async fn delete(&self, key: &BlobKey) -> StorageResult<()> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify(key, e))
        {
            Ok(_) | Err(StorageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list_pages<'a>(&'a self, prefix: &'a str) -> ObjectPages<'a> {
        // State: the continuation token of the next page (`Some(None)`: the first), or `None`
        // once the last page was read.
        Box::pin(futures_util::stream::try_unfold(Some(None::<String>), move |state| async move {
            let Some(token) = state else { return Ok(None) };
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| StorageError::backend(anyhow!("{}", DisplayErrorContext(&e))))?;
            let objects: Vec<ObjectMeta> = page
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ObjectMeta {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or_default().max(0) as u64,
                        last_modified: to_chrono(o.last_modified()),
                        etag: o.e_tag().map(str::to_owned),
                    })
                })
                .collect();
            let next = match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => Some(Some(next.to_owned())),
                _ => None,
            };
            Ok(Some((objects, next)))
        }))
    }

    async fn sweep_incomplete(
        &self,
        before: DateTime<Utc>,
        ours: &(dyn for<'k> Fn(&'k str) -> bool + Sync),
    ) -> StorageResult<usize> {
        let mut removed = 0;
        let (mut key_marker, mut upload_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_marker.take())
                .send()
                .await
                .map_err(|e| StorageError::backend(anyhow!("{}", DisplayErrorContext(&e))))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                // No start time known: never abort on a guess (it may be an upload in flight).
                let old = to_chrono(upload.initiated()).is_some_and(|at| at < before);
                if !old || !ours(key) {
                    continue;
                }
                let aborted =
                    self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(id).send().await;
                match aborted {
                    Ok(_) => removed += 1,
                    // Completed or aborted by someone else meanwhile.
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
                    Err(e) => return Err(StorageError::backend(anyhow!("{}", DisplayErrorContext(&e)))),
                }
            }
            match (page.is_truncated().unwrap_or(false), page.next_key_marker(), page.next_upload_id_marker()) {
                (true, Some(k), u) => (key_marker, upload_marker) = (Some(k.to_owned()), u.map(str::to_owned)),
                _ => break,
            }
        }
        Ok(removed)
    }

    fn public_url(&self, key: &BlobKey) -> String {
        format!("{}/{key}", self.public_base)
    }

    async fn presigned_get(&self, key: &BlobKey, ttl: Duration) -> StorageResult<Option<String>> {
        let config = PresigningConfig::expires_in(ttl).map_err(StorageError::backend)?;
        // The answer's type is named in the signed URL, from the key (whose extension never
        // names an active type), whatever the object was stored with (objects stored before
        // active types were refused may carry `text/html`).
        let (content_type, disposition) = super::served_as(crate::files::sniff::mime_for_key(key.as_str()));
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .response_content_type(content_type)
            .set_response_content_disposition(disposition.map(str::to_owned))
            .presigned(config)
            .await
            .map_err(|e| classify(key, e))?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn check(&self) -> StorageResult<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| StorageError::backend(anyhow!("{}", DisplayErrorContext(&e))))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_range() {
        assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0, 99, 1234)));
        assert_eq!(parse_content_range("bytes */1234"), None);
    }
}
