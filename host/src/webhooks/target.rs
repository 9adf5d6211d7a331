//! Where a webhook may point. A tenant names the URL and the host makes the requests, so the URL
//! must not reach what only the host can: its loopback, the private network it runs in, the
//! cloud's metadata service (link-local 169.254.169.254). Unless `WEBHOOK_ALLOW_PRIVATE=true`,
//! every address a name resolves to must be public, checked when the webhook is registered and
//! again at each delivery and each redirect, and the request goes to the address that was
//! checked (no second lookup a rebinding DNS server could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// A URL a webhook may have: `http` or `https`, a host, no credentials, at most 2048 bytes.
pub fn parse(raw: &str) -> Result<Url, String> {
    if raw.len() > 2048 {
        return Err("must be at most 2048 bytes".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be an http or https URL, got {}:", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
}

/// Why a URL's host gives no address to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// It resolves to an address a webhook may not reach: refused, now and later. The address
    /// is not named: a tenant must not map the host's internal network through our errors.
    NotAllowed(String),
    /// It does not resolve (now): a later attempt may do better.
    NoAddress(String),
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::NotAllowed(why) | Unreachable::NoAddress(why) => f.write_str(why),
        }
    }
}

/// How long a name may take to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The address to send to for `url`: its host resolved, every address allowed.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, Unreachable> {
    let no_address = |why: &str| Unreachable::NoAddress(why.to_owned());
    let host = url.host_str().ok_or_else(|| no_address("the URL names no host"))?;
    let port = url.port_or_known_default().ok_or_else(|| no_address("the URL names no port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let unresolved = || Unreachable::NoAddress(format!("the host {host:?} does not resolve"));
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((bare, port))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(_)) | Err(_) => return Err(unresolved()),
        },
    };
    let first = *addrs.first().ok_or_else(unresolved)?;
    if !allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(Unreachable::NotAllowed(format!(
            "{host} is, or resolves to, a private, loopback or link-local address (WEBHOOK_ALLOW_PRIVATE is off)"
        )));
    }
    Ok(first)
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation or otherwise reserved; for IPv6 also not
/// unique-local, and not an IPv4 address in disguise (mapped, compatible, NAT64, 6to4) of a
/// non-public one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded_v4(s[6], s[7])); // IPv4-compatible
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2])); // 6to4
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside some networks)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: an IPv4 address behind it
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for public in ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().expect("an IP")), "{public}");
        }
        for inner in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "fec0::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(inner.parse().expect("an IP")), "{inner}");
        }
    }

    #[test]
    fn urls_must_be_plain_http() {
        assert!(parse("https://hooks.example.com/in").is_ok());
        for bad in ["ftp://example.com/", "https://user:pw@example.com/", "not a url", "file:///etc/passwd"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn loopback_names_and_literals_are_refused_unless_allowed() {
        for url in ["http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost:9/x", "http://169.254.169.254/latest"]
        {
            let url = parse(url).expect("a URL");
            assert!(resolve(&url, false).await.is_err(), "{url}");
        }
        let url = parse("http://127.0.0.1:9/x").expect("a URL");
        assert_eq!(resolve(&url, true).await, Ok("127.0.0.1:9".parse().expect("an address")));
        let refused = resolve(&parse("http://localhost:9/").expect("a URL"), false).await;
        assert!(
            matches!(&refused, Err(Unreachable::NotAllowed(why)) if !why.contains("127.0.0.1") && !why.contains("::1")),
            "refused without naming what the name resolves to: {refused:?}"
        );
        let nowhere = resolve(&parse("http://no-such-host.invalid/").expect("a URL"), false).await;
        assert!(matches!(nowhere, Err(Unreachable::NoAddress(_))), "{nowhere:?}: worth another attempt");
    }
}
