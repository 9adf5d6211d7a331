//! The plugin runtime: the standard plugin as a WebAssembly component and natively, the same
//! results from both, and the sandbox's limits enforced on real work.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mbk_host::config::PipelineEngine;
use mbk_host::pipeline::{Engine, Renderer, STANDARD_COMPONENT, STANDARD_PRECOMPILED};
use mbk_host::plugins::{Fit, Format, PluginEngine, PluginFailure, PluginSettings, RenderError, Spec};

use crate::helpers::fixture;

mod host_calls;

const MAX_PIXELS: u64 = 100_000_000;

fn settings(memory_mb: usize, timeout: Duration) -> PluginSettings {
    PluginSettings {
        memory_bytes: memory_mb << 20,
        timeout,
        cache_dir: Some(std::env::temp_dir().join("mbk-test-plugin-cache")),
        instances: 4,
    }
}

/// One renderer per engine for the whole test binary: compiling the component takes seconds.
fn renderer(engine: Engine) -> &'static Renderer {
    static WASM: OnceLock<Renderer> = OnceLock::new();
    static NATIVE: OnceLock<Renderer> = OnceLock::new();
    let (cell, choice) = match engine {
        Engine::Wasm => (&WASM, PipelineEngine::Wasm),
        Engine::Native => (&NATIVE, PipelineEngine::Native),
    };
    cell.get_or_init(|| Renderer::new(choice, settings(512, Duration::from_secs(120))).expect("renderer"))
}

fn spec(width: Option<u32>, height: Option<u32>, fit: Fit, format: Format) -> Spec {
    Spec { name: "v".into(), width, height, fit, format, quality: 80, params: Vec::new(), gravity: Default::default() }
}

#[test]
fn the_build_embeds_the_standard_component() {
    assert!(!STANDARD_COMPONENT.is_empty(), "host/build.rs did not produce the component; see the build warnings");
    assert_eq!(&STANDARD_COMPONENT[..4], b"\0asm");
    assert_eq!(renderer(Engine::Wasm).engine(), Engine::Wasm);
    assert_eq!(renderer(Engine::Native).engine(), Engine::Native);
    let engine = renderer(Engine::Wasm).plugins();
    let info = engine.info(&engine.load(STANDARD_COMPONENT).expect("loads")).expect("info");
    assert_eq!((info.name.as_str(), info.version.as_str()), ("mbk-standard", env!("CARGO_PKG_VERSION")));
}

/// A fresh data dir does not compile the standard component: the build compiled it, the engine
/// takes that code (nothing lands in the empty compile cache), and it renders.
#[test]
fn the_standard_component_runs_from_the_build_s_machine_code() {
    assert!(!STANDARD_PRECOMPILED.is_empty(), "host/build.rs did not compile the component; see the build warnings");
    let fresh = tempfile::tempdir().expect("tempdir");
    let cache = fresh.path().join("plugin-cache");
    let settings = PluginSettings { cache_dir: Some(cache.clone()), ..settings(512, Duration::from_secs(120)) };
    let started = std::time::Instant::now();
    let renderer = Renderer::with_engine(PipelineEngine::Wasm, PluginEngine::new(settings).expect("engine")).expect("renderer");
    println!("the standard component ready in {:?}", started.elapsed());
    assert_eq!(renderer.engine(), Engine::Wasm);
    assert!(!cache.exists(), "the component was compiled at start-up: {:?}", std::fs::read_dir(&cache).map(|d| d.count()));
    let specs = [spec(Some(64), Some(48), Fit::Cover, Format::Png)];
    let out = renderer.render_standard(&fixture("photo.jpg"), MAX_PIXELS, &specs).expect("renders");
    let image = image::load_from_memory(&out[0].as_ref().expect("the variant").bytes).expect("a PNG");
    assert_eq!((image.width(), image.height()), (64, 48));
}

/// Mean absolute difference per channel between two decoded images of the same size.
fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
    let a = image::load_from_memory(a).expect("decodes").to_rgba8();
    let b = image::load_from_memory(b).expect("decodes").to_rgba8();
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn both_engines_render_every_input_kind_alike() {
    let specs = [
        spec(Some(150), Some(150), Fit::Cover, Format::Png),
        spec(Some(300), None, Fit::Contain, Format::Png),
        spec(Some(120), Some(40), Fit::Stretch, Format::Png),
        spec(Some(200), Some(200), Fit::Cover, Format::Webp),
        spec(Some(200), Some(200), Fit::Cover, Format::Jpeg),
    ];
    for name in [
        "photo.jpg",
        "photo-rotated.jpg",
        "cmyk.jpg",
        "alpha.png",
        "gray16.png",
        "photo.webp",
        "lossless-alpha.webp",
        "photo.gif",
        "photo.tiff",
    ] {
        let input = fixture(name);
        let wasm = renderer(Engine::Wasm).render_standard(&input, MAX_PIXELS, &specs).expect(name);
        let native = renderer(Engine::Native).render_standard(&input, MAX_PIXELS, &specs).expect(name);
        for (i, (w, n)) in wasm.iter().zip(&native).enumerate() {
            let (w, n) = (w.as_ref().expect("wasm rendered"), n.as_ref().expect("native rendered"));
            assert_eq!((w.width, w.height, &w.mime), (n.width, n.height, &n.mime), "{name} spec {i}");
            let ratio = w.bytes.len() as f64 / n.bytes.len() as f64;
            assert!((0.9..=1.1).contains(&ratio), "{name} spec {i}: sizes {} vs {}", w.bytes.len(), n.bytes.len());
            if specs[i].format != Format::Webp {
                let diff = mean_diff(&w.bytes, &n.bytes);
                assert!(diff < 2.0, "{name} spec {i}: mean pixel difference {diff:.2}");
            }
        }
        // Exact sizes per fit, through the sandbox.
        let sizes: Vec<(u32, u32)> =
            wasm.iter().map(|r| r.as_ref().map(|r| (r.width, r.height)).expect("rendered")).collect();
        assert_eq!(sizes[0], (150, 150), "{name}: cover is exact");
        assert_eq!(sizes[2], (120, 40), "{name}: stretch is exact");
        assert_eq!(sizes[3], (200, 200), "{name}");
    }
}

/// `input` and `reference` rendered alike (300x200 stretch PNG) through `engine`: the mean
/// difference per channel, alpha included.
fn difference(engine: Engine, input: &[u8], reference: &[u8]) -> f64 {
    let specs = [spec(Some(300), Some(200), Fit::Stretch, Format::Png)];
    let render = |bytes: &[u8]| {
        let out = renderer(engine).render_standard(bytes, MAX_PIXELS, &specs).expect("renders");
        out.into_iter().next().expect("one").expect("rendered").bytes
    };
    mean_diff(&render(input), &render(reference))
}

#[test]
fn avif_input_decodes_in_the_sandbox_to_the_picture_it_was_made_from() {
    // Encoded elsewhere (libavif/libaom via Pillow and libvips): 4:2:0, 4:4:4, with alpha.
    for (avif, original) in [("photo.avif", "photo.jpg"), ("photo-444.avif", "photo.jpg"), ("alpha.avif", "alpha.png")]
    {
        let diff = difference(Engine::Wasm, &fixture(avif), &fixture(original));
        assert!(diff < 1.5, "{avif}: mean difference {diff:.2} from {original}");
    }
    // Our own AVIF (rav1e, 10-bit) read back: the round trip a re-upload of a variant makes.
    let ours = renderer(Engine::Wasm)
        .render_standard(&fixture("photo.jpg"), MAX_PIXELS, &[spec(Some(800), None, Fit::Contain, Format::Avif)])
        .expect("encodes");
    let ours = &ours[0].as_ref().expect("rendered").bytes;
    let diff = difference(Engine::Wasm, ours, &fixture("photo.jpg"));
    assert!(diff < 1.5, "our AVIF read back differs by {diff:.2}");

    // Broken or oversized AVIF is refused with a reason, and the engine goes on.
    let avif = fixture("photo.avif");
    let wasm = renderer(Engine::Wasm);
    let specs = [spec(Some(100), None, Fit::Contain, Format::Png)];
    for cut in [40, 400, avif.len() / 2, avif.len() - 10] {
        match wasm.render_standard(&avif[..cut], MAX_PIXELS, &specs) {
            Err(PluginFailure::Render(RenderError::UnsupportedInput(why))) => assert!(!why.is_empty()),
            other => panic!("AVIF cut at {cut} of {}: {other:?}", avif.len()),
        }
    }
    assert!(
        matches!(wasm.render_standard(&avif, 1_000_000, &specs), Err(PluginFailure::Render(RenderError::TooLarge(_)))),
        "1600x1203 is over a 1 MP limit"
    );
    assert!(wasm.render_standard(&avif, MAX_PIXELS, &specs).expect("whole")[0].is_ok(), "the engine goes on");

    // The native fallback does not decode AVIF: a panic in rav1d there would abort the process.
    match renderer(Engine::Native).render_standard(&avif, MAX_PIXELS, &specs) {
        Err(PluginFailure::Render(RenderError::UnsupportedInput(why))) => assert!(why.contains("sandbox"), "{why}"),
        other => panic!("native AVIF: {other:?}"),
    }
}

#[test]
fn orientation_and_avif_through_the_sandbox() {
    let out = renderer(Engine::Wasm)
        .render_standard(
            &fixture("photo-rotated.jpg"),
            MAX_PIXELS,
            &[spec(Some(300), None, Fit::Contain, Format::Avif)],
        )
        .expect("renders");
    let r = out[0].as_ref().expect("avif");
    assert_eq!((r.width, r.height, r.mime.as_str()), (300, 399, "image/avif"), "upright portrait");
    let size = imagesize::blob_size(&r.bytes).expect("avif header");
    assert_eq!((size.width, size.height), (300, 399));
    // The component hands encoding to the host's native encoders (an import it declares by name).
    let needle = b"mbk:plugin/codecs@0.3.0";
    assert!(
        STANDARD_COMPONENT.windows(needle.len()).any(|w| w == needle),
        "the standard component imports the host's codecs"
    );
}

#[test]
fn refusals_cross_the_boundary_typed() {
    let wasm = renderer(Engine::Wasm);
    assert!(matches!(
        wasm.render_standard(b"definitely not an image", MAX_PIXELS, &[]),
        Err(PluginFailure::Render(RenderError::UnsupportedInput(_)))
    ));
    assert!(matches!(
        wasm.render_standard(&fixture("photo.jpg"), 1000, &[]),
        Err(PluginFailure::Render(RenderError::TooLarge(_)))
    ));
    let out = wasm
        .render_standard(&fixture("photo.gif"), MAX_PIXELS, &[spec(None, None, Fit::Contain, Format::Png)])
        .expect("decodes");
    assert!(matches!(out[0], Err(RenderError::InvalidSpec(_))));
}

#[test]
fn the_deadline_stops_a_long_render_and_the_engine_carries_on() {
    let engine: Arc<PluginEngine> = PluginEngine::new(settings(512, Duration::from_millis(50))).expect("engine");
    let plugin = engine.load(STANDARD_COMPONENT).expect("loads");
    // A full-size AVIF encode takes seconds (the host encoder the component calls stops waiting
    // at the deadline, and the guest then meets it): far past 50 ms.
    let started = std::time::Instant::now();
    let result = engine.render(
        &plugin,
        &fixture("photo.jpg"),
        MAX_PIXELS,
        &[spec(Some(1600), None, Fit::Contain, Format::Avif)],
    );
    assert_eq!(result, Err(PluginFailure::Timeout(Duration::from_millis(50))));
    assert!(started.elapsed() < Duration::from_secs(5), "stopped promptly: {:?}", started.elapsed());
    // The next call gets a fresh store and works.
    let ok = engine
        .render(&plugin, &fixture("photo.gif"), MAX_PIXELS, &[spec(Some(10), Some(10), Fit::Cover, Format::Png)])
        .expect("works");
    assert!(ok[0].is_ok());
}

#[test]
fn the_memory_cap_stops_a_large_decode() {
    let engine = PluginEngine::new(settings(16, Duration::from_secs(60))).expect("engine");
    let plugin = engine.load(STANDARD_COMPONENT).expect("loads");
    // 2140x1200 RGBA is ~10 MiB decoded, plus copies: over 16 MiB.
    let result = engine.render(
        &plugin,
        &fixture("alpha.png"),
        MAX_PIXELS,
        &[spec(Some(2000), Some(1000), Fit::Stretch, Format::Png)],
    );
    assert_eq!(result, Err(PluginFailure::OutOfMemory(16)));
    let small = engine
        .render(&plugin, &fixture("photo.gif"), MAX_PIXELS, &[spec(Some(10), Some(10), Fit::Cover, Format::Png)])
        .expect("works");
    assert!(small[0].is_ok(), "the engine carries on");
}

#[test]
fn what_is_not_a_plugin_component_is_refused() {
    let engine = renderer(Engine::Wasm).plugins();
    for (what, bytes) in [
        ("random bytes", b"hello, world".to_vec()),
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
        ("empty", Vec::new()),
    ] {
        match engine.load(&bytes) {
            Err(PluginFailure::Invalid(reason)) => assert!(!reason.is_empty(), "{what}"),
            Err(other) => panic!("{what}: {other}"),
            Ok(_) => panic!("{what} was accepted"),
        }
    }
}

fn test_plugin(var_path: &str) -> Vec<u8> {
    let bytes = std::fs::read(var_path).unwrap_or_else(|e| panic!("{var_path}: {e}"));
    assert!(!bytes.is_empty(), "{var_path} is empty: host/build.rs could not build it (see the build warnings)");
    bytes
}

fn with_mode(mode: &str) -> Spec {
    let mut s = spec(Some(64), Some(64), Fit::Cover, Format::Png);
    s.params = vec![("mode".into(), mode.into())];
    s
}

#[test]
fn hostile_plugins_fail_their_render_and_nothing_else() {
    let renderer = Renderer::new(PipelineEngine::Wasm, settings(64, Duration::from_millis(300))).expect("renderer");
    let hostile = renderer.plugins().load(&test_plugin(env!("MBK_TEST_HOSTILE_WASM"))).expect("a valid component");
    let input = fixture("photo.gif");
    let run = |mode: &str| renderer.render_with(&hostile, &input, MAX_PIXELS, &[with_mode(mode)]);

    assert_eq!(
        run("loop"),
        Err(PluginFailure::Timeout(Duration::from_millis(300))),
        "an endless loop meets the deadline"
    );
    assert_eq!(run("alloc"), Err(PluginFailure::OutOfMemory(64)), "unbounded allocation meets the memory cap");
    match run("panic") {
        Err(PluginFailure::Trap(why)) => {
            assert!(why.contains("panics on purpose"), "the guest's panic message is kept: {why}")
        }
        other => panic!("panic: {other:?}"),
    }
    match run("wrong-count") {
        Err(PluginFailure::Trap(why)) => assert!(why.contains("0 results for 1"), "{why}"),
        other => panic!("wrong-count: {other:?}"),
    }
    let lied = run("wrong-size").expect("the call itself completes");
    match &lied[0] {
        Err(RenderError::Failed(why)) => assert!(why.contains("claims 64x64 but the image is 1x1"), "{why}"),
        other => panic!("wrong-size: {other:?}"),
    }
    assert!(
        matches!(run("log-flood"), Err(PluginFailure::Render(RenderError::Failed(_)))),
        "a log flood is cut, not fatal"
    );
    match run("avif-lies") {
        Err(PluginFailure::Render(RenderError::Failed(why))) => assert!(
            why.contains("Err(") && why.contains("30 bytes of pixels for 1000x1000"),
            "the host's encoders refuse a call whose pixels do not add up: {why}"
        ),
        other => panic!("avif-lies: {other:?}"),
    }

    // After all that, the same engine still renders the standard plugin correctly.
    let fine = renderer
        .render_standard(&input, MAX_PIXELS, &[spec(Some(64), Some(64), Fit::Cover, Format::Png)])
        .expect("fine");
    assert_eq!(fine[0].as_ref().map(|r| (r.width, r.height)).expect("rendered"), (64, 64));
}

#[test]
fn a_plugin_that_imports_the_filesystem_is_refused_at_load() {
    let engine = renderer(Engine::Wasm).plugins();
    match engine.load(&test_plugin(env!("MBK_TEST_SNOOP_WASM"))) {
        Err(PluginFailure::Invalid(why)) => assert!(why.contains("wasi:filesystem"), "{why}"),
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a plugin importing wasi:filesystem was accepted"),
    }
}

#[test]
fn the_example_third_party_plugin_renders_sepia() {
    let engine = renderer(Engine::Wasm);
    let sepia = engine.plugins().load(&test_plugin(env!("MBK_TEST_SEPIA_WASM"))).expect("loads");
    assert_eq!(sepia.info.name, "mbk-sepia");
    let out = engine
        .render_with(&sepia, &fixture("photo.jpg"), MAX_PIXELS, &[spec(Some(200), Some(150), Fit::Cover, Format::Png)])
        .expect("renders");
    let png = image::load_from_memory(&out[0].as_ref().expect("rendered").bytes).expect("png").to_rgb8();
    assert_eq!(png.dimensions(), (200, 150));
    let warm = png.pixels().filter(|p| p.0[0] >= p.0[1] && p.0[1] >= p.0[2]).count();
    assert!(warm as f64 > 0.95 * 200.0 * 150.0, "sepia tones: r >= g >= b almost everywhere ({warm} of 30000)");
    // Its SDK glue hands encoding to the host's native encoders (`encode_on_host`).
    let webp = engine
        .render_with(&sepia, &fixture("photo.jpg"), MAX_PIXELS, &[spec(Some(120), None, Fit::Contain, Format::Webp)])
        .expect("renders");
    let webp = &webp[0].as_ref().expect("rendered").bytes;
    assert_eq!(image::guess_format(webp).expect("a format"), image::ImageFormat::WebP);
    assert_eq!(image::load_from_memory(webp).expect("decodes").width(), 120);
    let mut bad = spec(Some(10), Some(10), Fit::Cover, Format::Png);
    bad.params = vec![("strength".into(), "2".into())];
    assert!(matches!(
        engine.render_with(&sepia, &fixture("photo.jpg"), MAX_PIXELS, &[bad]),
        Err(PluginFailure::Render(RenderError::InvalidSpec(_)))
    ));
}

#[test]
fn a_call_finding_every_sandbox_busy_is_told_so_and_the_next_one_works() {
    let mut one = settings(64, Duration::from_secs(2));
    one.instances = 1;
    let renderer = Arc::new(Renderer::new(PipelineEngine::Wasm, one).expect("renderer"));
    let hostile = renderer.plugins().load(&test_plugin(env!("MBK_TEST_HOSTILE_WASM"))).expect("a valid component");
    let input = fixture("photo.gif");
    let small = [spec(Some(8), Some(8), Fit::Cover, Format::Png)];

    // The only sandbox spins until its deadline; a call meanwhile finds none free. (Should the
    // second call win the slot, the spinning one is the refused one: try again.)
    let mut seen = Vec::new();
    for _ in 0..5 {
        let spinning = {
            let (renderer, hostile, input) = (Arc::clone(&renderer), hostile.clone(), input.clone());
            std::thread::spawn(move || renderer.render_with(&hostile, &input, MAX_PIXELS, &[with_mode("loop")]))
        };
        std::thread::sleep(Duration::from_millis(300));
        let second = renderer.render_standard(&input, MAX_PIXELS, &small).map(|_| ());
        let first = spinning.join().expect("joins").map(|_| ());
        if let (Err(PluginFailure::Timeout(_)), Err(refused)) = (&first, &second) {
            assert!(matches!(refused, PluginFailure::Busy(_)), "{refused:?}");
            assert!(refused.is_transient(), "worth a retry, not a failed variant");
            seen.clear();
            break;
        }
        seen.push((first, second));
    }
    assert!(seen.is_empty(), "never saw a call refused while the only sandbox spun: {seen:?}");
    let fine = renderer.render_standard(&input, MAX_PIXELS, &small).expect("a free sandbox again");
    assert!(fine[0].is_ok());
}
