//! The storage key layout of API.md, in one place, and [`BlobKey`]: a key that is safe on every
//! backend (no `..`, no absolute paths, no hidden segments, a small character set).
//!
//! - files: `{project_slug}-{project_id}/files/{uuid}.{ext}`
//! - images: `{project_slug}-{project_id}/images/original/{uuid}.{ext}`
//! - variants: `{project_slug}-{project_id}/images/{variant_name}/{uuid}.{format_ext}`

use std::fmt;
use uuid::Uuid;

use super::StorageError;

pub const MAX_KEY_LEN: usize = 1024;

/// A validated object key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// Accepts `seg/seg/...` where each segment is 1..=255 of `[A-Za-z0-9._-]`, does not start with
    /// a dot (so `.` and `..` and the filesystem store's `.tmp` can never be named).
    pub fn parse(raw: &str) -> Result<Self, StorageError> {
        let invalid = |why: &str| StorageError::InvalidKey(format!("invalid key {:?}: {why}", truncate(raw)));
        if raw.is_empty() {
            return Err(invalid("empty"));
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(invalid("longer than 1024 bytes"));
        }
        for segment in raw.split('/') {
            if segment.is_empty() {
                return Err(invalid("empty path segment"));
            }
            if segment.starts_with('.') {
                return Err(invalid("a segment may not start with a dot"));
            }
            if segment.len() > 255 {
                return Err(invalid("a segment is longer than 255 bytes"));
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return Err(invalid("only letters, digits, '.', '_' and '-' are allowed"));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn truncate(raw: &str) -> &str {
    match raw.char_indices().nth(64) {
        Some((i, _)) => &raw[..i],
        None => raw,
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The storage slug of a project name: lowercase ASCII letters and digits joined by single dashes,
/// at most 48 characters; `project` when nothing usable is left. Fixed at creation, never changes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len().min(48));
    let mut dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c.to_ascii_lowercase());
            if slug.len() >= 48 {
                break;
            }
        } else {
            dash = true;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "project".to_owned() } else { slug }
}

/// The folder of one project: every key of the project starts with it.
pub fn project_prefix(slug: &str, project_id: Uuid) -> String {
    format!("{slug}-{project_id}/")
}

/// The project whose folder (`{slug}-{project id}/`, see [`project_prefix`]) holds `key`.
pub fn project_id_of(key: &str) -> Option<Uuid> {
    let folder = key.split_once('/')?.0;
    let at = folder.len().checked_sub(36)?;
    Uuid::parse_str(folder.get(at..)?).ok()
}

fn build(key: String) -> BlobKey {
    // The parts are a slug, a UUID, a validated variant name and a known extension: always valid.
    BlobKey::parse(&key).unwrap_or_else(|e| panic!("key layout produced an invalid key: {e}"))
}

pub fn file_key(slug: &str, project_id: Uuid, file_id: Uuid, ext: &str) -> BlobKey {
    build(format!("{}files/{file_id}.{}", project_prefix(slug, project_id), clean_ext(ext)))
}

pub fn original_key(slug: &str, project_id: Uuid, file_id: Uuid, ext: &str) -> BlobKey {
    build(format!("{}images/original/{file_id}.{}", project_prefix(slug, project_id), clean_ext(ext)))
}

pub fn variant_key(slug: &str, project_id: Uuid, variant: &str, file_id: Uuid, format_ext: &str) -> BlobKey {
    build(format!("{}images/{variant}/{file_id}.{}", project_prefix(slug, project_id), clean_ext(format_ext)))
}

/// The key of a sibling of the variant at `key` (a `format: "auto"` variant's other formats):
/// the same folder and name, another extension.
pub fn sibling_key(key: &BlobKey, format_ext: &str) -> BlobKey {
    let stem = key.as_str().rsplit_once('.').map_or(key.as_str(), |(stem, _)| stem);
    build(format!("{stem}.{}", clean_ext(format_ext)))
}

/// Extensions come from our own sniffing table, but keep the layout total anyway.
fn clean_ext(ext: &str) -> String {
    let ext: String = ext.chars().filter(char::is_ascii_alphanumeric).take(10).collect::<String>().to_ascii_lowercase();
    if ext.is_empty() { "bin".to_owned() } else { ext }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_layout_of_the_contract() {
        let pid = Uuid::now_v7();
        let fid = Uuid::now_v7();
        assert_eq!(file_key("my-app", pid, fid, "pdf").as_str(), format!("my-app-{pid}/files/{fid}.pdf"));
        assert_eq!(original_key("my-app", pid, fid, "JPG").as_str(), format!("my-app-{pid}/images/original/{fid}.jpg"));
        assert_eq!(
            variant_key("my-app", pid, "thumbnail", fid, "webp").as_str(),
            format!("my-app-{pid}/images/thumbnail/{fid}.webp")
        );
        assert_eq!(file_key("a", pid, fid, "").as_str(), format!("a-{pid}/files/{fid}.bin"));
    }

    #[test]
    fn refuses_keys_that_could_escape_or_hide() {
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "../x", "a/./b", ".hidden", "a/.tmp/x", "a\\b", "a b", "a/b/", "é",
            "a\0b", "%2e%2e/x",
        ] {
            assert!(BlobKey::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(BlobKey::parse(&"a".repeat(1025)).is_err());
        assert!(BlobKey::parse("p-1/files/x.tar.gz").is_ok());
    }

    #[test]
    fn slugs_are_lowercase_ascii_with_single_dashes() {
        assert_eq!(slugify("My App"), "my-app");
        assert_eq!(slugify("  Hello,  World!! "), "hello-world");
        assert_eq!(slugify("Ünïcode Café 2"), "n-code-caf-2");
        assert_eq!(slugify("../../etc/passwd"), "etc-passwd");
        assert_eq!(slugify("???"), "project");
        assert_eq!(slugify(&"x".repeat(100)).len(), 48);
    }
}
