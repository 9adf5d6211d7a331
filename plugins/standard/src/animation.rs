//! Animated GIF and WebP originals stay animated in WebP variants: every frame is decoded (as
//! the whole canvas, composited as a browser shows it), resized by the variant's plan and
//! encoded as a still, and the stills are muxed into an animated WebP with the original's
//! delays and loop count (`webp_mux`). Other formats take the first frame.
//!
//! Frames are streamed: one canvas is decoded at a time and only the encoded frames are kept,
//! so memory does not grow with the animation's length; its cost in time is bounded by the
//! limits (frames, and pixels over all frames).

use std::io::Cursor;

use image::codecs::{gif::GifDecoder, webp::WebPDecoder};
use image::metadata::{LoopCount, Orientation};
use image::{AnimationDecoder, DynamicImage, Frames, ImageDecoder};

use crate::webp_mux::AnimatedWebp;
use crate::{Format, Limits, RenderError, Rendered, Spec, decode, geometry::Plan};

/// A browser shows a GIF frame of 0 or 10 ms for 100 ms (such GIFs were made for that): the
/// WebP says so, or it would play far faster than the GIF did.
const GIF_SHORTEST_MS: u32 = 20;
const GIF_STRETCHED_MS: u32 = 100;

/// The animated renders of `specs`' WebP variants, by spec (`plans` made against `full`).
/// `None` where a spec is not one, and for all of them when `input` is not an animation the
/// limits keep or its frames do not decode after all: those take the first frame.
pub(crate) fn webp_variants(
    input: &[u8],
    limits: Limits,
    full: (u32, u32),
    specs: &[Spec],
    plans: &[Result<Plan, RenderError>],
) -> Vec<Option<Result<Rendered, RenderError>>> {
    let mut variants = vec![None; specs.len()];
    let jobs: Vec<(usize, Job)> = (0..specs.len())
        .filter(|&i| specs[i].format == Format::Webp)
        .filter_map(|i| Some((i, (*plans[i].as_ref().ok()?, specs[i].quality))))
        .collect();
    let Some(animation) = Animation::of(input, limits, full).filter(|_| !jobs.is_empty()) else { return variants };
    let Ok(results) = animation.render(&jobs.iter().map(|(_, job)| *job).collect::<Vec<_>>()) else { return variants };
    for ((i, _), result) in jobs.iter().zip(results) {
        variants[*i] = Some(result);
    }
    variants
}

/// One animated variant: its plan on the full canvas and its WebP quality.
type Job = (Plan, u8);

/// An animated original the limits allow.
struct Animation<'a> {
    input: &'a [u8],
    gif: bool,
    frames: u32,
    /// The upright canvas every frame must come out as.
    canvas: (u32, u32),
}

impl<'a> Animation<'a> {
    /// `input` as an animation: more than one frame, at most `max_frames` of them and at most
    /// `max_pixels` over all of them (how imgproxy bounds an animation's resolution). `None`
    /// for a still or an animation over the limits: its variants take the first frame.
    fn of(input: &'a [u8], limits: Limits, canvas: (u32, u32)) -> Option<Self> {
        let frames = crate::frames::count(input);
        let pixels = u64::from(frames) * u64::from(canvas.0) * u64::from(canvas.1);
        let animated = frames > 1 && frames <= limits.max_frames && pixels <= limits.max_pixels;
        animated.then(|| Animation { input, gif: input.starts_with(b"GIF8"), frames, canvas })
    }

    /// Renders every job from every frame, one animated WebP per job. The outer error means the
    /// frames could not be decoded (the caller falls back to the first frame); inner errors
    /// belong to one job each.
    fn render(&self, jobs: &[Job]) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
        let bad = |e: image::ImageError| RenderError::UnsupportedInput(format!("cannot decode the animation: {e}"));
        let (frames, orientation, icc, plays) = self.decoder().map_err(bad)?;
        let mut muxers: Vec<Result<AnimatedWebp, RenderError>> =
            jobs.iter().map(|(plan, _)| Ok(AnimatedWebp::new(plan.out_width, plan.out_height, plays))).collect();
        for frame in frames.take(self.frames as usize) {
            let frame = frame.map_err(bad)?;
            let (numer, denom) = frame.delay().numer_denom_ms();
            let mut ms = numer.checked_div(denom).unwrap_or(0);
            if self.gif && ms < GIF_SHORTEST_MS {
                ms = GIF_STRETCHED_MS;
            }
            let mut image = DynamicImage::ImageRgba8(frame.into_buffer());
            image.apply_orientation(orientation);
            let mut canvas = decode::into_decoded(image);
            if (canvas.width, canvas.height) != self.canvas {
                return Err(RenderError::Failed(format!(
                    "a frame is {}x{}, the picture {}x{}",
                    canvas.width, canvas.height, self.canvas.0, self.canvas.1
                )));
            }
            if let Some(icc) = &icc {
                decode::to_srgb(&mut canvas, icc);
            }
            for ((plan, quality), muxer) in jobs.iter().zip(&mut muxers) {
                let Ok(animation) = muxer else { continue };
                let still = crate::resize(&canvas, plan).and_then(|pixels| {
                    crate::encode::encode(
                        &pixels,
                        plan.out_width,
                        plan.out_height,
                        canvas.has_alpha,
                        Format::Webp,
                        *quality,
                    )
                });
                let pushed = still.and_then(|still| animation.push(&still, ms).map_err(RenderError::Failed));
                if let Err(e) = pushed {
                    *muxer = Err(e);
                }
            }
        }
        Ok(jobs
            .iter()
            .zip(muxers)
            .map(|((plan, _), muxer)| {
                let bytes = muxer?.finish().map_err(RenderError::Failed)?;
                Ok(Rendered { bytes, mime: "image/webp".into(), width: plan.out_width, height: plan.out_height })
            })
            .collect())
    }

    /// The frames, the orientation and ICC profile they are shown with, and how many times the
    /// animation plays as WebP says it (0: forever).
    fn decoder(&self) -> image::ImageResult<(Frames<'a>, Orientation, Option<Vec<u8>>, u16)> {
        let mut limits = image::Limits::default();
        // A canvas, the frame being composited onto it, and slack: never the whole animation.
        let canvas = u64::from(self.canvas.0) * u64::from(self.canvas.1);
        limits.max_alloc = Some(canvas.saturating_mul(12).saturating_add(16 << 20));
        if self.gif {
            let mut decoder = GifDecoder::new(Cursor::new(self.input))?;
            decoder.set_limits(limits)?;
            let plays = crate::frames::gif_plays(self.input);
            return Ok((decoder.into_frames(), Orientation::NoTransforms, None, plays));
        }
        let mut decoder = WebPDecoder::new(Cursor::new(self.input))?;
        decoder.set_limits(limits)?;
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let icc = decoder.icc_profile().ok().flatten();
        let plays = match decoder.loop_count() {
            LoopCount::Infinite => 0,
            LoopCount::Finite(n) => u16::try_from(n.get()).unwrap_or(u16::MAX),
        };
        Ok((decoder.into_frames(), orientation, icc, plays))
    }
}

#[cfg(test)]
mod tests {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{AnimationDecoder, Delay, Frame, Rgba, RgbaImage};

    use crate::{Fit, Format, Gravity, Limits, Spec, render_analysed, render_filtered};

    const RED: [u8; 3] = [230, 20, 20];
    const GREEN: [u8; 3] = [20, 200, 40];
    const BLUE: [u8; 3] = [30, 40, 220];

    /// A 40x30 GIF, one frame of each colour, each shown `delay_ms`.
    fn gif(colours: &[[u8; 3]], delay_ms: u32, repeat: Repeat) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(repeat).expect("a repeat");
        for &[r, g, b] in colours {
            let canvas = RgbaImage::from_pixel(40, 30, Rgba([r, g, b, 255]));
            let delay = Delay::from_numer_denom_ms(delay_ms, 1);
            encoder.encode_frame(Frame::from_parts(canvas, 0, 0, delay)).expect("a frame");
        }
        drop(encoder);
        out
    }

    fn spec(format: Format) -> Spec {
        Spec {
            name: format.as_str().into(),
            width: Some(20),
            height: None,
            fit: Fit::Contain,
            format,
            quality: 90,
            params: vec![],
            gravity: Gravity::Centre,
        }
    }

    /// The frames of a WebP (one for a still): their centre colour and duration, and the plays.
    fn played(webp: &[u8]) -> (Vec<([u8; 3], u32)>, Option<u32>) {
        let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("a WebP");
        if !decoder.has_animation() {
            let still = image::load_from_memory(webp).expect("a still").to_rgb8();
            return (vec![(still.get_pixel(10, 7).0, 0)], None);
        }
        let plays = match decoder.loop_count() {
            image::metadata::LoopCount::Infinite => 0,
            image::metadata::LoopCount::Finite(n) => n.get(),
        };
        let frames = decoder.into_frames().collect_frames().expect("frames");
        let frames = frames
            .into_iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                assert_eq!(f.buffer().dimensions(), (20, 15));
                let [r, g, b, _] = f.buffer().get_pixel(10, 7).0;
                ([r, g, b], n / d)
            })
            .collect();
        (frames, Some(plays))
    }

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 16)
    }

    #[test]
    fn a_gif_stays_animated_in_webp_and_is_its_first_frame_elsewhere() {
        let input = gif(&[RED, GREEN, BLUE], 70, Repeat::Finite(1));
        let specs = [spec(Format::Webp), spec(Format::Png)];
        let out = render_analysed(&input, Limits::pixels(1 << 20), &specs, false).expect("renders");
        let webp = out.variants[0].as_ref().expect("the WebP");
        assert_eq!((webp.width, webp.height, webp.mime.as_str()), (20, 15, "image/webp"));
        let (frames, plays) = played(&webp.bytes);
        assert_eq!(plays, Some(2), "a GIF repeated once plays twice");
        assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [70, 70, 70]);
        for ((got, _), want) in frames.iter().zip([RED, GREEN, BLUE]) {
            assert!(close(*got, want), "{got:?} vs {want:?}");
        }
        let png = image::load_from_memory(&out.variants[1].as_ref().expect("the PNG").bytes).expect("a PNG");
        assert!(close(png.to_rgb8().get_pixel(10, 7).0, RED), "the first frame");
    }

    #[test]
    fn over_a_limit_an_animation_is_its_first_frame() {
        let input = gif(&[RED, GREEN, BLUE], 70, Repeat::Infinite);
        let specs = [spec(Format::Webp)];
        let webp = |limits: Limits| {
            let out = render_analysed(&input, limits, &specs, false).expect("renders");
            played(&out.variants[0].as_ref().expect("the WebP").bytes)
        };
        assert_eq!(webp(Limits::pixels(1 << 20)).1, Some(0), "forever");
        assert_eq!(webp(Limits::pixels(1 << 20)).0.len(), 3);
        let still = |(frames, plays): (Vec<([u8; 3], u32)>, Option<u32>)| {
            plays.is_none() && frames.len() == 1 && close(frames[0].0, RED)
        };
        assert!(still(webp(Limits { max_pixels: 1 << 20, max_frames: 2 })), "over the frames");
        assert!(still(webp(Limits { max_pixels: 3 * 40 * 30 - 1, max_frames: 500 })), "over the pixels in all");
        assert!(webp(Limits { max_pixels: 3 * 40 * 30, max_frames: 3 }).1.is_some(), "at both limits");
        let filtered = render_filtered(&input, 1 << 20, &specs, |_| Ok(())).expect("renders");
        assert!(still(played(&filtered[0].as_ref().expect("the WebP").bytes)), "a filter sees one frame");
    }

    #[test]
    fn instant_gif_frames_play_as_browsers_play_them() {
        let input = gif(&[RED, GREEN], 0, Repeat::Infinite);
        let out = render_analysed(&input, Limits::pixels(1 << 20), &[spec(Format::Webp)], false).expect("renders");
        let (frames, _) = played(&out.variants[0].as_ref().expect("the WebP").bytes);
        assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), [100, 100]);
    }
}
