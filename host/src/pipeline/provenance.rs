//! What made a variant, and whether it is still what its settings would make now: the plugin its
//! reference resolves to (by digest) and the spec (by hash). A sync re-renders exactly the
//! variants for which either differs.

use sha2::{Digest, Sha256};

use crate::db::files::VariantRow;
use crate::db::plugins::PluginRow;
use crate::plugins::{Fit, Gravity, Spec};

/// The digest recorded for the builtin rendered natively (not its component).
pub const NATIVE: &str = "native";

/// The version of the spec's shape in [`spec_hash`]: the world's `variant-spec` as of 0.1.0, which
/// 0.2.0 left alike (hashing the newest world's name instead would have made every variant
/// rendered before 0.2.0 look outdated, and the next sync re-render whole libraries).
const SPEC_SHAPE: &str = "mbk:plugin/plugin@0.1.0";

/// A hash of what a render depends on beyond the plugin: size, fit, format, quality, params
/// (sorted, as the settings keep them), the gravity of a crop and the shape of the spec. Not the
/// variant's name. A centred crop adds nothing, so variants made before gravity existed keep
/// their hash.
pub fn spec_hash(spec: &Spec) -> String {
    let mut params = spec.params.clone();
    params.sort();
    let mut text = format!(
        "{SPEC_SHAPE}\n{:?}\n{:?}\n{:?}\n{:?}\n{}\n{}",
        spec.width,
        spec.height,
        spec.fit,
        spec.format,
        spec.quality,
        serde_json::to_string(&params).unwrap_or_default()
    );
    if spec.fit == Fit::Cover && spec.gravity != Gravity::Centre {
        text.push_str(&format!("\ngravity {:?}", spec.gravity));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether ready `variant` was made by `plugin` (what its reference resolves to now) to `spec`.
/// A variant rendered before provenance was recorded (migration 0007: no spec hash, no version)
/// is current when its digest matches: syncs never re-rendered ready variants before, and a
/// first sync after the upgrade must not re-render a whole library.
pub fn is_current(variant: &VariantRow, plugin: &PluginRow, spec: &Spec) -> bool {
    let by_plugin = match variant.plugin_sha256.as_deref() {
        Some(NATIVE) => plugin.builtin && variant.plugin_version.as_deref().is_none_or(|v| v == plugin.version),
        Some(digest) => digest == plugin.sha256,
        None => false,
    };
    by_plugin && variant.spec_hash.as_deref().is_none_or(|hash| hash == spec_hash(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Format;

    fn spec() -> Spec {
        Spec {
            name: "thumb".into(),
            width: Some(150),
            height: Some(150),
            fit: Fit::Cover,
            format: Format::Webp,
            quality: 80,
            params: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            gravity: Gravity::Centre,
        }
    }

    #[test]
    fn the_hash_follows_what_changes_the_pixels_and_nothing_else() {
        let base = spec_hash(&spec());
        assert_eq!(spec_hash(&Spec { name: "renamed".into(), ..spec() }), base, "the name is not the picture");
        let mut reordered = spec();
        reordered.params.reverse();
        assert_eq!(spec_hash(&reordered), base, "params are a map");
        for changed in [
            Spec { width: Some(151), ..spec() },
            Spec { fit: Fit::Contain, ..spec() },
            Spec { format: Format::Png, ..spec() },
            Spec { quality: 81, ..spec() },
            Spec { params: vec![("a".into(), "1".into())], ..spec() },
            Spec { gravity: Gravity::Attention, ..spec() },
            Spec { gravity: Gravity::Focal { x: 0.2, y: 0.5 }, ..spec() },
        ] {
            assert_ne!(spec_hash(&changed), base, "{changed:?}");
        }
        let contain = Spec { fit: Fit::Contain, ..spec() };
        let hash = spec_hash(&contain);
        assert_eq!(spec_hash(&Spec { gravity: Gravity::Attention, ..contain }), hash, "no crop, no gravity");
    }
}
