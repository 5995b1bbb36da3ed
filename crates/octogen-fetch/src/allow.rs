//! `fetch_allow_private`: the `host:port` targets an operator lets fetches
//! reach although they are not public (an intranet feed server, a test's
//! loopback listener). A listed target is exactly one host and one port: a
//! listed `feeds.intranet:8080` does not open `feeds.intranet:22`.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: Host<String>,
    port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The allowed private targets (empty by default: nothing private is reachable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowPrivate(Vec<Target>);

impl AllowPrivate {
    /// Whether `url`'s host and port (explicit or the scheme's default) are listed.
    pub fn allows(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.to_owned();
        self.0.iter().any(|target| target.host == host && target.port == port)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AllowPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let targets: Vec<String> = self.0.iter().map(Target::to_string).collect();
        f.write_str(&targets.join(", "))
    }
}

/// One or more `host:port` entries separated by commas or spaces (the
/// environment's form; a TOML array is joined into it).
impl FromStr for AllowPrivate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let entries = text.split([',', ' ']).map(str::trim).filter(|entry| !entry.is_empty());
        Ok(AllowPrivate(entries.map(parse_target).collect::<Result<_, _>>()?))
    }
}

/// `host:port`, `1.2.3.4:port` or `[v6]:port`. The host is canonicalized the
/// way URLs are (lowercase, IPv4 in dotted decimal), so it matches the URLs it is for.
fn parse_target(entry: &str) -> Result<Target, String> {
    let invalid =
        |why: &str| format!("{entry:?} {why} (write host:port, e.g. feeds.intranet.example:8080 or 127.0.0.1:9000)");
    let (host, port) = match entry.strip_prefix('[') {
        Some(rest) => {
            let (v6, port) = rest.split_once("]:").ok_or_else(|| invalid("has no port"))?;
            (format!("[{v6}]"), port)
        }
        None => {
            let (host, port) = entry.rsplit_once(':').ok_or_else(|| invalid("has no port"))?;
            if host.contains(':') {
                return Err(invalid("is an IPv6 address without brackets"));
            }
            (host.to_string(), port)
        }
    };
    let port: u16 = port.parse().ok().filter(|&port| port != 0).ok_or_else(|| invalid("has no valid port"))?;
    if host.contains(['/', '@', '?', '#']) {
        return Err(invalid("is not a host name or address"));
    }
    let host = Host::parse(&host).map_err(|_| invalid("is not a host name or address"))?;
    Ok(Target { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn listed_targets_match_host_and_port_exactly() {
        let allow: AllowPrivate = "127.0.0.1:9000, Feeds.Intranet:8080 [::1]:7000,intranet:80".parse().unwrap();
        assert!(allow.allows(&url("http://127.0.0.1:9000/feed")));
        assert!(allow.allows(&url("http://feeds.intranet:8080/x")));
        assert!(allow.allows(&url("http://[::1]:7000/")));
        assert!(allow.allows(&url("http://intranet/feed")), "the scheme's default port");
        assert!(allow.allows(&url("http://2130706433:9000/")), "the decimal form is the same host");
        assert!(!allow.allows(&url("http://127.0.0.1:9001/feed")));
        assert!(!allow.allows(&url("http://feeds.intranet:22/")));
        assert!(!allow.allows(&url("https://intranet/feed")), "443 is not 80");
        assert!(!allow.allows(&url("http://127.0.0.2:9000/")));
        assert_eq!(allow.to_string(), "127.0.0.1:9000, feeds.intranet:8080, [::1]:7000, intranet:80");
        assert!(AllowPrivate::default().is_empty());
        assert!("".parse::<AllowPrivate>().unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "intranet",
            "127.0.0.1",
            "::1:80",
            "[::1]",
            "host:0",
            "host:http",
            "host:70000",
            "user@host:80",
            "a/b:80",
            "[nope]:80",
        ] {
            let error = bad.parse::<AllowPrivate>().unwrap_err();
            assert!(error.contains(&format!("{bad:?}")) && error.contains("host:port"), "{bad}: {error}");
        }
    }
}
