//! The client's network address, as far as this server can know it.
//!
//! The peer of the TCP connection is the client unless it is one of the
//! configured `trusted_proxies`; only then is `X-Forwarded-For` read, from the
//! nearest hop outwards, and the first address that is not itself a trusted
//! proxy is the client. Without configured proxies the header is ignored, so a
//! client cannot choose the address that throttling and audit logs see.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::{Deserialize, Deserializer};

use crate::state::AppState;

/// The client's address: the connection's peer, or the forwarded address when
/// the peer is a trusted proxy. `None` only when the connection has no peer
/// address (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn label(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }

    /// The key of this client's per-address budgets (see [`address_bucket`]).
    pub fn bucket(&self) -> String {
        address_bucket(self.0)
    }
}

/// The unit every per-address limit counts by: an IPv4 address, or the /64 an
/// IPv6 address belongs to. One IPv6 subscriber is routinely given a whole /64
/// (SLAAC, privacy addresses), so counting single IPv6 addresses would let one
/// client rotate through 2^64 fresh budgets.
pub fn address_bucket(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(ClientAddr(client_ip(peer, &parts.headers, &state.config.trusted_proxies)))
    }
}

/// Resolves the client address from the peer and, behind trusted proxies, `X-Forwarded-For`.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.contains(client) {
        return Some(client);
    }
    // Proxies append to the right, and a later header line comes from a nearer hop.
    let hops = headers.get_all("x-forwarded-for").iter().rev().flat_map(|value| {
        let text = value.to_str().unwrap_or("");
        text.split(',').rev().map(str::trim).collect::<Vec<_>>()
    });
    for hop in hops {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    Some(client)
}

/// An IP network, `192.0.2.0/24` or a single address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ ip[whole]) >> (8 - rest) == 0
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{text:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8)");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| invalid())?)),
            None => (text, None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| invalid())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(invalid());
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The `trusted_proxies` setting: a list of addresses or ranges, given as a
/// TOML array or (for the environment) one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts = text.split([',', ' ']).map(str::trim).filter(|part| !part.is_empty());
        Ok(TrustedProxies(parts.map(str::parse).collect::<Result<_, _>>()?))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::List(items) => items.join(","),
            Raw::Text(text) => text,
        };
        text.parse().map_err(|error: String| serde::de::Error::custom(format!("trusted_proxies: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn networks_match_by_prefix() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        let odd: IpNet = "192.0.2.128/25".parse().unwrap();
        assert!(odd.contains(ip("192.0.2.200")) && !odd.contains(ip("192.0.2.1")));
        let one: IpNet = "2001:db8::1".parse().unwrap();
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let a = address_bucket(Some(ip("2001:db8:1:2:aaaa::1")));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, address_bucket(Some(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))));
        assert_ne!(a, address_bucket(Some(ip("2001:db8:1:3::1"))));
        assert_eq!(address_bucket(Some(ip("203.0.113.9"))), "203.0.113.9");
        assert_eq!(address_bucket(Some(ip("::ffff:203.0.113.9"))), "203.0.113.9", "mapped IPv4 is IPv4");
        assert_eq!(address_bucket(None), "unknown");
    }

    #[test]
    fn forwarded_for_is_ignored_without_trusted_proxies() {
        let headers = forwarded(&["203.0.113.9"]);
        let none = TrustedProxies::default();
        assert_eq!(client_ip(Some(ip("127.0.0.1")), &headers, &none), Some(ip("127.0.0.1")));
    }

    #[test]
    fn forwarded_for_is_read_from_the_nearest_hop_behind_trusted_proxies() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let peer = Some(ip("127.0.0.1"));
        // The client may put anything at the left; only hops added by trusted proxies count.
        let headers = forwarded(&["198.51.100.1, 203.0.113.9, 10.0.0.5"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("203.0.113.9")));
        let headers = forwarded(&["198.51.100.1", "203.0.113.9"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("203.0.113.9")), "later lines are nearer");
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer, "no header: the proxy itself");
        let headers = forwarded(&["garbage, 10.0.0.7"]);
        assert_eq!(client_ip(peer, &headers, &trusted), Some(ip("10.0.0.7")), "stops at a malformed hop");
        let untrusted_peer = Some(ip("192.0.2.1"));
        assert_eq!(client_ip(untrusted_peer, &forwarded(&["203.0.113.9"]), &trusted), untrusted_peer);
    }

    #[test]
    fn setting_accepts_a_list_or_a_comma_separated_string() {
        let from_list: TrustedProxies = toml::Value::Array(vec!["127.0.0.1".into(), "::1".into()]).try_into().unwrap();
        let from_text: TrustedProxies = toml::Value::String("127.0.0.1,::1".into()).try_into().unwrap();
        assert_eq!(from_list, from_text);
        assert!(from_list.contains(ip("::1")));
        let error = toml::Value::String("10.0.0.0/40".into()).try_into::<TrustedProxies>().unwrap_err();
        assert!(error.to_string().contains("trusted_proxies"), "{error}");
    }
}
