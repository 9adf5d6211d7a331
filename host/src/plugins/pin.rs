//! How a variant names its plugin: `name` (the newest version its project may use), `name@1.2.0`
//! (exactly that version) or `name@^1` / `name@~1.2` / any other semver requirement (the highest
//! version that meets it). Versions that are not semver can be had by their exact text or as
//! the newest, never through a range.

use crate::db::plugins::PluginRow;

/// A variant's `plugin`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    pub name: String,
    pub pin: Pin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// The most recently registered version.
    Newest,
    /// This version, by its text.
    Exact(String),
    /// The highest semver version meeting the requirement.
    Range(semver::VersionReq),
}

impl PluginRef {
    /// Parses `text`; `Err` says what is wrong, for a 400 naming the field.
    pub fn parse(text: &str) -> Result<PluginRef, String> {
        let (name, pin) = match text.split_once('@') {
            None => (text, Pin::Newest),
            Some((name, version)) if version.starts_with(|c: char| c.is_ascii_alphanumeric()) => {
                super::registry::check_version(version).map_err(|_| format!("{version:?} is not a version"))?;
                (name, Pin::Exact(version.to_owned()))
            }
            Some((name, requirement)) => {
                let req = semver::VersionReq::parse(requirement)
                    .map_err(|e| format!("{requirement:?} is not a semver requirement: {e}"))?;
                (name, Pin::Range(req))
            }
        };
        super::registry::check_name(name).map_err(|_| {
            format!("{name:?} is not a plugin name (1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit)")
        })?;
        Ok(PluginRef { name: name.to_owned(), pin })
    }

    /// The version of `versions` (one name's, newest first) this reference renders with.
    pub fn choose<'a>(&self, versions: &'a [PluginRow]) -> Option<&'a PluginRow> {
        match &self.pin {
            Pin::Newest => versions.first(),
            Pin::Exact(version) => versions.iter().find(|row| &row.version == version),
            Pin::Range(req) => versions
                .iter()
                .filter_map(|row| semver::Version::parse(&row.version).ok().map(|v| (v, row)))
                .filter(|(v, _)| req.matches(v))
                .max_by(|(a, _), (b, _)| a.cmp(b))
                .map(|(_, row)| row),
        }
    }

    /// Why nothing was chosen, for a variant's or a settings field's error.
    pub fn unmet(&self) -> String {
        match &self.pin {
            Pin::Newest => format!("no plugin named {:?} is registered", self.name),
            Pin::Exact(version) => format!("plugin {:?} has no version {version:?}", self.name),
            Pin::Range(req) => format!("no version of plugin {:?} meets {req}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: &str) -> PluginRow {
        PluginRow {
            id: uuid::Uuid::now_v7(),
            name: "sepia".into(),
            version: version.into(),
            sha256: String::new(),
            size: 0,
            world: String::new(),
            builtin: false,
            storage_key: None,
            created_at: chrono::Utc::now(),
            owner_id: None,
            params: None,
        }
    }

    #[test]
    fn pins_choose_the_newest_the_exact_or_the_highest_match() {
        // Newest first, as the registry lists them: 1.10.0 was registered after 2.0.0.
        let versions = [row("1.10.0"), row("2.0.0"), row("1.2.3"), row("nightly")];
        let pick = |text: &str| PluginRef::parse(text).expect("parses").choose(&versions).map(|r| r.version.clone());
        assert_eq!(pick("sepia").as_deref(), Some("1.10.0"));
        assert_eq!(pick("sepia@1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(pick("sepia@nightly").as_deref(), Some("nightly"));
        assert_eq!(pick("sepia@^1").as_deref(), Some("1.10.0"), "semver order, not text order");
        assert_eq!(pick("sepia@~1.2").as_deref(), Some("1.2.3"));
        assert_eq!(pick("sepia@>=2").as_deref(), Some("2.0.0"));
        assert_eq!(pick("sepia@^3"), None);
        assert_eq!(pick("sepia@1.2.4"), None);
    }

    #[test]
    fn malformed_references_are_refused_with_the_reason() {
        assert!(PluginRef::parse("Sepia").expect_err("upper case").contains("not a plugin name"));
        assert!(PluginRef::parse("sepia@^x").expect_err("bad range").contains("not a semver requirement"));
        assert!(PluginRef::parse("sepia@").expect_err("empty").contains("not a semver requirement"));
        assert!(PluginRef::parse("@^1").expect_err("no name").contains("not a plugin name"));
        assert_eq!(PluginRef::parse("sepia@^3").expect("parses").unmet(), "no version of plugin \"sepia\" meets ^3");
    }
}
