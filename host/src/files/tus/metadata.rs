//! `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be missing). Only
//! `filename` (or `name`, as Uppy sends it) and `kind` mean something here; other keys are kept
//! (HEAD echoes the header) but ignored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};

/// Longer headers are refused: the header is stored and echoed.
pub const MAX_LEN: usize = 4096;

/// What an upload's metadata says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub filename: Option<String>,
    /// `file`, `image` or `any`, as for upload tokens.
    pub kind: Option<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::validation("Upload-Metadata", message)
}

/// Parses the header's value.
pub fn parse(raw: &str) -> Result<Metadata> {
    if raw.len() > MAX_LEN {
        return Err(invalid(format!("at most {MAX_LEN} bytes")));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut metadata = Metadata::default();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = pair.split(' ').filter(|w| !w.is_empty());
        let key = words.next().unwrap_or_default();
        let value = words.next();
        if words.next().is_some() {
            return Err(invalid(format!("{key:?}: a pair is a key and one base64 value")));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("keys are printable ASCII"));
        }
        if seen.contains(&key) {
            return Err(invalid(format!("the key {key:?} appears twice")));
        }
        seen.push(key);
        let decoded = match value {
            Some(v) => {
                let bytes = STANDARD.decode(v).map_err(|_| invalid(format!("{key}: the value is not base64")))?;
                Some(bytes)
            }
            None => None,
        };
        let text = |bytes: Option<Vec<u8>>| -> Result<Option<String>> {
            bytes.map(|b| String::from_utf8(b).map_err(|_| invalid(format!("{key}: not UTF-8")))).transpose()
        };
        match key {
            "filename" => metadata.filename = text(decoded)?,
            "name" if metadata.filename.is_none() => metadata.filename = text(decoded)?,
            "kind" => {
                let kind = text(decoded)?.unwrap_or_default();
                if !matches!(kind.as_str(), "file" | "image" | "any") {
                    return Err(invalid(format!("kind must be file, image or any, got {kind:?}")));
                }
                metadata.kind = Some(kind);
            }
            _ => {}
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn reads_filename_and_kind() {
        let raw = format!("filename {},kind {}, filetype {}, is_confidential", b64("cat.png"), b64("image"), b64("x"));
        let m = parse(&raw).expect("parses");
        assert_eq!(m, Metadata { filename: Some("cat.png".into()), kind: Some("image".into()) });
        assert_eq!(parse("").expect("empty"), Metadata::default());
        assert_eq!(parse(&format!("name {}", b64("a.txt"))).expect("uppy").filename.as_deref(), Some("a.txt"));
    }

    #[test]
    fn refuses_what_is_not_metadata() {
        for bad in [
            format!("kind {}", b64("video")),
            "filename !!!".to_owned(),
            format!("filename {} extra", b64("a")),
            format!("filename {0},filename {0}", b64("a")),
            format!("filename {}", STANDARD.encode([0xff, 0xfe])),
            "x".repeat(MAX_LEN + 1),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
