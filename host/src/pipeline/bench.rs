//! `mbk-host bench`: the standard variant set over a folder of photos, native against wasm,
//! and against `vipsthumbnail` (libvips) for the two WebP variants when it is installed.
//!
//! HEIC and JPEG XL are decoded only inside the sandbox: a second table gives their wasm cost for
//! one small variant (the decode dominates), from files in the folder and from ones `heif-enc` and
//! `cjxl` make of the folder's largest JPEG when they are installed.
//!
//! Wall time on a shared machine is noisy: the figures compare engines within one run, and each
//! is the median of `runs` renders. Peak RSS is the process's high-water mark, reset (Linux
//! `clear_refs`) before each engine's pass. The wasm pass of an image runs first: a sandbox's
//! linear memory goes back to the OS when its call ends, while freed native heap may stay
//! resident and would be counted against whichever pass came next. Likewise the one compile of
//! the component (the start-up figure without the build's machine code) comes last, after every
//! render: cranelift's working memory would otherwise be part of every peak.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Renderer;
use crate::config::PipelineEngine;
use crate::plugins::{Fit, Format, Limits, PluginSettings, Spec};

const MAX_PIXELS: u64 = 100_000_000;

fn spec(name: &str, width: Option<u32>, height: Option<u32>, fit: Fit, format: Format, quality: u8) -> Spec {
    Spec { name: name.into(), width, height, fit, format, quality, params: Vec::new(), gravity: Default::default() }
}

/// The standard variant set of the issue: 150x150 cover WebP, 800 contain WebP, 1600 contain AVIF.
pub fn standard_set() -> Vec<Spec> {
    vec![
        spec("thumbnail", Some(150), Some(150), Fit::Cover, Format::Webp, 80),
        spec("medium", Some(800), None, Fit::Contain, Format::Webp, 80),
        spec("large", Some(1600), None, Fit::Contain, Format::Avif, 60),
    ]
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The files in `dir` whose extension (any case) is one of `extensions`, sorted.
fn files_with(dir: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    found.sort();
    Ok(found)
}

fn photos(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let found = files_with(dir, &["jpg", "jpeg", "png", "webp"])?;
    anyhow::ensure!(!found.is_empty(), "no JPEG, PNG or WebP files in {}", dir.display());
    Ok(found)
}

fn pixels(input: &[u8]) -> u64 {
    imagesize::blob_size(input).map(|s| s.width as u64 * s.height as u64).unwrap_or(0)
}

/// `jpeg` encoded by `tool` (`args` around the input and output paths), or `None` when the tool
/// is not installed or fails.
fn encoded_by(tool: &str, jpeg: &Path, ext: &str, args: impl Fn(&str, &str) -> Vec<String>) -> Option<Vec<u8>> {
    let out = std::env::temp_dir().join(format!("mbk-bench-{}-{tool}.{ext}", std::process::id()));
    let (input, output) = (jpeg.to_str()?, out.to_str()?);
    let status = std::process::Command::new(tool)
        .args(args(input, output))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    let bytes = status.success().then(|| std::fs::read(&out).ok()).flatten();
    let _ = std::fs::remove_file(out);
    bytes
}

/// The sandbox-only inputs to time: HEIC/HEIF/JXL files in `dir`, then what `heif-enc` and `cjxl`
/// make of the largest JPEG in `photos`; each with where it came from.
fn sandbox_only_inputs(dir: &Path, photos: &[PathBuf]) -> anyhow::Result<Vec<(String, String, Vec<u8>)>> {
    let mut inputs = Vec::new();
    for file in files_with(dir, &["heic", "heif", "jxl"])? {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        inputs.push((name, "the folder".to_owned(), std::fs::read(&file)?));
    }
    let jpegs = photos.iter().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")));
    let largest = jpegs.max_by_key(|p| std::fs::read(p).map(|b| pixels(&b)).unwrap_or(0));
    let Some(jpeg) = largest else { return Ok(inputs) };
    let stem = jpeg.file_stem().and_then(|n| n.to_str()).unwrap_or("photo");
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let made = [
        ("heic", "heif-enc -q 90", encoded_by("heif-enc", jpeg, "heic", |i, o| own(&["-q", "90", "-o", o, i]))),
        (
            "jxl",
            "cjxl -d 1 (VarDCT from pixels)",
            encoded_by("cjxl", jpeg, "jxl", |i, o| own(&[i, o, "-d", "1", "--lossless_jpeg=0"])),
        ),
        (
            "jxl",
            "cjxl (lossless JPEG transcoding)",
            encoded_by("cjxl", jpeg, "jxl", |i, o| own(&[i, o, "--lossless_jpeg=1"])),
        ),
    ];
    for (ext, how, bytes) in made {
        if let Some(bytes) = bytes {
            inputs.push((format!("{stem}.{ext}"), how.to_owned(), bytes));
        }
    }
    // Beside them, the JPEG they were made from (decoded at 1/8 scale by DCT scaling).
    let name = jpeg.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
    inputs.push((name, "the source, for comparison".to_owned(), std::fs::read(jpeg)?));
    Ok(inputs)
}

/// The second table: each sandbox-only input rendered to one 150x150 WebP in wasm (median time
/// and the call's peak linear memory), what the native engine answers, and the source JPEG beside.
fn sandbox_only_table(
    report: &mut String,
    dir: &Path,
    photos: &[PathBuf],
    native: &Renderer,
    wasm: &Renderer,
    runs: usize,
) -> anyhow::Result<()> {
    let inputs = sandbox_only_inputs(dir, photos)?;
    if inputs.is_empty() {
        return Ok(());
    }
    let set = standard_set();
    let thumb = &set[..1];
    writeln!(
        report,
        "\nSandbox-only inputs, decoded in wasm (one thread) to one 150x150 cover WebP, median of {runs} run(s):\n"
    )?;
    writeln!(report, "| input | pixels | made by | KiB | wasm ms | wasm peak MiB | native |")?;
    writeln!(report, "|---|---|---|---|---|---|---|")?;
    for (name, how, input) in &inputs {
        let size = imagesize::blob_size(input).map(|s| format!("{}x{}", s.width, s.height)).unwrap_or_default();
        let (time, _) = time_render(wasm, input, thumb, runs)?;
        let peak = wasm.render_standard_metered(input, Limits::pixels(MAX_PIXELS), thumb, false).1;
        let peak = peak.map(|b| format!("{:.0}", b as f64 / (1 << 20) as f64)).unwrap_or_else(|| "–".into());
        let refused = native.render_standard(input, MAX_PIXELS, thumb).map(|r| r.iter().all(|r| r.is_err()));
        let native_answer = if refused.unwrap_or(true) { "unsupported" } else { "rendered" };
        let kib = input.len() as f64 / 1024.0;
        writeln!(report, "| {name} | {size} | {how} | {kib:.0} | {:.0} | {peak} | {native_answer} |", ms(time))?;
    }
    Ok(())
}

/// Median time of `runs` renders of `specs` from `input`, and the size of each output.
fn time_render(renderer: &Renderer, input: &[u8], specs: &[Spec], runs: usize) -> anyhow::Result<(Duration, Vec<u64>)> {
    let mut samples = Vec::with_capacity(runs);
    let mut sizes = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let results = renderer.render_standard(input, MAX_PIXELS, specs).map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(started.elapsed());
        sizes = results
            .into_iter()
            .map(|r| r.map(|r| r.bytes.len() as u64).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<anyhow::Result<_>>()?;
    }
    Ok((median(samples), sizes))
}

/// Median time of `runs` runs of `vipsthumbnail` with `args` and the size of what it wrote, or
/// `None` when it is not installed.
fn time_vips(image: &Path, args: &[&str], runs: usize) -> Option<(Duration, u64)> {
    let out = std::env::temp_dir().join(format!("mbk-bench-{}.webp", std::process::id()));
    let target = format!("{}[Q=80,strip]", out.display());
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let status =
            std::process::Command::new("vipsthumbnail").arg(image).args(args).args(["-o", &target]).status().ok()?;
        if !status.success() {
            return None;
        }
        samples.push(started.elapsed());
    }
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(out);
    Some((median(samples), size))
}

/// What `vipsthumbnail` costs before any work: its median time on a 16x16 image.
fn vips_start_up(runs: usize) -> Option<Duration> {
    let tiny = std::env::temp_dir().join(format!("mbk-bench-tiny-{}.png", std::process::id()));
    let png =
        mbk_standard::encode::encode_builtin(&[0; 16 * 16 * 3], 16, 16, false, mbk_standard::Format::Png, 80).ok()?;
    std::fs::write(&tiny, png).ok()?;
    let timed = time_vips(&tiny, &["-s", "8x"], runs.max(5));
    let _ = std::fs::remove_file(tiny);
    timed.map(|(d, _)| d)
}

/// Runs the benchmark and returns the report (Markdown).
pub fn run(dir: &Path, runs: usize) -> anyhow::Result<String> {
    let files = photos(dir)?;
    let settings =
        PluginSettings { memory_bytes: 1 << 30, timeout: Duration::from_secs(600), cache_dir: None, instances: 2 };
    let native = Renderer::new(PipelineEngine::Native, settings.clone())?;
    let started = Instant::now();
    let wasm = Renderer::new(PipelineEngine::Wasm, settings.clone())?;
    let ready = started.elapsed();
    let set = standard_set();
    let mut report = String::new();
    writeln!(
        report,
        "Standard set (150x150 cover WebP q80, 800w contain WebP q80, 1600w contain AVIF q60), one call per image, median of {runs} run(s).\n"
    )?;
    writeln!(
        report,
        "| image | pixels | native ms | wasm ms | wasm/native | thumb native/wasm/vips ms | medium native/wasm/vips ms | medium KiB ours/vips |"
    )?;
    writeln!(report, "|---|---|---|---|---|---|---|---|")?;
    let (mut total_native, mut total_wasm) = (Duration::ZERO, Duration::ZERO);
    let (mut peak_native, mut peak_wasm) = (0f64, 0f64);
    for file in &files {
        let input = std::fs::read(file)?;
        let size = imagesize::blob_size(&input).map(|s| format!("{}x{}", s.width, s.height)).unwrap_or_default();
        reset_peak_rss();
        let (w, _) = time_render(&wasm, &input, &set, runs)?;
        peak_wasm = peak_wasm.max(peak_rss_mib().unwrap_or(0.0));
        reset_peak_rss();
        let (n, _) = time_render(&native, &input, &set, runs)?;
        peak_native = peak_native.max(peak_rss_mib().unwrap_or(0.0));
        total_native += n;
        total_wasm += w;
        let mut single = Vec::new();
        let mut sizes = String::new();
        for (i, vips_args) in [(0, &["-s", "150x150", "--smartcrop", "centre"][..]), (1, &["-s", "800x"][..])] {
            let one = std::slice::from_ref(&set[i]);
            let (native_time, _) = time_render(&native, &input, one, runs)?;
            let (wasm_time, ours) = time_render(&wasm, &input, one, runs)?;
            let ours = ours.first().copied().unwrap_or(0);
            let vips = time_vips(file, vips_args, runs);
            single.push(format!(
                "{:.0} / {:.0} / {}",
                ms(native_time),
                ms(wasm_time),
                vips.map(|(d, _)| format!("{:.0}", ms(d))).unwrap_or_else(|| "–".into())
            ));
            if i == 1 {
                let theirs = vips.map(|(_, b)| format!("{:.1}", b as f64 / 1024.0)).unwrap_or_else(|| "–".into());
                sizes = format!("{:.1} / {theirs}", ours as f64 / 1024.0);
            }
        }
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        writeln!(
            report,
            "| {name} | {size} | {:.0} | {:.0} | {:.2}x | {} | {} | {sizes} |",
            ms(n),
            ms(w),
            w.as_secs_f64() / n.as_secs_f64(),
            single[0],
            single[1]
        )?;
    }
    let count = files.len() as f64;
    writeln!(report)?;
    writeln!(
        report,
        "Totals: native {:.2} images/s, wasm {:.2} images/s, wasm/native {:.2}x; peak RSS native {peak_native:.0} MiB, wasm {peak_wasm:.0} MiB.",
        count / total_native.as_secs_f64(),
        count / total_wasm.as_secs_f64(),
        total_wasm.as_secs_f64() / total_native.as_secs_f64()
    )?;
    if let Some(start) = vips_start_up(runs) {
        writeln!(
            report,
            "vipsthumbnail's own start-up (a 16x16 image, included in its columns): {:.0} ms.",
            ms(start)
        )?;
    }
    if let Some(component) = wasm.standard_component() {
        let per = wasm.plugins().instantiation_cost(component, 1000).map_err(|e| anyhow::anyhow!("{e}"))?;
        writeln!(
            report,
            "Instantiation (fresh store + instance from InstancePre, async, under the deadline's timer, warm): {:.1} µs per render.",
            per.as_secs_f64() * 1e6
        )?;
    }
    sandbox_only_table(&mut report, dir, &files, &native, &wasm, runs)?;
    // What a start-up would cost without the build's machine code: the compile itself.
    let started = Instant::now();
    crate::plugins::PluginEngine::new(settings)?.load(super::STANDARD_COMPONENT).map_err(|e| anyhow::anyhow!("{e}"))?;
    let compiled = started.elapsed();
    report.insert_str(
        0,
        &format!(
            "Start-up: the standard component ready in {:.0} ms from the machine code the build compiled ({:.0} ms when compiled here).\n\n",
            ms(ready),
            ms(compiled)
        ),
    );
    Ok(report)
}
