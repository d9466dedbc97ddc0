//! The forwarded headers the gateway puts on proxied requests (`X-Forwarded-For`,
//! `X-Forwarded-Proto`, `X-Forwarded-Host`, RFC 7239 `Forwarded`), so the application behind it
//! still sees who the client is. Client-supplied values are replaced unless the immediate peer is
//! a trusted proxy, whose values are extended. No pingora types: the glue applies the result.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;
use std::str::FromStr;

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(ip).into(), self.prefix, 32) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `value` with all but its first `prefix` bits (of `width`) cleared.
fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    let host_bits = u32::from(width - prefix.min(width));
    value
        .checked_shr(host_bits)
        .unwrap_or(0)
        .checked_shl(host_bits)
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; host bits must be zero.
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
        };
        let cidr = Cidr { network, prefix };
        if bits(network) != masked(bits(network), prefix, width) {
            return Err(format!(
                "{text:?} has host bits set after /{prefix}: write the network address"
            ));
        }
        Ok(cidr)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

/// What the gateway knows about the hop from the client to itself.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The TCP peer (the client, or a proxy in front of the gateway).
    pub peer: Option<IpAddr>,
    /// True when the client connection is TLS.
    pub https: bool,
    /// The host the client asked for (`Host` or the request's authority).
    pub host: Option<&'a str>,
}

/// The forwarded-header policy: which peers are trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    trusted: Vec<Cidr>,
}

/// One header change: set to the value, or remove when `None`.
pub type HeaderChange = (HeaderName, Option<HeaderValue>);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = http::header::FORWARDED;

impl Forwarding {
    /// A policy trusting the peers inside `trusted`.
    pub fn new(trusted: Vec<Cidr>) -> Self {
        Forwarding { trusted }
    }

    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted.iter().any(|c| c.contains(ip)))
    }

    /// The changes to make to a proxied request's `incoming` headers. From an untrusted peer
    /// the four headers describe this hop alone (client values are dropped); from a trusted
    /// proxy, `X-Forwarded-For` and `Forwarded` get this hop appended and the proxy's
    /// `X-Forwarded-Proto`/`-Host` are kept when present.
    pub fn changes(&self, incoming: &HeaderMap, hop: &Hop<'_>) -> Vec<HeaderChange> {
        let trusted = self.trusts(hop.peer);
        let proto = if hop.https { "https" } else { "http" };
        let earlier = |name: &HeaderName| trusted.then(|| joined(incoming, name)).flatten();
        let chain = |name: &HeaderName, this: Option<String>| match (earlier(name), this) {
            (Some(before), Some(this)) => Some(format!("{before}, {this}")),
            (before, this) => this.or(before),
        };
        let keep_or = |name: &HeaderName, ours: Option<String>| earlier(name).or(ours);
        let values = [
            (
                X_FORWARDED_FOR,
                chain(
                    &X_FORWARDED_FOR,
                    hop.peer.map(|p| p.to_canonical().to_string()),
                ),
            ),
            (
                X_FORWARDED_PROTO,
                keep_or(&X_FORWARDED_PROTO, Some(proto.to_string())),
            ),
            (
                X_FORWARDED_HOST,
                keep_or(&X_FORWARDED_HOST, hop.host.map(str::to_string)),
            ),
            (
                FORWARDED,
                chain(&FORWARDED, Some(forwarded_element(hop, proto))),
            ),
        ];
        values
            .into_iter()
            .map(|(name, value)| (name, value.and_then(|v| HeaderValue::from_str(&v).ok())))
            .collect()
    }
}

/// All values of `name`, joined with `", "`; `None` when absent or not text.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// This hop as one RFC 7239 element: `for=...;host=...;proto=...`.
fn forwarded_element(hop: &Hop<'_>, proto: &str) -> String {
    let node = match hop.peer.map(|p| p.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => format!("\"[{v6}]\""),
        None => "unknown".to_string(),
    };
    let mut element = format!("for={node}");
    if let Some(host) = hop.host.filter(|h| h.bytes().all(|b| b.is_ascii_graphic())) {
        element.push_str(&format!(";host={}", token_or_quoted(host)));
    }
    element.push_str(&format!(";proto={proto}"));
    element
}

/// `value` as an RFC 7230 token when it is one, else as a quoted string.
fn token_or_quoted(value: &str) -> String {
    let token = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        value.to_string()
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn applied(changes: Vec<HeaderChange>) -> Vec<(String, Option<String>)> {
        changes
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.map(|v| v.to_str().unwrap().to_string())))
            .collect()
    }

    fn some(name: &str, value: &str) -> (String, Option<String>) {
        (name.to_string(), Some(value.to_string()))
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let lan = cidr("10.1.0.0/16");
        assert!(lan.contains("10.1.200.3".parse().unwrap()));
        assert!(!lan.contains("10.2.0.1".parse().unwrap()));
        assert!(
            lan.contains("::ffff:10.1.0.9".parse().unwrap()),
            "mapped v4"
        );
        assert!(!lan.contains("2001:db8::1".parse().unwrap()));
        let one = cidr("192.0.2.7");
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
        assert!(cidr("::/0").contains("::1".parse().unwrap()));
    }

    proptest::proptest! {
        /// A block holds exactly the addresses that share its first `prefix` bits (written
        /// independently of `masked`: bit by bit).
        #[test]
        fn a_block_holds_the_addresses_sharing_its_prefix(
            base in proptest::prelude::any::<u128>(),
            host in proptest::prelude::any::<u128>(),
            flip in proptest::prelude::any::<u8>(),
            prefix in 0u8..=128,
        ) {
            let bit = |v: u128, i: u8| (v >> (127 - u32::from(i))) & 1;
            let network: u128 = (0..prefix).map(|i| bit(base, i) << (127 - u32::from(i))).sum();
            // Same prefix, any host part; then, when the prefix is not empty, one prefix bit flipped.
            let inside = network | (host & u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0));
            let block = cidr(&format!("{}/{prefix}", std::net::Ipv6Addr::from(network)));
            let v6 = |v: u128| IpAddr::V6(std::net::Ipv6Addr::from(v));
            let mapped = |v: u128| v6(v).to_canonical().is_ipv4();
            proptest::prop_assert_eq!(block.contains(v6(inside)), !mapped(inside));
            if prefix > 0 {
                let outside = inside ^ (1 << (127 - u32::from(flip % prefix)));
                proptest::prop_assert!(!block.contains(v6(outside)));
            }
        }
    }

    #[test]
    fn bad_cidr_blocks_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "proxy.local",
            "10.0.0.0/x",
            "::1/129",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_gets_its_own_values_only() {
        let policy = Forwarding::new(vec![cidr("10.0.0.0/8")]);
        let spoofed = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let hop = Hop {
            peer: Some("203.0.113.9".parse().unwrap()),
            https: false,
            host: Some("app.example:8080"),
        };
        assert_eq!(
            applied(policy.changes(&spoofed, &hop)),
            vec![
                some("x-forwarded-for", "203.0.113.9"),
                some("x-forwarded-proto", "http"),
                some("x-forwarded-host", "app.example:8080"),
                some(
                    "forwarded",
                    "for=203.0.113.9;host=\"app.example:8080\";proto=http"
                ),
            ]
        );
    }

    #[test]
    fn a_trusted_proxy_is_extended() {
        let policy = Forwarding::new(vec![cidr("10.0.0.0/8")]);
        let from_proxy = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "172.16.0.1"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=198.51.100.1;proto=https"),
        ]);
        let hop = Hop {
            peer: Some("::ffff:10.0.0.5".parse().unwrap()),
            https: false,
            host: Some("app.example"),
        };
        assert_eq!(
            applied(policy.changes(&from_proxy, &hop)),
            vec![
                some("x-forwarded-for", "198.51.100.1, 172.16.0.1, 10.0.0.5"),
                some("x-forwarded-proto", "https"),
                some("x-forwarded-host", "app.example"),
                some(
                    "forwarded",
                    "for=198.51.100.1;proto=https, for=10.0.0.5;host=app.example;proto=http"
                ),
            ]
        );
    }

    #[test]
    fn ipv6_peers_are_quoted_and_unknown_peers_remove_the_list() {
        let policy = Forwarding::default();
        let hop = Hop {
            peer: Some("2001:db8::7".parse().unwrap()),
            https: true,
            host: None,
        };
        let got = applied(policy.changes(&HeaderMap::new(), &hop));
        assert_eq!(got[0], some("x-forwarded-for", "2001:db8::7"));
        assert_eq!(got[1], some("x-forwarded-proto", "https"));
        assert_eq!(got[2], ("x-forwarded-host".to_string(), None));
        assert_eq!(
            got[3],
            some("forwarded", "for=\"[2001:db8::7]\";proto=https")
        );
        let nobody = Hop {
            peer: None,
            https: false,
            host: Some("h"),
        };
        let got = applied(policy.changes(&headers(&[("x-forwarded-for", "1.2.3.4")]), &nobody));
        assert_eq!(got[0], ("x-forwarded-for".to_string(), None));
        assert_eq!(got[3], some("forwarded", "for=unknown;host=h;proto=http"));
    }
}
