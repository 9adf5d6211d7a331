//! Network addresses: [`Cidr`] ranges (`TRUSTED_PROXIES`) and who the client of a request is
//! when proxies stand in front of the host ([`client_address`]).

use std::net::IpAddr;

/// An address range such as `10.0.0.0/8`, `192.168.1.7` (one address) or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> Result<Cidr, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| format!("{raw:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{raw:?}: bad prefix length"))?
            }
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:10.0.0.1` is `10.0.0.1` (a dual-stack listener reports IPv4 peers that way).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Which header the trusted proxies write (`TRUSTED_PROXY_HEADER`). One, never a fallback to the
/// other: a proxy passes through the header it does not write, so a client could fill that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy, most load balancers).
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// The client of a request that arrived from `peer`. Only a peer in `trusted` may say who it
/// forwards for: then the chain of `header` (`value`: every line of it, joined with commas, since
/// a proxy may append a line of its own) is walked from the right, past every trusted hop, and
/// the first address that is not a trusted proxy is the client (addresses further left were
/// written by the client and prove nothing). Without trusted proxies the peer is the client,
/// whatever the headers say.
pub fn client_address(peer: IpAddr, trusted: &[Cidr], header: ForwardedHeader, value: Option<&str>) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let Some(value) = value.filter(|_| is_trusted(peer)) else { return peer };
    let hop = |element: &str| match header {
        ForwardedHeader::Forwarded => forwarded_for(element),
        ForwardedHeader::XForwardedFor => address(element.trim()),
    };
    for hop in value.split(',').map(hop).rev() {
        match hop {
            Some(ip) if is_trusted(canonical(ip)) => continue,
            Some(ip) => return canonical(ip),
            // An unreadable or obfuscated hop: nothing further left can be believed.
            None => break,
        }
    }
    peer
}

/// The address of one `Forwarded` element's `for=` (`for=192.0.2.1`, `for="[2001:db8::1]:4711"`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })?;
    address(value)
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1` or `[2001:db8::1]:443`.
fn address(value: &str) -> Option<IpAddr> {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    value
        .parse()
        .ok()
        .or_else(|| value.rsplit_once(':').and_then(|(ip, _)| ip.parse::<std::net::Ipv4Addr>().ok()).map(IpAddr::V4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ranges_parse_and_match() {
        let net = Cidr::parse("10.1.0.0/16").expect("cidr");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(Cidr::parse("127.0.0.1").expect("one").contains(ip("127.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").expect("all").contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fd00::/8").expect("v6").contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").expect("v6").contains(ip("10.0.0.1")));
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_trusted_peers_name_the_client() {
        let trusted = [Cidr::parse("127.0.0.0/8").expect("cidr"), Cidr::parse("10.0.0.0/8").expect("cidr")];
        let xff = ForwardedHeader::XForwardedFor;
        let spoofed = Some("203.0.113.9");
        assert_eq!(client_address(ip("198.51.100.1"), &trusted, xff, spoofed), ip("198.51.100.1"), "untrusted peer");
        assert_eq!(client_address(ip("198.51.100.1"), &[], xff, spoofed), ip("198.51.100.1"), "no proxies trusted");
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, xff, spoofed), ip("203.0.113.9"));
        // The client wrote the leftmost entry itself; the proxies appended the rest.
        let chain = Some("1.1.1.1, 203.0.113.9, 10.0.0.2");
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, xff, chain), ip("203.0.113.9"));
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, xff, Some("garbage")), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, xff, None), ip("127.0.0.1"));
        // Hops with ports, as some load balancers write them.
        let ports = Some("198.51.100.4:5678, [2001:db8::5]:443");
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, xff, ports), ip("2001:db8::5"));
    }

    #[test]
    fn forwarded_parses_ports_and_brackets() {
        let trusted = [Cidr::parse("127.0.0.1").expect("cidr")];
        let fwd = ForwardedHeader::Forwarded;
        let forwarded = Some(r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#);
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, fwd, forwarded), ip("2001:db8::7"));
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, fwd, Some("for=192.0.2.4:8080")), ip("192.0.2.4"));
        assert_eq!(client_address(ip("127.0.0.1"), &trusted, fwd, Some("for=_hidden")), ip("127.0.0.1"));
    }
}
