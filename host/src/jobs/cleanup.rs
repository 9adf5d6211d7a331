//! `cleanup`: purge projects soft-deleted longer ago than the limit (30 days: blobs first, then
//! rows), remove writes that never finished (filesystem temp files, incomplete S3 multipart
//! uploads), then compare the store with the database page by page and delete objects no row
//! names, if they are older than the grace period (an upload writes its blob before its rows: a
//! young object may be an upload in flight; the recorded parts of resumable uploads are named
//! too). Resumable uploads past their expiry lose their parts and rows. Scheduled daily by the
//! workers; `mbk-host cleanup` runs it by hand.

use std::collections::HashSet;

use chrono::Utc;
use futures_util::TryStreamExt;
use serde::Serialize;
use uuid::Uuid;

use super::Transient;
use crate::AppState;
use crate::db::{files, plugin_runs, projects, tus_uploads, upload_tokens};
use crate::storage::BlobKey;
use crate::storage::keys::project_prefix;

/// What a run removed and what it left for later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Soft-deleted projects purged (rows and blobs).
    pub projects_purged: usize,
    /// Objects deleted with those projects.
    pub project_objects_deleted: usize,
    /// Objects no row named, deleted.
    pub orphans_deleted: usize,
    /// Objects no row named yet, younger than the grace period: left alone this time.
    pub orphans_too_young: usize,
    /// Objects looked at in the orphan scan.
    pub objects_scanned: usize,
    /// Objects outside our key layout (not `{slug}-{uuid}/…` or `plugins/…`): never touched.
    pub foreign_skipped: usize,
    /// Writes that never finished, older than the grace period, removed: temp files of the
    /// filesystem store, incomplete multipart uploads (of our layout) on S3.
    pub incomplete_uploads_removed: usize,
    /// `plugin_runs` rows older than the purge period (the daily budget reads one day; a job's
    /// `plugin_runs` lists them until then), and those of purged projects.
    pub plugin_runs_purged: u64,
    /// Direct-upload tokens that expired over an hour ago, used or not.
    pub upload_tokens_purged: u64,
    /// Resumable uploads past their expiry: the unfinished ones' parts deleted, every one's rows.
    pub tus_uploads_purged: u64,
}

pub async fn run(state: &AppState) -> Result<Report, Transient> {
    let settings = &state.config.jobs;
    let mut report = Report::default();

    let cutoff = Utc::now() - chrono::Duration::from_std(settings.purge_after).unwrap_or(chrono::Duration::MAX);
    for project in projects::deleted_before(&state.db, cutoff).await? {
        let prefix = project_prefix(&project.slug, project.id);
        let mut pages = state.store.list_pages(&prefix);
        while let Some(page) = pages.try_next().await? {
            for object in page {
                state.store.delete(&BlobKey::parse(&object.key)?).await?;
                report.project_objects_deleted += 1;
            }
        }
        if projects::delete_rows(&state.db, project.id).await? {
            report.projects_purged += 1;
        }
        report.plugin_runs_purged += plugin_runs::delete_of_project(&state.db, project.id).await?;
        tracing::info!(project = %project.id, "cleanup: purged a project deleted before {cutoff}");
    }

    report.plugin_runs_purged += plugin_runs::delete_before(&state.db, cutoff).await?;
    report.upload_tokens_purged =
        upload_tokens::purge_expired(&state.db, Utc::now() - chrono::Duration::hours(1)).await?;
    report.tus_uploads_purged = purge_expired_tus_uploads(state).await?;

    let grace = chrono::Duration::from_std(settings.orphan_grace).unwrap_or(chrono::Duration::MAX);
    let young_after = Utc::now() - grace;
    // Writes that never finished (a process died mid-upload) past the same grace.
    // A store that refuses the sweep (a bucket policy without ListBucketMultipartUploads, an
    // S3-compatible server without the API) must not stop the orphan scan that follows.
    report.incomplete_uploads_removed = match state.store.sweep_incomplete(young_after, &is_ours).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cleanup: cannot sweep unfinished writes; going on");
            0
        }
    };

    // Orphans, page by page; the keys the database names are held for one project folder at a
    // time (a folder's objects come together in a listing).
    let mut named: Option<(Option<Uuid>, HashSet<String>)> = None;
    let mut pages = state.store.list_pages("");
    while let Some(page) = pages.try_next().await? {
        for object in page {
            report.objects_scanned += 1;
            // Only our own layout is ours to judge: `{slug}-{uuid}/…` and `plugins/…`. Anything
            // else in the bucket (another application's, a folder marker) is left alone.
            if !is_ours(&object.key) {
                report.foreign_skipped += 1;
                continue;
            }
            let project = project_of(&object.key);
            let keys = match &named {
                Some((loaded, keys)) if *loaded == project => keys,
                _ => {
                    let keys = match project {
                        Some(id) => {
                            let mut keys: HashSet<String> =
                                files::storage_keys(&state.db, id).await?.into_iter().collect();
                            keys.extend(tus_uploads::part_keys_of_project(&state.db, id).await?);
                            keys
                        }
                        None => HashSet::new(),
                    };
                    &named.insert((project, keys)).1
                }
            };
            if keys.contains(&object.key) {
                continue;
            }
            // No age known: never delete on a guess.
            if object.last_modified.is_none_or(|at| at > young_after) {
                report.orphans_too_young += 1;
                continue;
            }
            // Checked again right before deleting: the rows may have appeared since the listing.
            if files::key_named(&state.db, &object.key).await?
                || tus_uploads::part_named(&state.db, &object.key).await?
            {
                continue;
            }
            let Ok(key) = BlobKey::parse(&object.key) else {
                report.foreign_skipped += 1;
                continue;
            };
            state.store.delete(&key).await?;
            report.orphans_deleted += 1;
        }
    }
    tracing::info!(?report, "cleanup finished");
    Ok(report)
}

/// Deletes the parts, then the rows, of resumable uploads past their expiry (a finished one has
/// no parts left: its row goes); how many went.
async fn purge_expired_tus_uploads(state: &AppState) -> Result<u64, Transient> {
    const BATCH: i64 = 100;
    let mut purged = 0;
    loop {
        let expired = tus_uploads::expired(&state.db, Utc::now(), BATCH).await?;
        let batch = expired.len() as i64;
        for upload in expired {
            for part in tus_uploads::parts(&state.db, upload.id).await? {
                state.store.delete(&BlobKey::parse(&part.storage_key)?).await?;
            }
            tus_uploads::delete(&state.db, upload.id).await?;
            purged += 1;
        }
        if batch < BATCH {
            return Ok(purged);
        }
    }
}

/// Whether a key is of our layout: `{slug}-{uuid}/…` or `plugins/…`.
fn is_ours(key: &str) -> bool {
    project_of(key).is_some() || key.starts_with(crate::plugins::registry::PLUGIN_PREFIX)
}

/// The project a key belongs to: its first folder is `{slug}-{project uuid}`.
fn project_of(key: &str) -> Option<Uuid> {
    crate::storage::keys::project_id_of(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_is_read_from_the_first_folder() {
        let id = Uuid::now_v7();
        assert_eq!(project_of(&format!("my-photos-{id}/images/thumb/{id}.webp")), Some(id));
        assert_eq!(project_of(&format!("{id}/x")), Some(id));
        assert_eq!(project_of("stray.bin"), None);
        assert_eq!(project_of("short/x"), None);
        assert_eq!(project_of(&format!("p-{id}")), None, "a key with no folder");
    }
}
