//! URLs as they may be shown or logged: feed URLs often carry credentials
//! (`https://user:pass@host/feed`, `?token=…`, signed `?X-Amz-Signature=…`),
//! and run reports, audit events, logs, the portal and the CLI must not
//! repeat them. The stored source URL keeps them, since the fetch needs them.
//!
//! What is hidden (replaced by `***`):
//! - the userinfo, name and password alike;
//! - the value of every query (and fragment) parameter whose name, compared
//!   case-insensitively, *contains* `token`, `secret`, `passw`, `signature`,
//!   `credential`, `apikey`, `api_key`, `api-key`, `authorization`,
//!   `session`, `sessid` or `private`, or *is* one of `key`, `sig`, `auth`, `pwd`,
//!   `pass`, `code`, `jwt`, `hmac`, `hash` or `sid`, or ends in `_key`,
//!   `-key` or `.key`.
//!
//! Hiding a harmless parameter costs a little clarity; showing a secret cannot be undone.

const CONTAINS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "session",
    "sessid",
    "private",
];
const EXACT: &[&str] = &["key", "sig", "auth", "pwd", "pass", "code", "jwt", "hmac", "hash", "sid"];
const SUFFIXES: &[&str] = &["_key", "-key", ".key"];
const HIDDEN: &str = "***";

/// Whether a query parameter of this name holds a secret (see the module docs).
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CONTAINS.iter().any(|part| name.contains(part))
        || EXACT.contains(&name.as_str())
        || SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// `url` with its userinfo and secret parameters replaced by `***`. Text that
/// does not parse as a URL is redacted as text, by the same rules.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if !parsed.cannot_be_a_base() => redact_parsed(parsed),
        _ => redact_text(url),
    }
}

/// Whether `redact_url` would hide anything in `url`.
pub fn carries_credentials(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(parsed) if !parsed.cannot_be_a_base() => {
            let hides = |text: Option<&str>| text.is_some_and(|text| redact_parameters(text) != text);
            !parsed.username().is_empty()
                || parsed.password().is_some()
                || hides(parsed.query())
                || hides(parsed.fragment())
        }
        _ => redact_text(url) != url,
    }
}

fn redact_parsed(mut url: url::Url) -> String {
    if !url.username().is_empty() || url.password().is_some() {
        // Both only fail for URLs without a host, which have no userinfo.
        let _ = url.set_password(None);
        let _ = url.set_username(HIDDEN);
    }
    if let Some(query) = url.query().map(redact_parameters) {
        url.set_query(Some(&query));
    }
    if let Some(fragment) = url.fragment().map(redact_parameters) {
        url.set_fragment(Some(&fragment));
    }
    url.to_string()
}

/// `a=1&token=x` → `a=1&token=***`, everything else byte for byte.
fn redact_parameters(text: &str) -> String {
    let pairs = text.split('&').map(|pair| match pair.split_once('=') {
        Some((name, value)) if !value.is_empty() && is_secret_parameter(&decoded_name(name)) => {
            format!("{name}={HIDDEN}")
        }
        _ => pair.to_string(),
    });
    pairs.collect::<Vec<_>>().join("&")
}

fn decoded_name(name: &str) -> String {
    url::form_urlencoded::parse(name.as_bytes()).next().map(|(name, _)| name.into_owned()).unwrap_or_default()
}

/// For text that is not a URL: anything before an `@` in the authority is
/// userinfo; the part after the first `?` or `#` holds parameters.
fn redact_text(text: &str) -> String {
    let (before_parameters, parameters) = match text.find(['?', '#']) {
        Some(at) => (&text[..at], Some(&text[at..])),
        None => (text, None),
    };
    let mut out = match before_parameters.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{HIDDEN}{}", &rest[at..]),
                None => before_parameters.to_string(),
            }
        }
        None => before_parameters.to_string(),
    };
    if let Some(parameters) = parameters {
        out.push_str(&parameters[..1]);
        out.push_str(&parameters[1..].split(['?', '#']).map(redact_parameters).collect::<Vec<_>>().join("?"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_parameters_are_hidden() {
        assert_eq!(
            redact_url("https://user:pass@shop.example/feed?token=abc&page=2"),
            "https://***@shop.example/feed?token=***&page=2"
        );
        assert_eq!(redact_url("https://only-user@shop.example/"), "https://***@shop.example/");
        assert_eq!(
            redact_url("https://s3.example/f.xml?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Date=2026"),
            "https://s3.example/f.xml?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Date=2026"
        );
        assert_eq!(
            redact_url("https://x.example/f?API_KEY=1&apiKey=2&Access_Token=3&shop_secret=4&Password=5&sig=6&auth=7&key=8&x-api-key=9"),
            "https://x.example/f?API_KEY=***&apiKey=***&Access_Token=***&shop_secret=***&Password=***&sig=***&auth=***&key=***&x-api-key=***"
        );
        assert_eq!(
            redact_url("https://x.example/cb#access_token=t&state=s"),
            "https://x.example/cb#access_token=***&state=s"
        );
        assert_eq!(redact_url("https://x.example/f?to%6Ben=abc"), "https://x.example/f?to%6Ben=***", "encoded names");
    }

    #[test]
    fn credentials_are_detected_whatever_the_url_looks_like() {
        assert!(carries_credentials("https://u:p@x.example"));
        assert!(carries_credentials("https://x.example/f?Token=1"));
        assert!(carries_credentials("https://x.example/f#sig=1"));
        assert!(carries_credentials("http://u@[bad"));
        assert!(!carries_credentials("https://x.example"), "no trailing slash: nothing to hide all the same");
        assert!(!carries_credentials("https://x.example/f?page=2&token="));
    }

    #[test]
    fn harmless_urls_are_unchanged() {
        for url in [
            "https://spacire.com/products.json",
            "https://x.example/f?page=2&limit=250&author=ann&keyword=shoe&monkey=1",
            "http://127.0.0.1:9000/feed.xml",
            "https://x.example/f?token=",
            "https://x.example/f?token",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn text_that_is_not_a_url_is_redacted_too() {
        assert_eq!(redact_url("http://user:pa ss@[bad/feed?token=abc&x=1"), "http://***@[bad/feed?token=***&x=1");
        assert_eq!(redact_url("not a url ?secret=1"), "not a url ?secret=***");
        assert_eq!(redact_url("plain words"), "plain words");
    }
}
