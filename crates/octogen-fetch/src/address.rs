//! Which addresses are on the public internet. Everything else — the
//! server's own host, its network, cloud metadata services, and the IPv6
//! forms that tunnel or translate to IPv4 — is refused unless an operator
//! names the target in `fetch_allow_private`.
//!
//! IPv6 is judged by what it reaches: only global unicast (`2000::/3`) is
//! public, minus the special ranges inside it; the forms that embed an IPv4
//! address (IPv4-mapped, IPv4-compatible, 6to4) are judged by that address.
//! NAT64 and Teredo are refused outright: where they lead depends on a
//! translator this server cannot see.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The rule that makes an address non-public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Unspecified,
    /// `0.0.0.0/8` other than `0.0.0.0`.
    ThisNetwork,
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`).
    Private,
    /// `fc00::/7`.
    UniqueLocal,
    /// Carrier-grade NAT, `100.64.0.0/10` (RFC 6598).
    SharedAddressSpace,
    /// `169.254/16`, `fe80::/10` (cloud metadata services live here).
    LinkLocal,
    /// `fec0::/10`, deprecated but still routed by some networks.
    SiteLocal,
    Multicast,
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, `2001:2::/48`.
    Benchmarking,
    /// `192.0.0/24`, `2001::/23` (outside Teredo).
    ProtocolAssignment,
    /// `192.88.99/24`, the deprecated 6to4 relay anycast.
    SixToFourRelay,
    /// `240/4`, and IPv6 outside global unicast.
    Reserved,
    /// `100::/64`.
    DiscardOnly,
    /// `64:ff9b::/96` and `64:ff9b:1::/48`.
    Nat64,
    /// `2001::/32`.
    Teredo,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::Unspecified => "the unspecified address",
            Rule::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Rule::Loopback => "a loopback address",
            Rule::Private => "a private address (RFC 1918)",
            Rule::UniqueLocal => "a private address (unique local, fc00::/7)",
            Rule::SharedAddressSpace => "a carrier-grade NAT address (100.64.0.0/10)",
            Rule::LinkLocal => "a link-local address",
            Rule::SiteLocal => "a site-local address (fec0::/10)",
            Rule::Multicast => "a multicast address",
            Rule::Broadcast => "the broadcast address",
            Rule::Documentation => "a documentation address",
            Rule::Benchmarking => "a benchmarking address",
            Rule::ProtocolAssignment => "an IETF protocol assignment address",
            Rule::SixToFourRelay => "a 6to4 relay anycast address",
            Rule::Reserved => "a reserved address",
            Rule::DiscardOnly => "a discard-only address (100::/64)",
            Rule::Nat64 => "a NAT64 address (64:ff9b::/96)",
            Rule::Teredo => "a Teredo address (2001::/32)",
        }
    }
}

/// An IPv6 form that carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:0:0/96`.
    Ipv4Mapped,
    /// `::/96` (deprecated).
    Ipv4Compatible,
    /// `2002::/16`.
    SixToFour,
}

impl Embedding {
    fn describe(self) -> &'static str {
        match self {
            Embedding::Ipv4Mapped => "an IPv4-mapped IPv6 address",
            Embedding::Ipv4Compatible => "an IPv4-compatible IPv6 address",
            Embedding::SixToFour => "a 6to4 address",
        }
    }
}

/// Why an address is not public: a rule, reached directly or through an embedded IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonPublic {
    pub rule: Rule,
    pub embedded: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for NonPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.embedded {
            None => f.write_str(self.rule.describe()),
            Some((form, v4)) => write!(f, "{} of {v4}, {}", form.describe(), self.rule.describe()),
        }
    }
}

/// `None` for a public address, else the rule it breaks.
pub fn classify(ip: IpAddr) -> Option<NonPublic> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map(|rule| NonPublic { rule, embedded: None }),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_none()
}

fn classify_v4(ip: Ipv4Addr) -> Option<Rule> {
    let [a, b, c, _] = ip.octets();
    let rule = match (a, b, c) {
        _ if ip.is_broadcast() => Rule::Broadcast,
        _ if ip.is_unspecified() => Rule::Unspecified,
        (0, _, _) => Rule::ThisNetwork,
        (10, _, _) | (192, 168, _) => Rule::Private,
        (172, 16..=31, _) => Rule::Private,
        (127, _, _) => Rule::Loopback,
        (169, 254, _) => Rule::LinkLocal,
        (100, 64..=127, _) => Rule::SharedAddressSpace,
        (192, 0, 0) => Rule::ProtocolAssignment,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Rule::Documentation,
        (192, 88, 99) => Rule::SixToFourRelay,
        (198, 18..=19, _) => Rule::Benchmarking,
        (224..=239, _, _) => Rule::Multicast,
        (240..=255, _, _) => Rule::Reserved,
        _ => return None,
    };
    Some(rule)
}

fn classify_v6(ip: Ipv6Addr) -> Option<NonPublic> {
    let direct = |rule| Some(NonPublic { rule, embedded: None });
    let through = |form, v4: Ipv4Addr| classify_v4(v4).map(|rule| NonPublic { rule, embedded: Some((form, v4)) });
    let s = ip.segments();
    let last_32 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_unspecified() {
        return direct(Rule::Unspecified);
    }
    if ip.is_loopback() {
        return direct(Rule::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return through(Embedding::Ipv4Mapped, v4);
    }
    if s[..6] == [0; 6] {
        return through(Embedding::Ipv4Compatible, last_32);
    }
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return through(Embedding::SixToFour, v4);
    }
    let rule = match s {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Rule::Nat64,
        [0x100, 0, 0, 0, ..] => Rule::DiscardOnly,
        [first, ..] if first & 0xfe00 == 0xfc00 => Rule::UniqueLocal,
        [first, ..] if first & 0xffc0 == 0xfe80 => Rule::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => Rule::SiteLocal,
        [first, ..] if first & 0xff00 == 0xff00 => Rule::Multicast,
        [0x2001, 0, ..] => Rule::Teredo,
        [0x2001, 2, 0, ..] => Rule::Benchmarking,
        [0x2001, second, ..] if second < 0x200 => Rule::ProtocolAssignment,
        [0x2001, 0xdb8, ..] => Rule::Documentation,
        [0x3fff, second, ..] if second < 0x1000 => Rule::Documentation,
        [first, ..] if first & 0xe000 != 0x2000 => Rule::Reserved,
        _ => return None,
    };
    direct(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(text: &str) -> Option<Rule> {
        classify(text.parse().unwrap()).map(|non_public| non_public.rule)
    }

    #[test]
    fn every_non_public_ipv4_class_is_refused() {
        for (address, rule) in [
            ("0.0.0.0", Rule::Unspecified),
            ("0.1.2.3", Rule::ThisNetwork),
            ("127.0.0.1", Rule::Loopback),
            ("127.255.255.254", Rule::Loopback),
            ("10.0.0.1", Rule::Private),
            ("172.16.0.1", Rule::Private),
            ("172.31.255.255", Rule::Private),
            ("192.168.1.1", Rule::Private),
            ("100.64.0.1", Rule::SharedAddressSpace),
            ("100.127.255.255", Rule::SharedAddressSpace),
            ("169.254.169.254", Rule::LinkLocal),
            ("192.0.0.8", Rule::ProtocolAssignment),
            ("192.0.2.1", Rule::Documentation),
            ("198.51.100.7", Rule::Documentation),
            ("203.0.113.9", Rule::Documentation),
            ("192.88.99.1", Rule::SixToFourRelay),
            ("198.18.0.1", Rule::Benchmarking),
            ("198.19.255.255", Rule::Benchmarking),
            ("224.0.0.1", Rule::Multicast),
            ("239.255.255.250", Rule::Multicast),
            ("240.0.0.1", Rule::Reserved),
            ("255.255.255.254", Rule::Reserved),
            ("255.255.255.255", Rule::Broadcast),
        ] {
            assert_eq!(rule_of(address), Some(rule), "{address}");
        }
    }

    #[test]
    fn public_ipv4_next_to_the_ranges_is_allowed() {
        for address in [
            "1.1.1.1",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "192.0.1.1",
            "192.88.98.1",
        ] {
            assert_eq!(rule_of(address), None, "{address}");
        }
    }

    #[test]
    fn every_non_public_ipv6_class_is_refused() {
        for (address, rule) in [
            ("::", Rule::Unspecified),
            ("::1", Rule::Loopback),
            ("fc00::1", Rule::UniqueLocal),
            ("fd12:3456::1", Rule::UniqueLocal),
            ("fe80::1", Rule::LinkLocal),
            ("febf::1", Rule::LinkLocal),
            ("fec0::1", Rule::SiteLocal),
            ("feff::1", Rule::SiteLocal),
            ("ff02::1", Rule::Multicast),
            ("64:ff9b::8.8.8.8", Rule::Nat64),
            ("64:ff9b::10.0.0.1", Rule::Nat64),
            ("64:ff9b:1::1", Rule::Nat64),
            ("100::1", Rule::DiscardOnly),
            ("2001::1", Rule::Teredo),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Rule::Teredo),
            ("2001:2::1", Rule::Benchmarking),
            ("2001:10::1", Rule::ProtocolAssignment),
            ("2001:db8::1", Rule::Documentation),
            ("3fff::1", Rule::Documentation),
            ("4000::1", Rule::Reserved),
            ("1::1", Rule::Reserved),
        ] {
            assert_eq!(rule_of(address), Some(rule), "{address}");
        }
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_ipv4_address() {
        for (address, form, v4, rule) in [
            ("::ffff:127.0.0.1", Embedding::Ipv4Mapped, "127.0.0.1", Rule::Loopback),
            ("::ffff:10.0.0.1", Embedding::Ipv4Mapped, "10.0.0.1", Rule::Private),
            ("::ffff:169.254.169.254", Embedding::Ipv4Mapped, "169.254.169.254", Rule::LinkLocal),
            ("::127.0.0.1", Embedding::Ipv4Compatible, "127.0.0.1", Rule::Loopback),
            ("::192.168.0.1", Embedding::Ipv4Compatible, "192.168.0.1", Rule::Private),
            ("2002:7f00:1::", Embedding::SixToFour, "127.0.0.1", Rule::Loopback),
            ("2002:a9fe:a9fe::1", Embedding::SixToFour, "169.254.169.254", Rule::LinkLocal),
            ("2002:c0a8:0101::", Embedding::SixToFour, "192.168.1.1", Rule::Private),
        ] {
            let found = classify(address.parse().unwrap());
            assert_eq!(found, Some(NonPublic { rule, embedded: Some((form, v4.parse().unwrap())) }), "{address}");
        }
        assert_eq!(
            classify("::ffff:127.0.0.1".parse().unwrap()).unwrap().to_string(),
            "an IPv4-mapped IPv6 address of 127.0.0.1, a loopback address"
        );
        for public in ["::ffff:8.8.8.8", "::8.8.8.8", "2002:0808:0808::1"] {
            assert_eq!(classify(public.parse().unwrap()), None, "{public}");
        }
    }

    #[test]
    fn public_ipv6_is_allowed() {
        for address in
            ["2606:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888", "2001:200::1", "3fff:1000::1"]
        {
            assert_eq!(rule_of(address), None, "{address}");
        }
    }
}
