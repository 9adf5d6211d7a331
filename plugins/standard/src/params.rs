//! Typed params (world 0.2.0): what a plugin declares it takes, and the one check of a value
//! against a declaration, shared by the host (it refuses a project's bad `params` when the
//! settings are saved) and plugins (the SDK reads values with it).

/// The type of a param's value; values travel as strings (`-3`, `0.5`, `true`, an enum value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ParamType {
    String,
    Int,
    Float,
    Bool,
    Enum,
}

/// One param a plugin takes, in the shape the API shows it (`GET /plugins/{id}`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Param {
    pub name: String,
    #[cfg_attr(feature = "serde", serde(rename = "type"))]
    pub kind: ParamType,
    /// What the plugin uses when a variant does not set it.
    pub default: Option<String>,
    /// Inclusive bounds of an `Int` or `Float` value, or of a `String`'s length in characters.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The allowed values of an `Enum`.
    pub values: Vec<String>,
    pub description: String,
}

impl Param {
    fn new(name: &str, kind: ParamType, default: Option<String>) -> Param {
        Param { name: name.into(), kind, default, min: None, max: None, values: Vec::new(), description: String::new() }
    }

    /// A number from `min` to `max` (inclusive), `default` when unset.
    pub fn float(name: &str, min: f64, max: f64, default: f64) -> Param {
        Param { min: Some(min), max: Some(max), ..Param::new(name, ParamType::Float, Some(default.to_string())) }
    }

    /// A whole number from `min` to `max` (inclusive), `default` when unset.
    pub fn int(name: &str, min: i64, max: i64, default: i64) -> Param {
        Param {
            min: Some(min as f64),
            max: Some(max as f64),
            ..Param::new(name, ParamType::Int, Some(default.to_string()))
        }
    }

    pub fn bool(name: &str, default: bool) -> Param {
        Param::new(name, ParamType::Bool, Some(default.to_string()))
    }

    /// One of `values`, `default` when unset.
    pub fn one_of(name: &str, values: &[&str], default: &str) -> Param {
        Param {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            ..Param::new(name, ParamType::Enum, Some(default.into()))
        }
    }

    /// Any text of at most `max_chars` characters, `default` when unset (`None`: no default).
    pub fn string(name: &str, max_chars: usize, default: Option<&str>) -> Param {
        Param { max: Some(max_chars as f64), ..Param::new(name, ParamType::String, default.map(Into::into)) }
    }

    /// The same param, described (shown by `GET /plugins/{id}`).
    pub fn describe(mut self, description: &str) -> Param {
        self.description = description.into();
        self
    }

    /// Whether `value` is a value of this param; why not, in words naming neither the param nor
    /// the plugin (the caller says where it was).
    pub fn check(&self, value: &str) -> Result<(), String> {
        let within = |x: f64, unit: &str| match (self.min, self.max) {
            (Some(min), _) if x < min => Err(format!("must be at least {min}{unit}, got {value:?}")),
            (_, Some(max)) if x > max => Err(format!("must be at most {max}{unit}, got {value:?}")),
            _ => Ok(()),
        };
        match self.kind {
            ParamType::Int => match value.parse::<i64>() {
                Ok(n) => within(n as f64, ""),
                Err(_) => Err(format!("must be a whole number, got {value:?}")),
            },
            ParamType::Float => match value.parse::<f64>() {
                Ok(x) if x.is_finite() => within(x, ""),
                _ => Err(format!("must be a number, got {value:?}")),
            },
            ParamType::Bool if matches!(value, "true" | "false") => Ok(()),
            ParamType::Bool => Err(format!("must be true or false, got {value:?}")),
            ParamType::Enum if self.values.iter().any(|v| v == value) => Ok(()),
            ParamType::Enum => Err(format!("must be one of {}, got {value:?}", self.values.join(", "))),
            ParamType::String => within(value.chars().count() as f64, " characters long"),
        }
    }
}

/// Checks a variant's `given` params against a plugin's declaration: `Err((param, why))` for the
/// first one that is not declared or not a value of its type.
pub fn check_all<'a>(
    declared: &[Param],
    given: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), (String, String)> {
    for (name, value) in given {
        let Some(param) = declared.iter().find(|p| p.name == name) else {
            let why = if declared.is_empty() {
                "the plugin takes no params".to_owned()
            } else {
                let names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
                format!("the plugin takes no such param (it takes {})", names.join(", "))
            };
            return Err((name.to_owned(), why));
        };
        param.check(value).map_err(|why| (name.to_owned(), why))?;
    }
    Ok(())
}

/// What is wrong with a plugin's declaration, if anything: names (1 to 64 of `a-z 0-9 _ -`,
/// unique), bounds in order, an enum's values, a default of the param's own type.
pub fn check_declaration(declared: &[Param]) -> Result<(), String> {
    const MAX_PARAMS: usize = 64;
    if declared.len() > MAX_PARAMS {
        return Err(format!("declares {} params (at most {MAX_PARAMS})", declared.len()));
    }
    for (i, param) in declared.iter().enumerate() {
        let name = &param.name;
        let well_named = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !well_named {
            return Err(format!("param name {name:?} is not 1 to 64 of a-z, 0-9, '_' and '-'"));
        }
        if declared[..i].iter().any(|p| &p.name == name) {
            return Err(format!("param {name:?} is declared twice"));
        }
        if param.min.is_some_and(|m| !m.is_finite()) || param.max.is_some_and(|m| !m.is_finite()) {
            return Err(format!("param {name:?} has a bound that is not a number"));
        }
        if let (Some(min), Some(max)) = (param.min, param.max)
            && min > max
        {
            return Err(format!("param {name:?} has min {min} above max {max}"));
        }
        if param.kind == ParamType::Enum && param.values.is_empty() {
            return Err(format!("enum param {name:?} has no values"));
        }
        if let Some(default) = &param.default {
            param.check(default).map_err(|why| format!("the default of param {name:?} {why}"))?;
        }
        if param.description.len() > 1024 {
            return Err(format!("the description of param {name:?} is over 1024 bytes"));
        }
    }
    Ok(())
}

/// The params the standard plugin takes: none (its variants are entirely their size, fit,
/// format and quality). The component's `info()` and the host's native fallback both answer this.
pub fn standard() -> Vec<Param> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_type() {
        let strength = Param::float("strength", 0.0, 1.0, 1.0);
        assert_eq!(strength.check("0.25"), Ok(()));
        assert_eq!(strength.check("1"), Ok(()));
        assert!(strength.check("1.5").expect_err("refused").contains("at most 1"));
        assert!(strength.check("NaN").expect_err("refused").contains("must be a number"));
        assert!(strength.check("lots").is_err());
        let radius = Param::int("radius", 1, 10, 3);
        assert_eq!(radius.check("10"), Ok(()));
        assert!(radius.check("2.5").expect_err("refused").contains("whole number"));
        assert!(radius.check("0").expect_err("refused").contains("at least 1"));
        assert_eq!(Param::bool("flip", false).check("true"), Ok(()));
        assert!(Param::bool("flip", false).check("yes").is_err());
        let mode = Param::one_of("mode", &["soft", "hard"], "soft");
        assert_eq!(mode.check("hard"), Ok(()));
        assert!(mode.check("Hard").expect_err("refused").contains("one of soft, hard"));
        let label = Param::string("label", 3, None);
        assert_eq!(label.check("äöü"), Ok(()));
        assert!(label.check("abcd").is_err());
    }

    #[test]
    fn a_variants_params_are_checked_against_the_declaration() {
        let declared = [Param::float("strength", 0.0, 1.0, 1.0), Param::bool("flip", false)];
        assert_eq!(check_all(&declared, [("strength", "0.5"), ("flip", "true")]), Ok(()));
        let (name, why) = check_all(&declared, [("strenght", "0.5")]).expect_err("refused");
        assert_eq!(name, "strenght");
        assert!(why.contains("it takes strength, flip"), "{why}");
        assert_eq!(check_all(&declared, [("strength", "2")]).expect_err("refused").0, "strength");
        assert_eq!(check_all(&[], [("any", "x")]).expect_err("refused").1, "the plugin takes no params");
    }

    #[test]
    fn bad_declarations_are_named() {
        assert_eq!(check_declaration(&[Param::float("a", 0.0, 1.0, 0.5), Param::bool("b", true)]), Ok(()));
        assert!(
            check_declaration(&[Param::bool("a", true), Param::bool("a", false)])
                .expect_err("refused")
                .contains("twice")
        );
        assert!(check_declaration(&[Param::bool("Bad Name", true)]).is_err());
        assert!(
            check_declaration(&[Param::float("a", 1.0, 0.0, 0.5)]).expect_err("refused").contains("min 1 above max 0")
        );
        assert!(check_declaration(&[Param::float("a", 0.0, 1.0, 2.0)]).expect_err("refused").contains("default"));
        assert!(check_declaration(&[Param::one_of("m", &[], "x")]).expect_err("refused").contains("no values"));
    }
}
