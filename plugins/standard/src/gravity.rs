//! Where a `cover` crop is taken: the middle, a point the user chose, or the most salient part of
//! the picture (`attention`).
//!
//! Attention follows the idea of libvips' `vips_smartcrop` (re-implemented here, not copied):
//! on a small copy of the picture in CIE Lab, a pixel scores for its edges (Sobel on lightness),
//! for skin tones and for saturated colour; the crop is the window of the crop's size holding
//! the most score. Summed over the whole window (an integral image) rather than aimed at one
//! blurred maximum, so a subject is kept whole where the window can hold it.

use crate::decode::Decoded;
use crate::geometry::Plan;

/// Where a `cover` crop is taken.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Gravity {
    /// The middle.
    #[default]
    Centre,
    /// The most salient region.
    Attention,
    /// Centred on this point (fractions of the upright picture's width and height) as far as
    /// the picture allows.
    Focal { x: f32, y: f32 },
}

impl Gravity {
    /// The centre of the crop, as fractions of the picture. `salient` is the picture's saliency
    /// (measured once per decode, for `attention`).
    pub fn centre(self, salient: Option<&Saliency>, plan: &Plan, full: (u32, u32)) -> Result<(f64, f64), String> {
        match self {
            Gravity::Centre => Ok((0.5, 0.5)),
            Gravity::Focal { x, y } => {
                let inside = |v: f32| (0.0..=1.0).contains(&v);
                if !inside(x) || !inside(y) {
                    return Err(format!("the focal point ({x}, {y}) is not within 0..=1"));
                }
                Ok((f64::from(x), f64::from(y)))
            }
            Gravity::Attention => {
                let (_, _, w, h) = plan.crop;
                let window = (w / f64::from(full.0), h / f64::from(full.1));
                Ok(salient.map_or((0.5, 0.5), |s| s.best_centre(window)))
            }
        }
    }
}

/// The longer side of the copy saliency is measured on.
const MAP_SIDE: u32 = 128;

/// A picture's saliency: a score per pixel of a small copy of it.
pub struct Saliency {
    width: usize,
    height: usize,
    /// Row-major, `width * height`.
    score: Vec<f64>,
}

impl Saliency {
    pub fn of(source: &Decoded) -> Saliency {
        let (width, height, rgba) = crate::analysis::shrunk(source, MAP_SIDE);
        let (width, height) = (width as usize, height as usize);
        let lab: Vec<[f64; 3]> = rgba.chunks_exact(4).map(|p| lab([p[0], p[1], p[2]])).collect();
        let lightness = |x: usize, y: usize| lab[y.min(height - 1) * width + x.min(width - 1)][0];
        let mut score = vec![0.0; width * height];
        for y in 0..height {
            for x in 0..width {
                let (l, t, r, b) = (x.saturating_sub(1), y.saturating_sub(1), x + 1, y + 1);
                let gx = lightness(r, t) + 2.0 * lightness(r, y) + lightness(r, b)
                    - lightness(l, t)
                    - 2.0 * lightness(l, y)
                    - lightness(l, b);
                let gy = lightness(l, b) + 2.0 * lightness(x, b) + lightness(r, b)
                    - lightness(l, t)
                    - 2.0 * lightness(x, t)
                    - lightness(r, t);
                let [lum, a, bb] = lab[y * width + x];
                let skin = (3.0..=22.0).contains(&a) && (4.0..=31.0).contains(&bb) && lum >= 15.0;
                let saturated = (a * a + bb * bb).sqrt() > 60.0;
                let opacity = f64::from(rgba[(y * width + x) * 4 + 3]) / 255.0;
                let strength = (gx.abs() + gy.abs()).min(255.0)
                    + if skin { 64.0 } else { 0.0 }
                    + if saturated { 64.0 } else { 0.0 };
                score[y * width + x] = strength * opacity;
            }
        }
        Saliency { width, height, score }
    }

    /// The centre (fractions of the picture) of the window `window` (its size, as fractions)
    /// holding the most score; of the best windows, the one nearest the middle.
    pub fn best_centre(&self, window: (f64, f64)) -> (f64, f64) {
        let (w, h) = (self.width, self.height);
        let ww = ((window.0 * w as f64).round() as usize).clamp(1, w);
        let wh = ((window.1 * h as f64).round() as usize).clamp(1, h);
        // sums[(y) * (w + 1) + x]: the score above and left of (x, y).
        let mut sums = vec![0.0; (w + 1) * (h + 1)];
        for y in 0..h {
            for x in 0..w {
                sums[(y + 1) * (w + 1) + x + 1] =
                    self.score[y * w + x] + sums[y * (w + 1) + x + 1] + sums[(y + 1) * (w + 1) + x]
                        - sums[y * (w + 1) + x];
            }
        }
        let total = |x: usize, y: usize| {
            sums[(y + wh) * (w + 1) + x + ww] - sums[y * (w + 1) + x + ww] - sums[(y + wh) * (w + 1) + x]
                + sums[y * (w + 1) + x]
        };
        let middle = ((w - ww) as f64 / 2.0, (h - wh) as f64 / 2.0);
        let off_middle = |x: usize, y: usize| (x as f64 - middle.0).abs() + (y as f64 - middle.1).abs();
        let mut best = (0, 0, 0.0);
        for y in 0..=h - wh {
            for x in 0..=w - ww {
                let here = total(x, y);
                let tolerance = best.2 * 1e-9;
                let better = here > best.2 + tolerance
                    || (here >= best.2 - tolerance && off_middle(x, y) < off_middle(best.0, best.1));
                if better {
                    best = (x, y, here);
                }
            }
        }
        if best.2 <= 0.0 {
            return (0.5, 0.5); // nothing stands out
        }
        // The best window may hold its subject at an edge: centred on the window's centre of
        // score instead, while that keeps nearly all of it.
        let (x0, y0) = (best.0, best.1);
        let (mut mx, mut my) = (0.0, 0.0);
        for y in y0..y0 + wh {
            for x in x0..x0 + ww {
                mx += self.score[y * w + x] * (x as f64 + 0.5);
                my += self.score[y * w + x] * (y as f64 + 0.5);
            }
        }
        let (mx, my) = (mx / best.2, my / best.2);
        let place = |c: f64, size: usize, side: usize| {
            (c - size as f64 / 2.0).round().clamp(0.0, (side - size) as f64) as usize
        };
        let (x1, y1) = (place(mx, ww, w), place(my, wh, h));
        let (x, y) = if total(x1, y1) >= 0.95 * best.2 { (x1, y1) } else { (x0, y0) };
        ((x as f64 + ww as f64 / 2.0) / w as f64, (y as f64 + wh as f64 / 2.0) / h as f64)
    }
}

/// sRGB to CIE L*a*b* (D65).
fn lab(rgb: [u8; 3]) -> [f64; 3] {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    let (r, g, b) = (linear(rgb[0]), linear(rgb[1]), linear(rgb[2]));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| if t > 0.008856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth grey gradient `width` x `height` with a red-and-white checker square of `side`
    /// at `(left, top)`.
    fn picture(width: u32, height: u32, (left, top, side): (u32, u32, u32)) -> Decoded {
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                let inside = (left..left + side).contains(&x) && (top..top + side).contains(&y);
                let grey = (100 + x * 40 / width) as u8;
                pixels.extend_from_slice(&if !inside {
                    [grey, grey, grey]
                } else if (x / 8 + y / 8) % 2 == 0 {
                    [220, 20, 30]
                } else {
                    [255, 255, 255]
                });
            }
        }
        Decoded { width, height, pixels, has_alpha: false }
    }

    #[test]
    fn attention_finds_an_off_centre_subject() {
        let source = picture(1200, 400, (80, 150, 100));
        let (x, y) = Saliency::of(&source).best_centre((400.0 / 1200.0, 1.0));
        // The 400-wide window must hold 80..180: its centre at most 280 px from the left (the
        // subject is nearer the left edge than half a window, so the crop starts there).
        assert!(x * 1200.0 <= 280.0, "centre at {x}");
        assert!((y - 0.5).abs() < 1e-9, "the window is as tall as the picture");
    }

    #[test]
    fn a_flat_picture_keeps_the_middle() {
        let flat = Decoded { width: 300, height: 100, pixels: vec![90; 300 * 100 * 3], has_alpha: false };
        assert_eq!(Saliency::of(&flat).best_centre((1.0 / 3.0, 1.0)), (0.5, 0.5));
    }

    #[test]
    fn a_focal_point_outside_the_picture_is_refused() {
        let plan = crate::geometry::plan(100, 100, Some(10), Some(10), crate::Fit::Cover).expect("plan");
        assert!(Gravity::Focal { x: 1.5, y: 0.5 }.centre(None, &plan, (100, 100)).is_err());
        assert!(Gravity::Focal { x: f32::NAN, y: 0.5 }.centre(None, &plan, (100, 100)).is_err());
        assert_eq!(Gravity::Focal { x: 0.25, y: 1.0 }.centre(None, &plan, (100, 100)), Ok((0.25, 1.0)));
    }
}
