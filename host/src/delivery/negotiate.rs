//! Which sibling of a `format: "auto"` variant a request gets, from its `Accept` header: AVIF
//! before WebP before the fallback (JPEG, or PNG for images with alpha), among those the header
//! takes with the highest q-value.
//!
//! AVIF and WebP go only to clients that name them (`image/avif`, `image/webp`): a wildcard
//! (`*/*`, `image/*`) is also what clients send that decode neither, so it gets the fallback,
//! which every client decodes. That is what browsers rely on (each names the modern formats it
//! takes) and what imgproxy and Cloudinary do. A header that takes nothing on offer gets the
//! fallback too rather than a 406: an `<img>` shows it.

/// The sibling to serve, by format name (`avif`, `webp`, `jpeg`, `png`), out of `offered` (best
/// first, the fallback last).
pub fn choose<'a>(accept: Option<&str>, offered: &[&'a str]) -> Option<&'a str> {
    let fallback = *offered.last()?;
    let Some(accept) = accept else { return Some(fallback) };
    let ranges = parse(accept);
    let mut best: Option<(f32, &str)> = None;
    for &format in offered {
        let mime = format!("image/{format}");
        let q = if format == fallback { q_of(&ranges, &mime, true) } else { q_of(&ranges, &mime, false) };
        // Strictly higher: among equals the earlier (better) format stays.
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    Some(best.map_or(fallback, |(_, format)| format))
}

/// The media ranges of an `Accept` header with their q-values (1 when absent; malformed ones
/// are skipped).
fn parse(accept: &str) -> Vec<(String, f32)> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut fields = part.split(';');
            let range = fields.next()?.trim().to_ascii_lowercase();
            if !range.contains('/') {
                return None;
            }
            let mut q = 1.0;
            for param in fields {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some((range, q))
        })
        .collect()
}

/// The q-value of `mime` under the most specific range naming it: exactly, or (when
/// `wildcards`) `image/*`, then `*/*`. 0 when none does.
fn q_of(ranges: &[(String, f32)], mime: &str, wildcards: bool) -> f32 {
    let exact = ranges.iter().find(|(r, _)| r == mime);
    let found = if wildcards {
        exact
            .or_else(|| ranges.iter().find(|(r, _)| r == "image/*"))
            .or_else(|| ranges.iter().find(|(r, _)| r == "*/*"))
    } else {
        exact
    };
    found.map_or(0.0, |(_, q)| *q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERED: [&str; 3] = ["avif", "webp", "jpeg"];

    #[test]
    fn browsers_get_what_they_name() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(choose(Some(chrome), &OFFERED), Some("avif"));
        let old_chrome = "image/webp,image/apng,image/*,*/*;q=0.8";
        assert_eq!(choose(Some(old_chrome), &OFFERED), Some("webp"));
        let safari_15 = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
        assert_eq!(choose(Some(safari_15), &OFFERED), Some("webp"));
    }

    #[test]
    fn wildcards_and_no_header_get_the_fallback() {
        assert_eq!(choose(Some("*/*"), &OFFERED), Some("jpeg"));
        assert_eq!(choose(Some("image/*"), &OFFERED), Some("jpeg"));
        assert_eq!(choose(None, &OFFERED), Some("jpeg"));
        assert_eq!(choose(Some("text/html"), &OFFERED), Some("jpeg"), "nothing on offer: still the fallback");
        assert_eq!(choose(Some("*/*"), &["avif", "webp", "png"]), Some("png"));
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(choose(Some("image/avif;q=0.5,image/webp;q=0.9"), &OFFERED), Some("webp"));
        assert_eq!(choose(Some("image/avif;q=0,image/webp;q=0,*/*"), &OFFERED), Some("jpeg"));
        assert_eq!(choose(Some("image/avif;q=0.4, image/jpeg"), &OFFERED), Some("jpeg"));
        assert_eq!(choose(Some("image/avif, image/webp"), &OFFERED), Some("avif"), "a tie goes to the better");
        assert_eq!(choose(Some("IMAGE/WEBP ; Q=0.7"), &OFFERED), Some("webp"));
        assert_eq!(choose(Some("image/avif;q=2,image/webp"), &OFFERED), Some("webp"), "a malformed q is skipped");
    }
}
