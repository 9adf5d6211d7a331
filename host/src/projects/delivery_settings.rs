//! The settings of how a project's media reaches clients: `visibility` (public, or private with
//! signed, expiring URLs: see [`crate::delivery`]), `url_ttl_seconds`, and the browser origins
//! of `cors_origins`. Part of [`super::settings::ProjectSettings`].

use serde::{Deserialize, Serialize};

use crate::error::Error;
use utoipa::ToSchema;

/// Who may fetch a project's blobs by URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

impl Visibility {
    pub(super) fn is_public(&self) -> bool {
        *self == Visibility::Public
    }
}

pub const DEFAULT_URL_TTL_SECONDS: u32 = 3600;
const MAX_CORS_ORIGINS: usize = 32;

/// An origin as browsers send it: `https://host[:port]` in lower case with nothing after it;
/// `http://` only for `localhost` and loopback addresses.
fn check_origin(origin: &str) -> Result<(), String> {
    let refuse = || Err(format!("must be an origin like https://app.example.com[:port], got {origin:?}"));
    let Some((scheme, authority)) = origin.split_once("://") else { return refuse() };
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some("") => ("[::1]", None),
        Some(rest) => match rest.strip_prefix(':') {
            Some(port) => ("[::1]", Some(port)),
            None => return refuse(),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    // Lower-case DNS labels (1 to 63 of a-z, 0-9, '-', not at either end), dot-separated.
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let host_ok = host == "[::1]" || (host.len() <= 253 && host.split('.').all(label));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0) && !p.starts_with('0'));
    let loopback =
        host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback());
    // Browsers never send a scheme's own port: an entry naming it would never match.
    let default_port = matches!((scheme, port), ("https", Some("443")) | ("http", Some("80")));
    if default_port {
        return Err(format!("{origin:?} names its scheme's default port, which browsers leave out of the origin"));
    }
    match scheme {
        "https" if host_ok && port_ok => Ok(()),
        "http" if host_ok && port_ok && loopback => Ok(()),
        "http" if host_ok && port_ok => {
            Err(format!("{origin:?} is plain http: only https origins (and http://localhost) are allowed"))
        }
        _ => refuse(),
    }
}
const URL_TTL_RANGE: std::ops::RangeInclusive<u32> = 60..=604_800;

pub(super) fn default_url_ttl() -> u32 {
    DEFAULT_URL_TTL_SECONDS
}

pub(super) fn is_default_url_ttl(ttl: &u32) -> bool {
    *ttl == DEFAULT_URL_TTL_SECONDS
}

/// The rules of `url_ttl_seconds` and `cors_origins`, each refusal naming its field under `prefix`.
pub(super) fn validate(url_ttl_seconds: u32, cors_origins: &[String], prefix: &str) -> Result<(), Error> {
    if !URL_TTL_RANGE.contains(&url_ttl_seconds) {
        return Err(Error::validation(
            format!("{prefix}.url_ttl_seconds"),
            format!("must be 60..=604800, got {}", url_ttl_seconds),
        ));
    }
    if cors_origins.len() > MAX_CORS_ORIGINS {
        return Err(Error::validation(format!("{prefix}.cors_origins"), format!("at most {MAX_CORS_ORIGINS} origins")));
    }
    for (i, origin) in cors_origins.iter().enumerate() {
        if let Err(why) = check_origin(origin) {
            return Err(Error::validation(format!("{prefix}.cors_origins[{i}]"), why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_origin;

    #[test]
    fn origins_are_what_browsers_send() {
        for ok in [
            "https://app.example.com",
            "https://a-b.example.com:8443",
            "http://localhost:5173",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
        ] {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example.com",
            "http://127.evil.com",
            "https://app.example.com/",
            "https://APP.example.com",
            "https://-a.example.com",
            "https://a..b",
            "https://example.com.",
            "https://example.com:443",
            "https://example.com:0",
            "https://example.com:08443",
            "ftp://example.com",
            "example.com",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }
}
