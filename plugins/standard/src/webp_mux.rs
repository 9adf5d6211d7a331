//! Animated WebP out of still WebP frames: the WebP container's extended layout (`RIFF` `WEBP`,
//! `VP8X` with the animation flag, `ANIM`, then one `ANMF` per frame), each frame's bitstream
//! (`VP8 ` or `VP8L`, and its `ALPH`) taken as the still encoder wrote it.
//!
//! No pure-Rust encoder writes animations (libwebp's `WebPAnimEncoder` is C, and the frames are
//! encoded by whichever still encoder the build uses, the host's native one inside wasm), and the
//! container is simple enough to write here: RFC 9649 §2.7.

/// The largest value of the container's 24-bit fields (sizes minus one, durations).
const U24_MAX: u32 = (1 << 24) - 1;

/// An animation being assembled: frames that each cover the whole canvas.
pub struct AnimatedWebp {
    width: u32,
    height: u32,
    loops: u16,
    alpha: bool,
    /// The `ANMF` chunks so far.
    frames: Vec<u8>,
    count: u32,
}

impl AnimatedWebp {
    /// A `width` x `height` canvas played `loops` times (0: forever).
    pub fn new(width: u32, height: u32, loops: u16) -> Self {
        Self { width, height, loops, alpha: false, frames: Vec::new(), count: 0 }
    }

    /// Adds `still` (a WebP file of the canvas's size) as the next frame, shown `duration_ms`
    /// (clamped to the container's 24 bits). Frames replace the canvas: no blending, no disposal.
    pub fn push(&mut self, still: &[u8], duration_ms: u32) -> Result<(), String> {
        let mut alpha = None;
        let mut bitstream = None;
        for (id, chunk) in chunks(still)? {
            match id {
                b"ALPH" => alpha = Some(chunk),
                b"VP8 " | b"VP8L" => bitstream = Some((id, chunk)),
                _ => {} // VP8X, ICCP, EXIF, XMP: nothing a frame carries
            }
        }
        let (id, data) = bitstream.ok_or("the still WebP has no VP8 or VP8L bitstream")?;
        // A lossless bitstream says in its header whether it uses alpha (bit 28 after the 0x2f).
        let lossless_alpha = id == b"VP8L" && data.get(1..5).is_some_and(|h| h[3] & 0x10 != 0);
        self.alpha |= alpha.is_some() || lossless_alpha;

        let mut payload = Vec::with_capacity(16 + data.len() + alpha.map_or(0, |a| a.len() + 9) + 9);
        put_u24(&mut payload, 0); // x / 2
        put_u24(&mut payload, 0); // y / 2
        put_u24(&mut payload, self.width - 1);
        put_u24(&mut payload, self.height - 1);
        put_u24(&mut payload, duration_ms.min(U24_MAX));
        payload.push(0b10); // do not blend with the previous frame; do not dispose
        if let (Some(alpha), b"VP8 ") = (alpha, id) {
            put_chunk(&mut payload, b"ALPH", alpha);
        }
        put_chunk(&mut payload, id, data);
        put_chunk(&mut self.frames, b"ANMF", &payload);
        self.count += 1;
        Ok(())
    }

    /// The animated WebP file; an error for an animation without a frame or over WebP's limits.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        if self.count == 0 {
            return Err("an animation needs at least one frame".into());
        }
        if !(1..=U24_MAX + 1).contains(&self.width) || !(1..=U24_MAX + 1).contains(&self.height) {
            return Err(format!("a {}x{} canvas is over WebP's limits", self.width, self.height));
        }
        let mut vp8x = Vec::with_capacity(10);
        vp8x.push(if self.alpha { 0x12 } else { 0x02 }); // animation, and alpha where a frame has it
        vp8x.extend_from_slice(&[0, 0, 0]);
        put_u24(&mut vp8x, self.width - 1);
        put_u24(&mut vp8x, self.height - 1);
        let mut anim = Vec::with_capacity(6);
        anim.extend_from_slice(&u32::MAX.to_le_bytes()); // background: opaque white, as libwebp's
        anim.extend_from_slice(&self.loops.to_le_bytes());

        let mut body = b"WEBP".to_vec();
        put_chunk(&mut body, b"VP8X", &vp8x);
        put_chunk(&mut body, b"ANIM", &anim);
        body.extend_from_slice(&self.frames);
        let size = u32::try_from(body.len()).map_err(|_| "the animation is over WebP's 4 GiB")?;
        let mut out = Vec::with_capacity(body.len() + 8);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// A chunk: its id and its data.
type Chunk<'a> = (&'a [u8; 4], &'a [u8]);

/// The chunks of a WebP file, in order.
fn chunks(webp: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    if webp.len() < 12 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return Err("not a WebP file".into());
    }
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= webp.len() {
        let id: &[u8; 4] = webp[at..at + 4].try_into().expect("four bytes");
        let size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().expect("four bytes")) as usize;
        let data = webp.get(at + 8..at + 8 + size).ok_or("a WebP chunk runs past the end")?;
        out.push((id, data));
        at += 8 + size + (size & 1); // chunks are padded to an even size
    }
    Ok(out)
}

fn put_u24(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes()[..3]);
}

fn put_chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use image::AnimationDecoder;

    use super::*;
    use crate::Format;

    fn still(rgba: [u8; 4], lossless: bool) -> Vec<u8> {
        let pixels: Vec<u8> = std::iter::repeat_n(rgba, 16 * 8).flatten().collect();
        if lossless {
            let mut out = Vec::new();
            image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                .encode(&pixels, 16, 8, image::ExtendedColorType::Rgba8)
                .expect("encodes");
            return out;
        }
        crate::encode::encode_builtin(&pixels, 16, 8, true, Format::Webp, 90).expect("encodes")
    }

    fn decoded(webp: &[u8]) -> (Vec<(image::RgbaImage, u32)>, image::metadata::LoopCount) {
        let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp)).expect("a WebP");
        let loops = decoder.loop_count();
        let frames = decoder.into_frames().collect_frames().expect("frames decode");
        let frames = frames
            .into_iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                (f.into_buffer(), n / d)
            })
            .collect();
        (frames, loops)
    }

    #[test]
    fn frames_durations_alpha_and_loops_survive_a_decoder() {
        let mut animation = AnimatedWebp::new(16, 8, 3);
        animation.push(&still([250, 0, 0, 255], false), 100).expect("a frame");
        animation.push(&still([0, 0, 250, 128], false), 250).expect("a frame");
        animation.push(&still([0, 250, 0, 255], true), 40).expect("a frame");
        let webp = animation.finish().expect("a file");

        let (frames, loops) = decoded(&webp);
        assert!(matches!(loops, image::metadata::LoopCount::Finite(n) if n.get() == 3));
        assert_eq!(frames.iter().map(|(_, ms)| *ms).collect::<Vec<_>>(), [100, 250, 40]);
        let centre = |(f, _): &(image::RgbaImage, u32)| f.get_pixel(8, 4).0;
        let close = |a: [u8; 4], b: [u8; 4]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12);
        assert!(close(centre(&frames[0]), [250, 0, 0, 255]), "{:?}", centre(&frames[0]));
        assert!(close(centre(&frames[1]), [0, 0, 250, 128]), "{:?}", centre(&frames[1]));
        assert_eq!(centre(&frames[2]), [0, 250, 0, 255], "lossless");
        assert_eq!(webp[20] & 0x12, 0x12, "VP8X says animation and alpha");
    }

    #[test]
    fn forever_is_zero_and_nothing_is_refused() {
        let mut animation = AnimatedWebp::new(16, 8, 0);
        animation.push(&still([9, 9, 9, 255], false), 30_000_000).expect("a frame");
        let (frames, loops) = decoded(&animation.finish().expect("a file"));
        assert!(matches!(loops, image::metadata::LoopCount::Infinite));
        assert_eq!(frames[0].1, U24_MAX, "the duration is clamped to 24 bits");

        assert!(AnimatedWebp::new(16, 8, 0).finish().is_err(), "no frame");
        assert!(AnimatedWebp::new(16, 8, 0).push(b"RIFF\x04\0\0\0WEBP", 10).is_err(), "no bitstream");
        assert!(AnimatedWebp::new(16, 8, 0).push(b"GIF89a", 10).is_err(), "not a WebP");
        assert!(AnimatedWebp::new(16, 8, 0).push(b"RIFF\x20\0\0\0WEBPVP8 \xff\0\0\0", 10).is_err(), "cut");
    }
}
