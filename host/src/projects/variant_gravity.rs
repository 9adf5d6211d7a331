//! A variant's `gravity`: where its `cover` crop is taken. `focal` takes the file's own focal
//! point (`PATCH /files/{id}`), so the spec a plugin gets depends on the file as well.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plugins::Gravity;

/// Where a `cover` crop is taken: the middle; the most salient region (edges, skin tones,
/// saturated colour, like libvips' `attention`); or the file's `focal_point` (the middle while
/// it has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VariantGravity {
    #[default]
    Centre,
    Attention,
    Focal,
}

/// A point of an upright image as fractions of its width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FocalPoint {
    /// 0 (left edge) ..= 1 (right edge).
    #[schema(minimum = 0, maximum = 1, example = 0.3)]
    pub x: f32,
    /// 0 (top edge) ..= 1 (bottom edge).
    #[schema(minimum = 0, maximum = 1, example = 0.4)]
    pub y: f32,
}

impl FocalPoint {
    /// Both coordinates within 0..=1 (NaN is not).
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.x) && (0.0..=1.0).contains(&self.y)
    }
}

impl VariantGravity {
    pub fn is_centre(&self) -> bool {
        *self == VariantGravity::Centre
    }

    /// What the plugin is asked for, for a file whose focal point is `focal`.
    pub fn for_file(self, focal: Option<FocalPoint>) -> Gravity {
        match (self, focal) {
            (VariantGravity::Centre, _) | (VariantGravity::Focal, None) => Gravity::Centre,
            (VariantGravity::Attention, _) => Gravity::Attention,
            (VariantGravity::Focal, Some(FocalPoint { x, y })) => Gravity::Focal { x, y },
        }
    }
}
