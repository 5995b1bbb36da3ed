//! A catalog's URL alias rules: other URLs its merchant serves a product at,
//! declared where the catalog's product URLs are built (a CSV mapping's `url`
//! rule), so that a lookup of such a URL finds the product.
//!
//! A rule pairs an **alias** pattern with the **target** template the
//! product's URL was built from:
//!
//! ```text
//! alias  = "https://www.myntra.com/{*}/{*}/{*}/{ProductID}/buy"
//! target = "https://www.myntra.com/{ProductID}"
//! ```
//!
//! The alias is an http(s) URL whose path segments are literal text, `{*}`
//! (any one segment) or `{Name}` (one segment, captured). A URL matches when,
//! normalized, it has the alias's host and port and as many path segments,
//! with equal literal segments; its query string is ignored (the path names the
//! product). The captured segments fill the target's `{Name}` placeholders,
//! encoded as an import encodes a column in a URL template, and the result,
//! normalized, is the key the product is stored under.

use percent_encoding::{percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::url_norm::{normalize_product_url, PATH_SEGMENT};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UrlAliasRule {
    /// The pattern of the alias URLs.
    pub alias: String,
    /// The template of the product URL they stand for.
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlAliasError {
    #[error("alias {alias:?} is not an http(s) URL pattern (e.g. https://shop.example/{{*}}/{{Id}}/buy)")]
    NotHttp { alias: String },
    #[error("alias {alias:?} may not have a query or fragment: the path names the product")]
    QueryOrFragment { alias: String },
    #[error(
        "alias {alias:?}: a placeholder must be a whole path segment, like /{{*}}/ or /{{Id}}/ (found {segment:?})"
    )]
    PartialSegment { alias: String, segment: String },
    #[error("alias {alias:?} captures {name:?} twice")]
    DuplicateName { alias: String, name: String },
    #[error("alias {alias:?} does not capture {name:?}, which the product URL template {target:?} needs")]
    MissingName { alias: String, target: String, name: String },
}

/// One segment of an alias's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Literal text, percent-decoded.
    Literal(String),
    Any,
    Capture(String),
}

/// An alias pattern, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Lower-case host without `www.`, with the port when not the default.
    authority: String,
    parts: Vec<Part>,
}

impl UrlAliasRule {
    /// A rule, validated: every placeholder of `target` is captured by `alias`.
    pub fn new(alias: &str, target: &str) -> Result<UrlAliasRule, UrlAliasError> {
        let pattern = parse_alias(alias)?;
        for name in placeholders(target) {
            if !pattern.parts.contains(&Part::Capture(name.to_string())) {
                return Err(UrlAliasError::MissingName {
                    alias: alias.to_string(),
                    target: target.to_string(),
                    name: name.to_string(),
                });
            }
        }
        Ok(UrlAliasRule { alias: alias.to_string(), target: target.to_string() })
    }

    /// The normalized URL `url` stands for under this rule, or `None` when it
    /// does not match (or the rule, read back from storage, is no longer valid).
    pub fn resolve(&self, url: &str) -> Option<String> {
        let pattern = parse_alias(&self.alias).ok()?;
        let url = Url::parse(&normalize_product_url(url).ok()?).ok()?;
        if authority(&url)? != pattern.authority {
            return None;
        }
        let segments: Vec<&str> = url.path_segments()?.filter(|segment| !segment.is_empty()).collect();
        if segments.len() != pattern.parts.len() {
            return None;
        }
        let mut captured: Vec<(&str, String)> = Vec::new();
        for (part, segment) in pattern.parts.iter().zip(&segments) {
            let decoded = percent_decode_str(segment).decode_utf8_lossy();
            match part {
                Part::Literal(text) if *text != decoded => return None,
                Part::Capture(name) => captured.push((name, decoded.into_owned())),
                Part::Literal(_) | Part::Any => {}
            }
        }
        let mut target = self.target.clone();
        for (name, value) in captured {
            let encoded: String = utf8_percent_encode(&value, PATH_SEGMENT).collect();
            target = target.replace(&format!("{{{name}}}"), &encoded);
        }
        normalize_product_url(&target).ok()
    }
}

fn parse_alias(alias: &str) -> Result<Pattern, UrlAliasError> {
    let not_http = || UrlAliasError::NotHttp { alias: alias.to_string() };
    let trimmed = alias.trim();
    let lower = trimmed.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &trimmed["https://".len()..]
    } else if lower.starts_with("http://") {
        &trimmed["http://".len()..]
    } else {
        return Err(not_http());
    };
    if rest.contains(['?', '#']) {
        return Err(UrlAliasError::QueryOrFragment { alias: alias.to_string() });
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_url = Url::parse(&format!("https://{host}/")).map_err(|_| not_http())?;
    let authority = authority(&host_url).ok_or_else(not_http)?;
    let mut parts = Vec::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        parts.push(parse_part(alias, segment)?);
    }
    let mut names: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            Part::Capture(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(UrlAliasError::DuplicateName { alias: alias.to_string(), name: pair[0].to_string() });
    }
    Ok(Pattern { authority, parts })
}

fn parse_part(alias: &str, segment: &str) -> Result<Part, UrlAliasError> {
    if let Some(name) = segment.strip_prefix('{').and_then(|inner| inner.strip_suffix('}')) {
        if !name.is_empty() && !name.contains(['{', '}']) {
            return Ok(if name == "*" { Part::Any } else { Part::Capture(name.to_string()) });
        }
    }
    if segment.contains(['{', '}']) {
        return Err(UrlAliasError::PartialSegment { alias: alias.to_string(), segment: segment.to_string() });
    }
    Ok(Part::Literal(percent_decode_str(segment).decode_utf8_lossy().into_owned()))
}

/// Host (lower case, without `www.`) and port unless it is a default one, as
/// `normalize_product_url` writes them.
fn authority(url: &Url) -> Option<String> {
    let host = url.host_str().filter(|host| !host.is_empty())?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    Some(match url.port().filter(|port| *port != 80 && *port != 443) {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

/// The `{Name}` placeholders of a template, in order.
fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|close| open + close) else { break };
        names.push(&rest[open + 1..close]);
        rest = &rest[close + 1..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn myntra() -> UrlAliasRule {
        UrlAliasRule::new("https://www.myntra.com/{*}/{*}/{*}/{ProductID}/buy", "https://www.myntra.com/{ProductID}")
            .unwrap()
    }

    #[test]
    fn a_matching_url_resolves_to_the_target() {
        let rule = myntra();
        for url in [
            "https://www.myntra.com/trolley-bag/dkny/dkny-unisex-black--grey-printed-medium-trolley-bag/10017413/buy",
            "http://MYNTRA.com/trolley-bag/dkny/x/10017413/buy/?src=search#top",
        ] {
            assert_eq!(rule.resolve(url).as_deref(), Some("https://myntra.com/10017413"), "{url}");
        }
    }

    #[test]
    fn other_urls_do_not_match() {
        let rule = myntra();
        for url in [
            "https://www.myntra.com/10017413",
            "https://www.myntra.com/a/b/c/10017413/view",
            "https://www.myntra.com/a/b/10017413/buy",
            "https://www.myntra.com/a/b/c/d/10017413/buy",
            "https://myntra.example/a/b/c/10017413/buy",
            "https://www.myntra.com:8443/a/b/c/10017413/buy",
            "not a url",
        ] {
            assert_eq!(rule.resolve(url), None, "{url}");
        }
    }

    #[test]
    fn captured_text_is_encoded_like_an_import_encodes_a_column() {
        let rule = UrlAliasRule::new("https://shop.example/p/{Sku}", "https://shop.example/item/{Sku}").unwrap();
        assert_eq!(rule.resolve("https://shop.example/p/a%20b").as_deref(), Some("https://shop.example/item/a%20b"));
        assert_eq!(
            rule.resolve("https://shop.example/p/caf%C3%A9").as_deref(),
            Some("https://shop.example/item/caf%C3%A9")
        );
    }

    #[test]
    fn invalid_rules_are_refused_with_the_reason() {
        let cases = [
            ("ftp://shop.example/{Id}", "https://shop.example/{Id}", "not an http(s) URL pattern"),
            ("https://shop.example/{Id}?x=1", "https://shop.example/{Id}", "may not have a query"),
            ("https://shop.example/p-{Id}", "https://shop.example/{Id}", "a placeholder must be a whole path segment"),
            ("https://shop.example/{Id}/{Id}", "https://shop.example/{Id}", "captures \"Id\" twice"),
            ("https://shop.example/{*}/buy", "https://shop.example/{Id}", "does not capture \"Id\""),
        ];
        for (alias, target, message) in cases {
            let error = UrlAliasRule::new(alias, target).unwrap_err().to_string();
            assert!(error.contains(message), "{alias}: {error}");
        }
    }

    #[test]
    fn a_rule_round_trips_through_json() {
        let rule = myntra();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<UrlAliasRule>(&json).unwrap(), rule);
    }
}
