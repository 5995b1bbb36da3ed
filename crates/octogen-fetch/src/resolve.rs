//! Name resolution that vets what it returns. The HTTP client connects only to
//! the addresses this resolver hands it, so the check and the connection see
//! the same addresses: a name that answers with a public address to a first
//! lookup and a private one to a second (DNS rebinding) gets no second lookup.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address::classify;
use crate::error::{Refusal, ResolveFailed};

pub(crate) struct VettingResolver {
    /// For the client of targets listed in `fetch_allow_private`: every address is fine.
    pub permit_non_public: bool,
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let permit_non_public = self.permit_non_public;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let looked_up = tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect::<Vec<_>>);
            let found: Vec<SocketAddr> = match looked_up {
                Ok(found) => found,
                Err(error) => return Err(Box::new(ResolveFailed { host, cause: error.to_string() }) as _),
            };
            if permit_non_public {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let (public, refused) = vet(found);
            match (public.is_empty(), refused) {
                (true, Some((address, why))) => Err(Box::new(Refusal::Resolved { host, address, why }) as _),
                (true, None) => Err(Box::new(ResolveFailed { host, cause: "the name has no address".into() }) as _),
                (false, _) => Ok(Box::new(public.into_iter()) as Addrs),
            }
        })
    }
}

/// The public addresses, and the first refused one with its rule.
fn vet(found: Vec<SocketAddr>) -> (Vec<SocketAddr>, Option<(std::net::IpAddr, crate::NonPublic)>) {
    let mut refused = None;
    let public = found
        .into_iter()
        .filter(|address| match classify(address.ip()) {
            None => true,
            Some(why) => {
                refused.get_or_insert((address.ip(), why));
                false
            }
        })
        .collect();
    (public, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_kept() {
        let found: Vec<SocketAddr> =
            ["10.0.0.1:0", "93.184.216.34:0", "[::1]:0"].iter().map(|text| text.parse().unwrap()).collect();
        let (public, refused) = vet(found);
        assert_eq!(public, vec!["93.184.216.34:0".parse::<SocketAddr>().unwrap()]);
        assert_eq!(refused.map(|(address, _)| address), Some("10.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_name_with_only_private_addresses_is_refused_with_the_rule() {
        let resolver = VettingResolver { permit_non_public: false };
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved"),
            Err(error) => error,
        };
        let refusal = error.downcast_ref::<Refusal>().expect("a refusal");
        assert!(refusal.to_string().starts_with("localhost resolves only to non-public addresses ("), "{refusal}");
        assert!(refusal.to_string().contains("is a loopback address"), "{refusal}");
        let permissive = VettingResolver { permit_non_public: true };
        assert!(permissive.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
