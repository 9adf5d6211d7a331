//! AVIF still images, decoded only in wasm builds (see `decode`; unit tests run it natively):
//! `avif-parse` 2.1.0 extracts the AV1 payloads (primary item, alpha item), `rav1d` 1.1.0 (pure-Rust dav1d, no assembly) decodes them on this thread, and the pictures become
//! RGB8 / RGBA8. `ispe`, `colr`, `irot`, `imir`, which avif-parse 2.1.0 does not expose, come from a
//! small walk of the `meta` box. Unsafe code: rav1d's only public API is dav1d's C API, so calling it
//! and reading its pictures needs `unsafe`; each block says why it holds, and `Drop` guards release
//! the context, the wrapped input and every picture on every path, pictures first.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use image::{DynamicImage, RgbImage, RgbaImage, metadata::Orientation};
use rav1d::Dav1dResult;
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dLogger, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422, DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_unref, dav1d_data_wrap, dav1d_default_settings, dav1d_get_picture, dav1d_open,
    dav1d_picture_unref, dav1d_send_data,
};
use rav1d::src::send_sync_non_null::SendSyncNonNull;

use crate::RenderError;

/// Decodes an AVIF still image to RGB8 (RGBA8 with an alpha item), upright (`irot`/`imir`
/// applied), with the ICC profile of its `colr` box if it has one.
pub fn decode_avif(input: &[u8], max_pixels: u64) -> Result<(DynamicImage, Option<Vec<u8>>), RenderError> {
    let bad = |e: avif_parse::Error| RenderError::UnsupportedInput(format!("cannot read the AVIF container: {e}"));
    let avif = avif_parse::read_avif(&mut &input[..]).map_err(bad)?;
    let props = primary_props(input).unwrap_or_default();
    // Sizes before any decoding: the sequence headers bound what rav1d allocates, `ispe` is the
    // declared size. rav1d also refuses bigger frames itself (`frame_size_limit`).
    let dims = |m: avif_parse::AV1Metadata| (m.max_frame_width.get(), m.max_frame_height.get());
    let (primary_dims, alpha_dims) =
        (dims(avif.primary_item_metadata().map_err(bad)?), avif.alpha_item_metadata().map_err(bad)?.map(dims));
    for (w, h) in [Some(primary_dims), props.ispe, alpha_dims].into_iter().flatten() {
        if u64::from(w) * u64::from(h) > max_pixels {
            return Err(RenderError::TooLarge(format!("{w}x{h} is over the limit of {max_pixels} pixels")));
        }
    }
    let limit = u32::try_from(max_pixels).unwrap_or(u32::MAX).max(1); // 0 would mean "no limit"
    // The alpha item's Y plane is the alpha channel (with its own depth and range).
    let alpha = match &avif.alpha_item {
        Some(item) => Some(decode_item(item, limit, |p| {
            let (norm, mut row, mut a) = (Norm::new(p.depth, p.full), vec![0; p.w], Vec::with_capacity(p.w * p.h));
            for y in 0..p.h {
                p.row(0, y, &mut row);
                a.extend(row.iter().map(|&v| to8(norm.luma(v))));
            }
            Ok((p.w, p.h, a))
        })?),
        None => None,
    };
    let (w, h, pixels) = decode_item(&avif.primary_item, limit, |p| {
        if alpha.as_ref().is_some_and(|a| (a.0, a.1) != (p.w, p.h)) {
            return Err(RenderError::UnsupportedInput("the AVIF alpha plane is not the image's size".into()));
        }
        let (mc, full) = props.nclx.unwrap_or((p.mc, p.full)); // an `nclx` colr box wins, as in libavif
        Ok((p.w, p.h, to_rgb(p, mc, full, alpha.as_ref().map(|a| a.2.as_slice()), avif.premultiplied_alpha)))
    })?;
    let mismatch = || RenderError::Failed("AVIF buffer size mismatch".into());
    let (w, h) = (u32::try_from(w).map_err(|_| mismatch())?, u32::try_from(h).map_err(|_| mismatch())?);
    let mut image = match alpha {
        Some(_) => DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, pixels).ok_or_else(mismatch)?),
        None => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(mismatch)?),
    };
    image.apply_orientation(orientation(props.irot, props.imir));
    Ok((image, props.icc))
}

/// `irot` (anticlockwise quarter turns), then `imir` (axis 0 mirrors left-right; axis 1
/// top-bottom, i.e. a half turn more then left-right): the order MIAF mandates.
fn orientation(irot: u8, imir: Option<u8>) -> Orientation {
    use Orientation::*;
    let clockwise = (4 - irot % 4 + if imir == Some(1) { 2 } else { 0 }) % 4;
    let flip = usize::from(imir.is_some());
    let turns =
        [[NoTransforms, Rotate90, Rotate180, Rotate270], [FlipHorizontal, Rotate90FlipH, FlipVertical, Rotate270FlipH]];
    turns[flip][usize::from(clockwise)]
}

/// The primary item's properties that avif-parse 2.1.0 keeps to itself.
#[derive(Default)]
struct Props {
    ispe: Option<(u32, u32)>,
    icc: Option<Vec<u8>>,
    nclx: Option<(u32, bool)>, // matrix coefficients, full range
    irot: u8,
    imir: Option<u8>,
}

struct Cur<'a>(&'a [u8]);
impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn uint(&mut self, n: usize) -> Option<u32> {
        Some(self.take(n)?.iter().fold(0, |v, &b| v << 8 | u32::from(b))) // big-endian, n <= 4
    }
}

/// The ISO-BMFF boxes in `d` as (type, body), up to the first malformed one.
fn boxes(mut d: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let mut c = Cur(d);
        let (size, kind) = (c.uint(4)?, c.take(4)?);
        let size = match size {
            0 => d.len() as u64,
            1 => u64::from(c.uint(4)?) << 32 | u64::from(c.uint(4)?),
            n => u64::from(n),
        };
        let head = d.len() - c.0.len();
        let size = usize::try_from(size).ok().filter(|s| (head..=d.len()).contains(s))?;
        let body = &d[head..size];
        d = &d[size..];
        Some((kind, body))
    })
}

fn primary_props(file: &[u8]) -> Option<Props> {
    let meta = boxes(file).find(|b| b.0 == b"meta")?.1.get(4..)?; // full box: skip version and flags
    let (mut pitm, mut ipco, mut ipma) = (None, Vec::new(), None);
    for (kind, body) in boxes(meta) {
        if kind == b"pitm" {
            let mut c = Cur(body);
            pitm = if c.uint(4)? >> 24 == 0 { c.uint(2) } else { c.uint(4) };
        } else if kind == b"iprp" {
            for (kind, body) in boxes(body) {
                match kind {
                    b"ipco" => ipco = boxes(body).collect(),
                    b"ipma" => ipma = Some(body),
                    _ => {}
                }
            }
        }
    }
    let (pitm, mut props) = (pitm?, Props::default());
    // A malformed entry ends the walk but keeps what was read before it.
    let _ = read_associations(&mut Cur(ipma?), pitm, &ipco, &mut props);
    Some(props)
}

/// Reads the `ipma` entries of item `pitm` into `props`; `None` at the first malformed entry.
fn read_associations(c: &mut Cur<'_>, pitm: u32, ipco: &[(&[u8], &[u8])], props: &mut Props) -> Option<()> {
    let version_flags = c.uint(4)?;
    let (id_len, wide) = (if version_flags >> 24 == 0 { 2 } else { 4 }, version_flags & 1 == 1);
    for _ in 0..c.uint(4)? {
        let item = c.uint(id_len)?;
        for _ in 0..c.uint(1)? {
            let index = (if wide { c.uint(2)? & 0x7fff } else { c.uint(1)? & 0x7f }) as usize;
            let property = index.checked_sub(1).and_then(|i| ipco.get(i)).filter(|_| item == pitm);
            let Some(&(kind, body)) = property else { continue };
            let mut b = Cur(body);
            // A malformed property is skipped, not fatal to the others.
            let _ = (|| -> Option<()> {
                match kind {
                    b"ispe" => props.ispe = Some((b.uint(4).and(b.uint(4))?, b.uint(4)?)), // after version+flags
                    b"colr" => match b.take(4)? {
                        b"prof" | b"rICC" => props.icc = Some(b.0.to_vec()),
                        b"nclx" => props.nclx = Some((b.uint(4).and(b.uint(2))?, b.uint(1)? & 0x80 != 0)), // after cp, tc
                        _ => {}
                    },
                    b"irot" => props.irot = b.uint(1)? as u8 & 3,
                    b"imir" => props.imir = Some(b.uint(1)? as u8 & 1),
                    _ => {}
                }
                Some(())
            })();
        }
    }
    Some(())
}

/// Closes the decoder; `dav1d_close` takes the context out of the option, so `None` is a no-op.
struct Context(Option<Dav1dContext>);
impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: a live field holding `None` or a context from `dav1d_open` not closed yet
        // (lib.rs:742-757 `mem::take`s it, then closes and drops the `Arc`).
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

/// The input handed to rav1d, unref'd if `dav1d_send_data` did not consume it.
struct Data(Dav1dData);
impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: `self.0` is default or from `dav1d_data_wrap` / written back by `dav1d_send_data`
        // (lib.rs:543-563); `dav1d_data_unref` takes and drops it (lib.rs:919-925).
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

struct Picture(Dav1dPicture);
impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: `self.0` is default or written by `dav1d_get_picture`; `dav1d_picture_unref`
        // releases its references and writes back an empty picture (lib.rs:823-836).
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
        // That empty picture comes from `Rav1dPicture::default()`, whose `itut_t35` is a freshly
        // allocated `Arc` (picture.rs:425, 523): release it too, or each unref leaks it.
        if let Some(raw) = self.0.itut_t35_ref.take() {
            // SAFETY: it came from `RawArc::from_arc` (picture.rs:523) and is its only handle (the
            // picture was just emptied, never copied), so it becomes an `Arc` once and is dropped.
            drop(unsafe { raw.into_arc() });
        }
    }
}

type FreeFn = unsafe extern "C" fn(*const u8, Option<SendSyncNonNull<c_void>>);
/// The free callback of the wrapped input: it is borrowed, so there is nothing to free.
extern "C" fn keep(_: *const u8, _: Option<SendSyncNonNull<c_void>>) {}

fn error(call: &str, r: Dav1dResult) -> RenderError {
    let msg = format!("rav1d cannot decode the AVIF image ({call} returned {})", r.0);
    match -r.0 {
        libc::ERANGE => RenderError::TooLarge(msg), // over `frame_size_limit` (obu.rs:2333-2342)
        libc::ENOMEM => RenderError::Failed(msg),
        _ => RenderError::UnsupportedInput(msg),
    }
}

/// Decodes one AV1 item on this thread and hands its picture to `convert`.
fn decode_item<T>(
    obus: &[u8],
    limit: u32,
    convert: impl FnOnce(&Planes<'_>) -> Result<T, RenderError>,
) -> Result<T, RenderError> {
    if obus.is_empty() {
        return Err(RenderError::UnsupportedInput("the AVIF item holds no AV1 data".into()));
    }
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: a live local, to which `dav1d_default_settings` `ptr::write`s a whole value (lib.rs:136-142).
    unsafe { dav1d_default_settings(NonNull::from(&mut settings).cast()) };
    // SAFETY: fully initialised just above.
    let mut s = unsafe { settings.assume_init() };
    // Load-bearing: one task context and no worker thread (lib.rs:150-160, 258-269). With workers,
    // `dav1d_close` only signals them, and one could still read the borrowed input afterwards.
    s.n_threads = 1;
    s.max_frame_delay = 1; // one frame context
    s.apply_grain = 1;
    s.operating_point = 0;
    s.all_layers = 0;
    s.frame_size_limit = limit;
    // SAFETY: with no callback, nothing is ever called through the logger (log.rs:40-52, 165-168).
    s.logger = unsafe { Dav1dLogger::new(None, None) };
    let mut ctx = Context(None);
    // SAFETY: pointers to live locals; `s` is initialised plain data that `dav1d_open` reads (a
    // bitwise copy, lib.rs:333); it writes the context, or `None` on failure, into `ctx.0`.
    let r = unsafe { dav1d_open(Some(NonNull::from(&mut ctx.0)), Some(NonNull::from(&mut s))) };
    let c = match ctx.0 {
        Some(c) if r.0 == 0 => c,
        _ => return Err(error("dav1d_open", r)),
    };
    let mut data = Data(Dav1dData::default());
    // SAFETY: `obus` is live, non-empty, and only read by rav1d. As `keep` frees nothing, rav1d may
    // read it until its last reference goes; those live in `data` and the context, locals dropped
    // (unref'd, closed) before this function returns, so while `obus` is still borrowed. No worker
    // thread exists that could keep one longer.
    let r = unsafe {
        let ptr = NonNull::from(obus).cast::<u8>();
        dav1d_data_wrap(Some(NonNull::from(&mut data.0)), Some(ptr), obus.len(), Some(keep as FreeFn), None)
    };
    if r.0 != 0 {
        return Err(error("dav1d_data_wrap", r));
    }
    let eagain = -libc::EAGAIN;
    for _ in 0..16 {
        if data.0.sz > 0 {
            // SAFETY: `c` is open (closed only when `ctx` drops); `data.0` is a live `Dav1dData`
            // from `dav1d_data_wrap`, read and written back by the call (lib.rs:543-563).
            let r = unsafe { dav1d_send_data(Some(c), Some(NonNull::from(&mut data.0))) };
            if r.0 != 0 && r.0 != eagain {
                return Err(error("dav1d_send_data", r));
            }
        }
        let mut pic = Picture(Dav1dPicture::default());
        // SAFETY: `c` as above; `pic.0` is a live empty picture that the call overwrites with
        // `ptr::write` (lib.rs:584-602); the guard unrefs whatever it receives, error or not.
        let r = unsafe { dav1d_get_picture(Some(c), Some(NonNull::from(&mut pic.0))) };
        if r.0 == 0 {
            return convert(&Planes::new(&pic.0)?); // `pic` drops before `data` and `ctx`
        }
        if r.0 != eagain || data.0.sz == 0 {
            return Err(error("dav1d_get_picture", r));
        }
    }
    Err(RenderError::UnsupportedInput("rav1d produced no picture from the AVIF item".into()))
}

/// A picture returned by rav1d, checked so that its rows can be read.
struct Planes<'p> {
    pic: &'p Dav1dPicture,
    w: usize,
    h: usize,
    depth: u32,
    ss: Option<(usize, usize)>, // chroma subsampling shifts (x, y); None for monochrome (I400)
    mc: u32,                    // matrix coefficients (H.273) and full range, from the sequence header
    full: bool,
}

impl<'p> Planes<'p> {
    fn new(pic: &'p Dav1dPicture) -> Result<Self, RenderError> {
        let odd = |what: &str| RenderError::Failed(format!("rav1d returned an unexpected picture ({what})"));
        let w = usize::try_from(pic.p.w).ok().filter(|&w| w > 0).ok_or_else(|| odd("width"))?;
        let h = usize::try_from(pic.p.h).ok().filter(|&h| h > 0).ok_or_else(|| odd("height"))?;
        let depth = [8, 10, 12].into_iter().find(|&d| d == pic.p.bpc).ok_or_else(|| odd("bit depth"))?.unsigned_abs();
        let ss = match pic.p.layout {
            DAV1D_PIXEL_LAYOUT_I400 => None,
            DAV1D_PIXEL_LAYOUT_I420 => Some((1, 1)),
            DAV1D_PIXEL_LAYOUT_I422 => Some((1, 0)),
            DAV1D_PIXEL_LAYOUT_I444 => Some((0, 0)),
            _ => return Err(odd("layout")),
        };
        // Every plane present and aligned for its sample type; each stride covers a row.
        let (bytes, planes) = (if depth > 8 { 2 } else { 1 }, if ss.is_some() { 3 } else { 1 });
        let cw = ss.map_or(0, |(x, _)| (w + x) >> x);
        let aligned = pic.data[..planes].iter().all(|d| d.is_some_and(|d| (d.as_ptr() as usize).is_multiple_of(bytes)));
        let covers = |s: isize, pw: usize| s.unsigned_abs().is_multiple_of(bytes) && s.unsigned_abs() >= pw * bytes;
        if !aligned || !covers(pic.stride[0], w) || (ss.is_some() && !covers(pic.stride[1], cw)) {
            return Err(odd("planes"));
        }
        let (mc, full) = pic.seq_hdr.map_or((2, false), |s| {
            // SAFETY: `seq_hdr` points into the sequence header the picture holds a reference to
            // (`seq_hdr_ref`, picture.rs:503, 520), alive while `pic` is borrowed.
            let s = unsafe { s.as_ref() };
            (s.mtrx, s.color_range != 0)
        });
        Ok(Self { pic, w, h, depth, ss, mc, full })
    }

    /// Copies the first `out.len()` samples of row `y` of `plane` (0 Y, 1 U, 2 V) into `out`.
    fn row(&self, plane: usize, y: usize, out: &mut [u16]) {
        let (pw, ph) = match (plane, self.ss) {
            (0, _) => (self.w, self.h),
            (1 | 2, Some((sx, sy))) => ((self.w + sx) >> sx, (self.h + sy) >> sy),
            _ => (0, 0),
        };
        let Some(base) = self.pic.data[plane].filter(|_| y < ph && out.len() <= pw) else {
            return out.fill(0); // not reached: the callers stay within the planes
        };
        let stride = self.pic.stride[usize::from(plane > 0)];
        // SAFETY: rav1d returned this picture, borrowed from its guard: the buffer is alive and
        // nothing writes to it (no other thread). `data[plane]` is the top-left sample of a plane
        // of `ph` rows `stride` bytes apart (picture.rs:270-283, 563-600), each with at least `pw`
        // initialised samples (src/picture.rs:103-148: 128-aligned widths, `pop_init`) of 1 byte
        // at 8 bits, 2 (aligned, checked in `new`) at 10/12. `y < ph`, `out.len() <= pw` checked.
        unsafe {
            let start = base.as_ptr().cast::<u8>().offset(y as isize * stride);
            if self.depth == 8 {
                let src = std::slice::from_raw_parts(start, out.len());
                out.iter_mut().zip(src).for_each(|(o, &s)| *o = u16::from(s));
            } else {
                out.copy_from_slice(std::slice::from_raw_parts(start.cast::<u16>(), out.len()));
            }
        }
    }
}

/// Sample normalisation (H.273), limited or full range: luma offset, luma scale, chroma midpoint,
/// chroma scale.
struct Norm(f32, f32, f32, f32);
impl Norm {
    fn new(depth: u32, full: bool) -> Self {
        let (max, s) = (((1u32 << depth) - 1) as f32, (1u32 << (depth - 8)) as f32);
        if full {
            return Self(0.0, 1.0 / max, 128.0 * s, 1.0 / max);
        }
        Self(16.0 * s, 1.0 / (219.0 * s), 128.0 * s, 1.0 / (224.0 * s))
    }
    fn luma(&self, v: u16) -> f32 {
        (f32::from(v) - self.0) * self.1 // 0..1
    }
    fn chroma(&self, v: u16) -> f32 {
        (f32::from(v) - self.2) * self.3 // -0.5..0.5
    }
}

fn to8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// YCbCr (or GBR, or grey) to interleaved RGB8 / RGBA8, nearest-neighbour chroma upsampling.
fn to_rgb(p: &Planes<'_>, mc: u32, full: bool, alpha: Option<&[u8]>, premultiplied: bool) -> Vec<u8> {
    let norm = Norm::new(p.depth, full);
    let (kr, kb): (f32, f32) = match mc {
        1 => (0.2126, 0.0722),      // BT.709
        4 => (0.30, 0.11),          // FCC
        7 => (0.212, 0.087),        // SMPTE 240M
        9 | 10 => (0.2627, 0.0593), // BT.2020 (CL approximated as NCL)
        _ => (0.299, 0.114),        // BT.601 (5, 6), unspecified (2) and the rest
    };
    let kg = 1.0 - kr - kb;
    let (r_v, b_u) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb));
    let (g_u, g_v) = (2.0 * kb * (1.0 - kb) / kg, 2.0 * kr * (1.0 - kr) / kg);
    let cw = p.ss.map_or(0, |(x, _)| (p.w + x) >> x);
    let (mut y, mut u, mut v) = (vec![0u16; p.w], vec![0u16; cw], vec![0u16; cw]);
    let mut out = Vec::with_capacity(p.w * p.h * if alpha.is_some() { 4 } else { 3 });
    for row in 0..p.h {
        p.row(0, row, &mut y);
        if let Some((_, sy)) = p.ss {
            p.row(1, row >> sy, &mut u);
            p.row(2, row >> sy, &mut v);
        }
        for (x, &luma) in y.iter().enumerate() {
            let l = norm.luma(luma);
            let rgb = match p.ss {
                None => [l; 3],
                Some((sx, _)) if mc == 0 => [norm.luma(v[x >> sx]), l, norm.luma(u[x >> sx])], // GBR
                Some((sx, _)) if mc == 8 => {
                    let (cg, co) = (norm.chroma(u[x >> sx]), norm.chroma(v[x >> sx])); // YCgCo
                    [l - cg + co, l + cg, l - cg - co]
                }
                Some((sx, _)) => {
                    let (cb, cr) = (norm.chroma(u[x >> sx]), norm.chroma(v[x >> sx]));
                    [l + r_v * cr, l - g_u * cb - g_v * cr, l + b_u * cb]
                }
            };
            let Some(alpha) = alpha else {
                out.extend(rgb.map(to8));
                continue;
            };
            let a = alpha[row * p.w + x];
            let k = if !premultiplied {
                1.0
            } else if a == 0 {
                0.0
            } else {
                255.0 / f32::from(a)
            };
            out.extend(rgb.map(|c| to8(c * k)));
            out.push(a);
        }
    }
    out
}

// Cargo.toml. Workspace root, [workspace.dependencies]:
//     avif-parse = "2.1.0"
//     rav1d = { version = "1.1.0", default-features = false, features = ["bitdepth_8", "bitdepth_16"] }
//     libc = "0.2"  # EAGAIN/ERANGE/ENOMEM: rav1d returns -libc::E* (src/error.rs); 0.2.191 already in Cargo.lock
// plugins/standard/Cargo.toml, [dependencies]:
//     avif-parse.workspace = true
//     rav1d.workspace = true
//     libc.workspace = true
// Then `mod avif;` in lib.rs and an `ImageFormat::Avif` arm in decode.rs calling `crate::avif::decode_avif`
// (image::guess_format recognises "ftypavif": image-0.25.10/src/io/free_functions.rs:120).
//
// Definitions relied on (rav1d-1.1.0, all fields `pub`):
//   include/dav1d/dav1d.rs:127 Dav1dSettings { n_threads: c_int, max_frame_delay: c_int, apply_grain: c_int,
//     operating_point: c_int, all_layers: c_int, frame_size_limit: c_uint, allocator, logger: Dav1dLogger,
//     strict_std_compliance, output_invisible_frames, inloop_filters, decode_frame_type, reserved } (no Default)
//   include/dav1d/dav1d.rs:13 `pub type Dav1dContext = RawArc<Rav1dContext>;` (RawArc: Copy, src/c_arc.rs:172-190)
//   include/dav1d/data.rs:10 Dav1dData { data: Option<NonNull<u8>>, sz: usize, r#ref, m } (Default)
//   include/dav1d/picture.rs:51 Dav1dPictureParameters { w: c_int, h: c_int, layout: Dav1dPixelLayout, bpc: c_int }
//   include/dav1d/picture.rs:94 Dav1dPicture { seq_hdr: Option<NonNull<Dav1dSequenceHeader>>,
//     data: [Option<NonNull<c_void>>; 3], stride: [ptrdiff_t; 2], p: Dav1dPictureParameters, ..,
//     itut_t35_ref: Option<RawArc<..>>, .. } (Default, no Drop)
//   include/dav1d/headers.rs:952 Dav1dSequenceHeader { .., mtrx: Dav1dMatrixCoefficients (c_uint, the H.273 code,
//     headers.rs:663-705), .., color_range: u8, .. }; headers.rs:409-413 DAV1D_PIXEL_LAYOUT_I400..I444 = 0..3
//   src/lib.rs: dav1d_default_settings :138, dav1d_open :323, dav1d_send_data :543, dav1d_get_picture :584,
//     dav1d_close :742, dav1d_picture_unref :823, dav1d_data_wrap :864 (a free callback is required),
//     dav1d_data_unref :919; src/log.rs:47 `pub const unsafe fn Dav1dLogger::new` (re-exported, dav1d.rs:6)
// avif-parse-2.1.0/src/lib.rs: read_avif :742; AvifData { primary_item, alpha_item, premultiplied_alpha, .. }
//   :286-303; primary_item_metadata / alpha_item_metadata :311-320; AV1Metadata.max_frame_width/height :324-336.
//   No accessor for ispe/colr/irot/imir/clap (read_ipco :1153-1170 stores them as ItemProperty::Unsupported).
//
// Unsure (not compiled, per the brief):
// - Type privacy: `raw.into_arc()` on Dav1dPicture::itut_t35_ref and `Option<Dav1dContext>` go through `pub`
//   types in crate-private modules (RawArc, Rav1dContext, DRav1d). rav1d's own public signatures use them, so this
//   should be accepted; if not, drop the itut_t35_ref release (each unref then leaks one small Arc).
// - `Some(keep as FreeFn)`: a safe `extern "C" fn` cast to the `unsafe extern "C" fn` FnFree (src/c_box.rs:11).
// - rav1d's dependency raw-cpuid 11 building for wasm32 (absent from the local registry, so unread).
// - rav1d is crate-type ["staticlib", "rlib"] and exports #[no_mangle] dav1d_*: extra core-wasm exports, which
//   wit-component only logs as unknown (wit-component-0.258.3/src/validation.rs:1225).
// - On 32-bit targets (wasm32) rav1d caps frame_size_limit at 8192*8192 (lib.rs:205-217).
// - Not handled: clap cropping; nclx primaries/transfer (only matrix and range are used, so P3/HDR without an
//   ICC profile is read as sRGB); grids, animations, major brands other than `avif` (avif-parse rejects them).

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/tests/fixtures").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn irot_then_imir_as_miaf_says() {
        // A 3x2 image whose every pixel differs.
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8, y as u8, 0])));
        for irot in 0..4u8 {
            for imir in [None, Some(0), Some(1)] {
                // irot: quarter turns anticlockwise; then imir axis 0 flips left-right, 1 top-bottom.
                let mut expected = image.clone();
                for _ in 0..irot {
                    expected = expected.rotate270();
                }
                expected = match imir {
                    Some(0) => expected.fliph(),
                    Some(_) => expected.flipv(),
                    None => expected,
                };
                let mut got = image.clone();
                got.apply_orientation(orientation(irot, imir));
                assert_eq!(got.to_rgb8(), expected.to_rgb8(), "irot {irot} imir {imir:?}");
            }
        }
    }

    #[test]
    fn the_primary_items_properties_are_read() {
        let props = primary_props(&fixture("photo.avif")).expect("a meta box");
        assert_eq!(props.ispe, Some((1600, 1203)));
        assert_eq!((props.irot, props.imir), (0, None));
        let (image, _) = decode_avif(&fixture("alpha.avif"), 100_000_000).expect("decodes");
        assert_eq!((image.width(), image.height(), image.color().has_alpha()), (2140, 1200, true));
        assert!(matches!(decode_avif(&fixture("photo.avif"), 1_000_000), Err(RenderError::TooLarge(_))));
        assert!(matches!(decode_avif(b"\0\0\0\x18ftypavif", 1 << 20), Err(RenderError::UnsupportedInput(_))));
    }
}
