//! One variant's part of a render: the specs its settings ask the plugin for ([`plan`]: one, or
//! for `format: "auto"` AVIF, WebP and the JPEG or PNG fallback, all from the group's one
//! decode), and storing what came back ([`store`]) before its row says `ready`.

use super::Retry;
use super::provenance;
use crate::AppState;
use crate::db::files::{self, Made, Provenance, Sibling, Siblings, VariantRow};
use crate::plugins::{Rendered, Spec};
use crate::projects::variant_gravity::FocalPoint;
use crate::projects::{VariantFormat, VariantSpec};
use crate::storage::BlobKey;
use crate::storage::keys::sibling_key;

/// A pending variant and what to render for it.
pub(super) struct Planned {
    pub variant: VariantRow,
    /// Best first; for `auto` the fallback sibling last.
    pub specs: Vec<Spec>,
    /// The hash of its settings' spec (provenance).
    pub spec_hash: String,
    pub auto: bool,
}

/// What `variant` renders under `setting`, for an original that `has_alpha` (maybe) and whose
/// focal point is `focal`.
pub(super) fn plan(variant: VariantRow, setting: &VariantSpec, has_alpha: bool, focal: Option<FocalPoint>) -> Planned {
    let spec = super::to_spec(setting, focal);
    let specs = setting.format.renders(has_alpha).into_iter().map(|format| Spec { format, ..spec.clone() }).collect();
    Planned { variant, specs, spec_hash: provenance::spec_hash(&spec), auto: setting.format == VariantFormat::Auto }
}

/// Stores `rendered` (one per spec of `planned`, in order), then marks the row ready with
/// `made_by`. `Ok(false)`: the row went meanwhile (its file was deleted), and nothing stored is
/// left behind.
pub(super) async fn store(
    state: &AppState,
    planned: &Planned,
    rendered: Vec<Rendered>,
    made_by: &Provenance,
) -> Result<bool, Retry> {
    let own = BlobKey::parse(&planned.variant.storage_key)?;
    let mut keys = Vec::with_capacity(rendered.len());
    let mut siblings = Siblings::new();
    let mut last = None;
    for (spec, out) in planned.specs.iter().zip(rendered) {
        let key = if planned.auto { sibling_key(&own, spec.format.extension()) } else { own.clone() };
        let size = out.bytes.len() as i64;
        state.store.put_bytes(&key, &out.mime, out.bytes.into()).await?;
        siblings.insert(spec.format.as_str().to_owned(), Sibling { key: key.to_string(), size });
        keys.push(key.clone());
        last = Some((key, out.width as i32, out.height as i32, size));
    }
    // A plugin always answers one result per spec: an empty render is none of ours to record.
    let Some((key, width, height, size)) = last else { return Ok(true) };
    let siblings = planned.auto.then_some(&siblings);
    let made = Made { storage_key: key.as_str(), width, height, size, siblings };
    if files::mark_variant_ready(&state.db, planned.variant.id, &made, made_by).await? {
        return Ok(true);
    }
    for key in keys {
        state.store.delete(&key).await?;
    }
    Ok(false)
}
