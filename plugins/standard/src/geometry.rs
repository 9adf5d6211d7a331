//! Output sizes and crops for each fit mode.

use crate::Fit;

/// What to do with a `src_w` x `src_h` source to honour a spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub out_width: u32,
    pub out_height: u32,
    /// The region of the source to resize: `(left, top, width, height)` in source pixels.
    pub crop: (f64, f64, f64, f64),
}

fn at_least_one(x: f64) -> u32 {
    (x.round() as u32).max(1)
}

pub fn plan(src_w: u32, src_h: u32, width: Option<u32>, height: Option<u32>, fit: Fit) -> Result<Plan, String> {
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let whole = (0.0, 0.0, sw, sh);
    match fit {
        Fit::Contain => {
            // Fit inside the box, ratio kept, never upscaled; a missing side is unbounded.
            let sx = width.map(|w| f64::from(w) / sw);
            let sy = height.map(|h| f64::from(h) / sh);
            let scale = match (sx, sy) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) => x,
                (None, Some(y)) => y,
                (None, None) => return Err("contain needs a width or a height".into()),
            }
            .min(1.0);
            let out_width = at_least_one(sw * scale).min(width.unwrap_or(u32::MAX));
            let out_height = at_least_one(sh * scale).min(height.unwrap_or(u32::MAX));
            Ok(Plan { out_width, out_height, crop: whole })
        }
        Fit::Cover => {
            let (Some(w), Some(h)) = (width, height) else { return Err("cover needs both width and height".into()) };
            // The largest centred region of the source with the target's aspect ratio.
            let target = f64::from(w) / f64::from(h);
            let (cw, ch) = if sw / sh > target { (sh * target, sh) } else { (sw, sw / target) };
            Ok(Plan { out_width: w, out_height: h, crop: ((sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch) })
        }
        Fit::Stretch => {
            let (Some(w), Some(h)) = (width, height) else { return Err("stretch needs both width and height".into()) };
            Ok(Plan { out_width: w, out_height: h, crop: whole })
        }
    }
}

/// `crop` (of a `full` picture) moved so that its centre is at `centre` (fractions of the
/// picture), as near as the picture's edges allow: its size never changes.
pub fn centred_on(crop: (f64, f64, f64, f64), full: (u32, u32), centre: (f64, f64)) -> (f64, f64, f64, f64) {
    let (_, _, w, h) = crop;
    let (fw, fh) = (f64::from(full.0), f64::from(full.1));
    let left = (centre.0 * fw - w / 2.0).clamp(0.0, (fw - w).max(0.0));
    let top = (centre.1 * fh - h / 2.0).clamp(0.0, (fh - h).max(0.0));
    (left, top, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contain_fits_inside_keeps_ratio_never_upscales() {
        let p = plan(1600, 1200, Some(800), None, Fit::Contain).expect("plan");
        assert_eq!((p.out_width, p.out_height), (800, 600));
        let p = plan(1600, 1200, Some(150), Some(150), Fit::Contain).expect("plan");
        assert_eq!((p.out_width, p.out_height), (150, 113));
        let p = plan(400, 300, Some(1600), None, Fit::Contain).expect("plan");
        assert_eq!((p.out_width, p.out_height), (400, 300), "never upscaled");
        let p = plan(1203, 1600, None, Some(800), Fit::Contain).expect("plan");
        assert_eq!((p.out_width, p.out_height), (602, 800));
        let p = plan(10_000, 1, Some(100), None, Fit::Contain).expect("plan");
        assert_eq!((p.out_width, p.out_height), (100, 1), "never zero");
    }

    #[test]
    fn cover_is_exact_and_centred() {
        let p = plan(1600, 1200, Some(150), Some(150), Fit::Cover).expect("plan");
        assert_eq!((p.out_width, p.out_height), (150, 150));
        assert_eq!(p.crop, (200.0, 0.0, 1200.0, 1200.0));
        let p = plan(100, 400, Some(200), Some(100), Fit::Cover).expect("plan");
        assert_eq!(p.crop, (0.0, 175.0, 100.0, 50.0));
        assert!(plan(100, 100, Some(10), None, Fit::Cover).is_err());
    }

    #[test]
    fn a_crop_moves_towards_its_centre_but_stays_inside() {
        let crop = plan(1600, 1200, Some(150), Some(150), Fit::Cover).expect("plan").crop;
        assert_eq!(centred_on(crop, (1600, 1200), (0.5, 0.5)), crop, "the middle is the centre crop");
        assert_eq!(centred_on(crop, (1600, 1200), (0.25, 0.5)), (0.0, 0.0, 1200.0, 1200.0), "clamped at the left");
        assert_eq!(centred_on(crop, (1600, 1200), (0.6, 0.0)), (360.0, 0.0, 1200.0, 1200.0));
        assert_eq!(centred_on(crop, (1600, 1200), (1.0, 1.0)), (400.0, 0.0, 1200.0, 1200.0));
    }

    #[test]
    fn stretch_is_exact() {
        let p = plan(1600, 1200, Some(100), Some(400), Fit::Stretch).expect("plan");
        assert_eq!((p.out_width, p.out_height, p.crop), (100, 400, (0.0, 0.0, 1600.0, 1200.0)));
        assert!(plan(1, 1, None, Some(5), Fit::Stretch).is_err());
    }
}
