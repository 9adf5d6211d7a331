//! `mbk-sepia`: an example of a third-party plugin. It renders every variant in sepia tones, with
//! a typed `strength` param (a float 0.0..=1.0, default 1.0: the host refuses other values when a
//! project is saved). Everything but the tone comes from the SDK (`mbk-plugin-sdk`: the standard
//! library's decode, resize and encode, and the host's encoders); the component glue is its
//! `component!` at the end.

use mbk_plugin_sdk::{Decoded, Param, Plugin, RenderError, Rendered, Spec};

/// The one param: how far towards sepia.
pub fn strength() -> Param {
    Param::float("strength", 0.0, 1.0, 1.0).describe("How far towards sepia: 0 leaves the colours, 1 is full sepia")
}

/// Applies the classic sepia matrix, blended with the original by `strength`.
pub fn sepia(image: &mut Decoded, strength: f32) {
    let channels = if image.has_alpha { 4 } else { 3 };
    for px in image.pixels.chunks_exact_mut(channels) {
        let (r, g, b) = (f32::from(px[0]), f32::from(px[1]), f32::from(px[2]));
        let tone =
            [0.393 * r + 0.769 * g + 0.189 * b, 0.349 * r + 0.686 * g + 0.168 * b, 0.272 * r + 0.534 * g + 0.131 * b];
        for (c, t) in px.iter_mut().zip(tone) {
            *c = (f32::from(*c) * (1.0 - strength) + t.min(255.0) * strength).round() as u8;
        }
    }
}

/// `strength` from the variant's params (the first spec's: one decode serves every spec).
pub fn render(
    input: &[u8],
    max_pixels: u64,
    specs: &[Spec],
) -> Result<Vec<Result<Rendered, RenderError>>, RenderError> {
    let strength: f32 = mbk_plugin_sdk::value(specs, &strength())?;
    mbk_plugin_sdk::render_filtered(input, max_pixels, specs, |image| {
        sepia(image, strength);
        Ok(())
    })
}

mbk_plugin_sdk::component!(
    Plugin {
        name: "mbk-sepia",
        description: "Variants in sepia tones",
        params: vec![strength()],
        render: crate::render,
        render_analysed: None,
        encode_on_host: true,
    },
    wit: "../../../wit",
);

#[cfg(test)]
mod tests {
    #[test]
    fn sepia_warms_grey() {
        let mut image = mbk_plugin_sdk::Decoded { width: 1, height: 1, pixels: vec![100, 100, 100], has_alpha: false };
        super::sepia(&mut image, 1.0);
        let [r, g, b] = [image.pixels[0], image.pixels[1], image.pixels[2]];
        assert!(r > g && g > b, "{r} {g} {b}");
    }

    #[test]
    fn the_declaration_is_one_the_host_takes() {
        let plugin = super::component::plugin();
        assert_eq!(mbk_plugin_sdk::check(&plugin), Ok(()));
        assert_eq!(plugin.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["strength"]);
    }
}
