//! The cleanup removes writes that never finished, once past the grace period: temp files of the
//! filesystem store, incomplete multipart uploads of our layout on S3 (never another
//! application's). On both stores.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use mbk_host::config::StorageConfig;
use mbk_host::jobs::cleanup;
use serde_json::Value;

use crate::helpers::{DbKind, StoreKind, TestApp, s3_config, solo_bucket, store_tests};

store_tests!(unfinished_writes_are_swept_after_the_grace_period);

/// A raw S3 client on the suite's server, to start uploads the way a dying process leaves them.
fn raw_client() -> aws_sdk_s3::Client {
    let s3 = s3_config();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(s3.region))
        .credentials_provider(Credentials::new(s3.access_key, s3.secret_key, None, None, "test"))
        .endpoint_url(s3.endpoint.expect("endpoint"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The keys of the multipart uploads in progress in `bucket`.
async fn uploads_in_progress(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = client.list_multipart_uploads().bucket(bucket).send().await.expect("list uploads");
    listed.uploads().iter().filter_map(|u| u.key().map(str::to_owned)).collect()
}

async fn unfinished_writes_are_swept_after_the_grace_period(store: StoreKind) {
    let _alone = crate::helpers::WHOLE_BUCKET.lock().await;
    let app = TestApp::spawn_with(DbKind::Sqlite, store, |c| {
        if let StorageConfig::S3(s3) = &mut c.storage {
            s3.bucket = solo_bucket();
        }
    })
    .await;
    for left in app.store().list("").await.expect("list") {
        let key = mbk_host::storage::BlobKey::parse(&left.key).expect("key");
        app.store().delete(&key).await.expect("delete what an earlier test left");
    }
    let t = app.project_with_key(Value::Null).await;
    assert_eq!(app.upload("/upload/file", &t.key, "kept.txt", b"kept".to_vec()).await.status(), 201);
    let ours = format!("{}files/{}.bin", t.prefix, uuid::Uuid::now_v7());
    let foreign = format!("another-app/{}.bin", uuid::Uuid::now_v7());
    let client = raw_client();
    match &app.state.config.storage {
        StorageConfig::Filesystem { root } => {
            // A write that died two hours ago, and one that is still going.
            let old = std::fs::File::create(root.join(".tmp/dead-write")).expect("temp file");
            old.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200)).expect("backdate");
            std::fs::write(root.join(".tmp/live-write"), b"half").expect("temp file");
        }
        StorageConfig::S3(_) => {
            for key in [&ours, &foreign] {
                client.create_multipart_upload().bucket(solo_bucket()).key(key).send().await.expect("start upload");
            }
        }
    }

    // Within the grace period (an hour by default) a write may still be in flight: kept.
    let report = cleanup::run(&app.state).await.expect("cleanup");
    match &app.state.config.storage {
        StorageConfig::Filesystem { root } => {
            assert_eq!(report.incomplete_uploads_removed, 1, "{report:?}");
            assert!(!root.join(".tmp/dead-write").exists());
            assert!(root.join(".tmp/live-write").exists(), "younger than the grace period");
        }
        StorageConfig::S3(_) => {
            assert_eq!(report.incomplete_uploads_removed, 0, "{report:?}");
            let left = uploads_in_progress(&client, &solo_bucket()).await;
            assert!(left.contains(&ours) && left.contains(&foreign), "{left:?}");
        }
    }

    // Past it, ours go; another application's upload is never touched.
    let (_, later, _stop) = app.sibling(|c| c.jobs.orphan_grace = Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3 start times have one-second steps
    let report = cleanup::run(&later).await.expect("cleanup");
    assert_eq!(report.incomplete_uploads_removed, 1, "{report:?}");
    match &app.state.config.storage {
        StorageConfig::Filesystem { root } => {
            assert_eq!(std::fs::read_dir(root.join(".tmp")).expect("temp folder").count(), 0);
        }
        StorageConfig::S3(_) => {
            let left = uploads_in_progress(&client, &solo_bucket()).await;
            assert!(!left.contains(&ours), "{left:?}");
            assert!(left.contains(&foreign), "not ours: {left:?}");
            let listed = client.list_multipart_uploads().bucket(solo_bucket()).send().await.expect("list");
            for upload in listed.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                client
                    .abort_multipart_upload()
                    .bucket(solo_bucket())
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .expect("abort");
            }
        }
    }
    // The scan still sees what a row names: the project's file stays.
    assert_eq!((report.objects_scanned, report.orphans_deleted), (1, 0), "{report:?}");
    assert_eq!(app.store().list(&t.prefix).await.expect("list").len(), 1);
}
