//! An authorization request between `GET /oauth2/authorize` and the person's
//! answer travels with the browser, sealed: `base64url(JSON).base64url(HMAC)`,
//! the HMAC under the server pepper in a domain of its own. Anyone may send
//! authorization requests, and nothing is stored for them: the only row is
//! written when a signed-in person answers (`answer_oauth_request`), so a
//! request is answered once. The seal carries its own expiry, and every node
//! can open it.
//!
//! The sealed request rides through the portal's sign-in in its `next`
//! parameter, which is why that parameter accepts up to `SEALED_MAX_BYTES`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use octogen_core::{Pepper, Timestamp};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The domain of the seal's HMAC: no other value hashed under the pepper can pass for one.
const SEAL_DOMAIN: &str = "octogen-oauth-pending-request";
/// The largest sealed request accepted (the largest valid one, every field at its cap and
/// JSON-escaped, is about 12 KB).
pub const SEALED_MAX_BYTES: usize = 16 * 1024;

/// A validated authorization request waiting for the person's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Random: the key the answer is recorded under.
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    /// The client is known by its metadata document; it is stored once approved.
    pub document_client: bool,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// The issuer the request was made to (the resource is its `/mcp`).
    pub issuer: String,
    /// Unix milliseconds, by the OAuth clock.
    pub expires_at: i64,
}

impl PendingRequest {
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_millis(self.expires_at)
    }
}

/// The sealed form of `request`, for a URL or a form field (base64url and one `.`).
pub fn seal(pepper: &Pepper, request: &PendingRequest) -> anyhow::Result<String> {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(request)?);
    let mac = URL_SAFE_NO_PAD.encode(pepper.hash_token(SEAL_DOMAIN, payload.as_bytes()));
    Ok(format!("{payload}.{mac}"))
}

/// The request sealed in `sealed`, if this server sealed it and it has not expired at `now`.
pub fn open(pepper: &Pepper, sealed: &str, now: Timestamp) -> Option<PendingRequest> {
    if sealed.len() > SEALED_MAX_BYTES {
        return None;
    }
    let (payload, mac) = sealed.split_once('.')?;
    let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let expected = pepper.hash_token(SEAL_DOMAIN, payload.as_bytes());
    if !bool::from(presented.as_slice().ct_eq(expected.as_slice())) {
        return None;
    }
    let request: PendingRequest = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (request.expires_at() > now).then_some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(expires_at: Timestamp) -> PendingRequest {
        PendingRequest {
            id: "r1".into(),
            client_id: "c1".into(),
            client_name: Some("Agent \"quoted\"".into()),
            document_client: false,
            redirect_uri: "http://127.0.0.1/callback".into(),
            state: Some("~".repeat(1024)),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            issuer: "http://127.0.0.1:8080".into(),
            expires_at: expires_at.millis(),
        }
    }

    #[test]
    fn a_sealed_request_opens_until_it_expires() {
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let now = Timestamp::now();
        let sealed = seal(&pepper, &request(now.plus_millis(1000))).unwrap();
        assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "URL-safe: {sealed}");
        assert_eq!(open(&pepper, &sealed, now), Some(request(now.plus_millis(1000))));
        assert_eq!(open(&pepper, &sealed, now.plus_millis(1000)), None, "expired");
    }

    #[test]
    fn the_largest_valid_request_fits_its_seal() {
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        // Every field at its cap, made of characters JSON escapes.
        let largest = PendingRequest {
            id: "i".repeat(22),
            client_id: "\"".repeat(512),
            client_name: Some("\"".repeat(200)),
            document_client: true,
            redirect_uri: "\\".repeat(crate::oauth::REDIRECT_URI_MAX_BYTES),
            state: Some("\"".repeat(1024)),
            code_challenge: "c".repeat(43),
            issuer: format!("http://localhost:{}", u16::MAX),
            expires_at: i64::MAX,
        };
        let sealed = seal(&pepper, &largest).unwrap();
        assert!(sealed.len() < SEALED_MAX_BYTES, "{}", sealed.len());
        assert_eq!(open(&pepper, &sealed, Timestamp::now()), Some(largest));
    }

    #[test]
    fn a_changed_or_foreign_seal_does_not_open() {
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let now = Timestamp::now();
        let sealed = seal(&pepper, &request(now.plus_millis(60_000))).unwrap();
        let (payload, mac) = sealed.split_once('.').unwrap();
        let mut forged = request(now.plus_millis(60_000));
        forged.redirect_uri = "https://evil.example/cb".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        for bad in [
            format!("{forged_payload}.{mac}"),
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            format!("{payload}."),
            payload.to_string(),
            String::new(),
            format!("{payload}.{mac}{}", "A".repeat(SEALED_MAX_BYTES)),
        ] {
            assert_eq!(open(&pepper, &bad, now), None, "{bad:.40}");
        }
        let other = Pepper::new(vec![8; 32]).unwrap();
        assert_eq!(open(&other, &sealed, now), None, "another server's pepper");
    }
}
