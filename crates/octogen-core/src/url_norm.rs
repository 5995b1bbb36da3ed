//! Product URL normalization (SPEC §4 lookup): the key under which products are
//! stored and looked up, so that the many spellings of one product page meet.
//!
//! Rules: scheme forced to https; host lowercased (IDNA via the `url` crate);
//! a leading `www.` stripped; default ports dropped; fragment dropped; tracking
//! parameters removed; remaining query parameters sorted by name then value;
//! trailing slashes of the path ignored. Path case is preserved: many stores
//! serve different products at paths that differ only in case.
//!
//! A lookup tries more than the normalized URL (see the server's lookup): the
//! structural aliases below, and a catalog's own alias rules (`url_alias`).

use percent_encoding::{AsciiSet, CONTROLS};
use url::Url;

/// Characters escaped when a value is put into one URL path segment (a Shopify
/// handle, a CSV column in a URL template, a part captured by an alias rule):
/// one definition, so a URL built at import and one rebuilt at lookup agree.
pub const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'?')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// Query parameters that identify a campaign or click, never a product.
/// Any parameter starting with `utm_` is also removed.
pub const TRACKING_PARAMS: &[&str] = &[
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "yclid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "ttclid",
    "twclid",
    "li_fat_id",
    "srsltid",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "rb_clickid",
    "s_kwcid",
    "ef_id",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL")]
    Unparseable,
    #[error("only http and https URLs are product URLs")]
    NotHttp,
    #[error("the URL has no host")]
    NoHost,
}

pub fn is_tracking_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("utm_") || TRACKING_PARAMS.contains(&lower.as_str())
}

/// Normalizes a product page URL. Surrounding whitespace is ignored.
pub fn normalize_product_url(input: &str) -> Result<String, UrlError> {
    let url = Url::parse(input.trim()).map_err(|_| UrlError::Unparseable)?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(UrlError::NotHttp);
    }
    let host = url.host_str().filter(|host| !host.is_empty()).ok_or(UrlError::NoHost)?;
    let host = without_www(host);

    let mut normalized = String::with_capacity(input.len());
    normalized.push_str("https://");
    normalized.push_str(host);
    if let Some(port) = url.port() {
        // `Url` already drops the scheme's own default port; once the scheme is
        // forced to https, an explicit :80 or :443 means the default too.
        if port != 80 && port != 443 {
            normalized.push(':');
            normalized.push_str(&port.to_string());
        }
    }
    normalized.push_str(url.path().trim_end_matches('/'));

    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !is_tracking_param(name))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if !params.is_empty() {
        params.sort();
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        normalized.push('?');
        normalized.push_str(&query);
    }
    Ok(normalized)
}

/// The product URL a Shopify storefront also serves at `normalized` (a
/// normalized URL), or `None` when it is no such alias:
///
/// - `/collections/<collection>/products/<handle>` is the product at `/products/<handle>`;
/// - `?variant=<id>` names one variant of the product at the URL without it
///   (the form of `variants[].productUrl` in every API version's responses).
///
/// Both may apply at once. Other query parameters are kept.
pub fn structural_alias(normalized: &str) -> Option<String> {
    let mut url = Url::parse(normalized).ok()?;
    let product_path = match url.path_segments()?.collect::<Vec<_>>().as_slice() {
        ["collections", collection, "products", handle] if !collection.is_empty() && !handle.is_empty() => {
            Some(format!("/products/{handle}"))
        }
        _ => None,
    };
    let names_variant = url.query_pairs().any(|(name, _)| name == "variant");
    if product_path.is_none() && !names_variant {
        return None;
    }
    if let Some(path) = product_path {
        url.set_path(&path);
    }
    if names_variant {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "variant")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    normalize_product_url(url.as_str()).ok()
}

/// The host without its leading `www.` labels — all of them, so that
/// normalizing a normalized URL changes nothing (`www.www.shop.com` would
/// otherwise lose one more `www.` each time) — but never down to nothing.
fn without_www(host: &str) -> &str {
    let mut host = host;
    while let Some(rest) = host.strip_prefix("www.").filter(|rest| !rest.is_empty()) {
        host = rest;
    }
    host
}

/// Resolves a possibly relative URL against a base (for feed links such as `/products/x`).
pub fn absolutize(base: &str, link: &str) -> Option<String> {
    let joined = Url::parse(base).ok()?.join(link.trim()).ok()?;
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_rules() {
        let cases = [
            (
                "http://WWW.Example.com/products/Blue-Shirt/?utm_source=x&b=2&a=1#reviews",
                "https://example.com/products/Blue-Shirt?a=1&b=2",
            ),
            ("https://example.com/p/1?gclid=abc&fbclid=def&UTM_MEDIUM=m", "https://example.com/p/1"),
            ("https://example.com:443/p", "https://example.com/p"),
            ("http://example.com:80/p", "https://example.com/p"),
            ("https://example.com:8443/p", "https://example.com:8443/p"),
            ("https://example.com/", "https://example.com"),
            ("https://example.com", "https://example.com"),
            ("  https://shop.example.com/p?b=1&a=2&a=1  ", "https://shop.example.com/p?a=1&a=2&b=1"),
            ("https://wwwshop.com/p", "https://wwwshop.com/p"),
            // Found by the fuzz campaign: every `www.` goes, but the host never becomes empty.
            ("http://www.www.shop.com/p", "https://shop.com/p"),
            ("http://www.www.", "https://www."),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_product_url(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn refuses_non_http_urls() {
        assert_eq!(normalize_product_url("ftp://example.com/p"), Err(UrlError::NotHttp));
        assert_eq!(normalize_product_url("not a url"), Err(UrlError::Unparseable));
        assert_eq!(normalize_product_url("/products/x"), Err(UrlError::Unparseable));
        assert_eq!(normalize_product_url("mailto:a@b.c"), Err(UrlError::NotHttp));
        // An "xn--" label must be valid punycode (found by the property tests below).
        assert_eq!(normalize_product_url("http://xn--.com/"), Err(UrlError::Unparseable));
    }

    #[test]
    fn shopify_structural_aliases() {
        let cases = [
            (
                "https://shop.example/collections/sale/products/trail-hoodie",
                Some("https://shop.example/products/trail-hoodie"),
            ),
            (
                "https://shop.example/products/trail-hoodie?variant=533",
                Some("https://shop.example/products/trail-hoodie"),
            ),
            (
                "https://shop.example/collections/all/products/trail-hoodie?variant=533&color=red",
                Some("https://shop.example/products/trail-hoodie?color=red"),
            ),
            ("https://shop.example/products/h%C3%A9?variant=1", Some("https://shop.example/products/h%C3%A9")),
            ("https://shop.example/products/trail-hoodie", None),
            ("https://shop.example/collections/sale", None),
            ("https://shop.example/collections/sale/products", None),
            ("https://shop.example/collections/a/b/products/h", None),
            ("https://shop.example", None),
        ];
        for (input, expected) in cases {
            let normalized = normalize_product_url(input).unwrap();
            assert_eq!(structural_alias(&normalized).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn absolutize_relative_links() {
        assert_eq!(
            absolutize("https://shop.example/", "/products/x").as_deref(),
            Some("https://shop.example/products/x")
        );
        assert_eq!(absolutize("https://shop.example/", "javascript:alert(1)"), None);
    }

    fn url_strategy() -> impl Strategy<Value = String> {
        (
            prop_oneof!["http", "https", "HTTP", "HtTpS"],
            prop_oneof![Just(""), Just("www."), Just("WWW.")],
            // Single hyphens only: a label like "xn--" is (invalid) punycode, refused as unparseable.
            "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?\\.(com|co\\.uk|shop)",
            prop::collection::vec("[A-Za-z0-9._~-]{1,8}", 0..4),
            prop::option::of(prop::collection::vec(("[a-z_]{1,6}", "[A-Za-z0-9 %&=+]{0,6}"), 0..4)),
            prop::bool::ANY,
            prop::option::of("[a-z]{0,5}"),
        )
            .prop_map(|(scheme, www, host, segments, query, trailing, fragment)| {
                let mut url = format!("{scheme}://{www}{host}/{}", segments.join("/"));
                if trailing {
                    url.push('/');
                }
                if let Some(pairs) = query {
                    let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
                    url.push('?');
                    url.push_str(&q);
                }
                if let Some(fragment) = fragment {
                    url.push('#');
                    url.push_str(&fragment);
                }
                url
            })
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(url in url_strategy()) {
            let once = normalize_product_url(&url).unwrap();
            prop_assert_eq!(normalize_product_url(&once).unwrap(), once);
        }

        #[test]
        fn output_is_https_without_www_fragment_or_tracking(url in url_strategy()) {
            let out = normalize_product_url(&url).unwrap();
            prop_assert!(out.starts_with("https://"));
            prop_assert!(!out.starts_with("https://www."));
            prop_assert!(!out.contains('#'));
            prop_assert!(!out.contains("utm_"));
            let parsed = Url::parse(&out).unwrap();
            prop_assert!(parsed.path() == "/" || !parsed.path().ends_with('/'));
        }

        #[test]
        fn spelling_variants_meet(url in url_strategy(), utm in "[a-z]{1,6}") {
            // Adding a tracking parameter, a fragment, or switching scheme/www never changes the key.
            let base = normalize_product_url(&url).unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let mut tracked = url.split('#').next().unwrap().to_string();
            tracked.push(sep);
            tracked.push_str(&format!("utm_campaign={utm}&gclid={utm}"));
            tracked.push_str("#frag");
            prop_assert_eq!(normalize_product_url(&tracked).unwrap(), base.clone());
            let upper_scheme = format!("HTTP{}", &url[4..]);
            prop_assert_eq!(normalize_product_url(&upper_scheme).unwrap(), base);
        }

        #[test]
        fn never_panics(input in ".{0,80}") {
            let _ = normalize_product_url(&input);
        }

        #[test]
        fn a_structural_alias_is_normalized_and_no_alias_of_its_own(url in url_strategy(), variant in "[0-9]{1,6}") {
            let normalized = normalize_product_url(&url).unwrap();
            let sep = if normalized.contains('?') { '&' } else { '?' };
            let alias = structural_alias(&format!("{normalized}{sep}variant={variant}")).unwrap();
            prop_assert_eq!(normalize_product_url(&alias).unwrap(), alias.clone());
            prop_assert_eq!(structural_alias(&alias), None);
        }
    }
}
