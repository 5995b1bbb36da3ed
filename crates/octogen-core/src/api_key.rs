//! API keys: `octo_live_<32 lowercase hex key id>_<43 char base64url secret>`.
//!
//! The key id is a public handle (shown in lists, logs and audit events). The
//! secret is 32 bytes from the OS CSPRNG; it exists in plaintext only in the
//! creation response. The store keeps `HMAC-SHA-256(pepper, id ‖ secret)`: the
//! pepper comes from configuration, never from the database, so a database dump
//! alone does not allow offline guessing, and binding the id into the MAC means a
//! hash cannot be replayed under another key id.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const KEY_PREFIX: &str = "octo_live_";
const ID_HEX_LEN: usize = 32;
const SECRET_B64_LEN: usize = 43;
/// `octo_live_` + 32 hex + `_` + 43 base64url.
pub const KEY_LEN: usize = KEY_PREFIX.len() + ID_HEX_LEN + 1 + SECRET_B64_LEN;

/// The public, 128-bit identifier of an API key (32 lowercase hex characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 16]);

impl KeyId {
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        KeyId(bytes)
    }

    /// Parses exactly 32 lowercase hex characters.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_HEX_LEN || !text.bytes().all(is_lower_hex) {
            return None;
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(KeyId(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A full API key as presented by a client or freshly minted. Holds the secret,
/// so `Debug` shows only the key id and there is no `Display`.
pub struct ApiKey {
    id: KeyId,
    secret: SecretBox<[u8; 32]>,
}

impl ApiKey {
    /// Mints a new key from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut secret = Box::new([0u8; 32]);
        fill_random(secret.as_mut());
        ApiKey { id: KeyId::random(), secret: SecretBox::new(secret) }
    }

    /// Parses a presented key. Accepts only `^octo_live_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$`.
    /// The layout is fixed-width, so the secret (which may itself contain `_`)
    /// is never found by splitting on `_`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != KEY_LEN || !text.starts_with(KEY_PREFIX) {
            return None;
        }
        let id_start = KEY_PREFIX.len();
        let sep = id_start + ID_HEX_LEN;
        if bytes[sep] != b'_' {
            return None;
        }
        let id = KeyId::parse(&text[id_start..sep])?;
        let secret_text = &text[sep + 1..];
        if !secret_text.bytes().all(is_base64url) {
            return None;
        }
        let mut secret = Box::new([0u8; 32]);
        // 43 unpadded base64url chars carry 258 bits; the decoder rejects
        // non-canonical trailing bits, so each secret has exactly one spelling.
        let written = URL_SAFE_NO_PAD.decode_slice(secret_text, secret.as_mut()).ok()?;
        if written != 32 {
            return None;
        }
        Some(ApiKey { id, secret: SecretBox::new(secret) })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The full key text. Only for showing it once to its owner.
    pub fn reveal(&self) -> SecretString {
        let secret = URL_SAFE_NO_PAD.encode(self.secret.expose_secret());
        SecretString::from(format!("{KEY_PREFIX}{}_{secret}", self.id))
    }

    /// The value the store keeps: HMAC-SHA-256(pepper, id ‖ secret).
    pub fn hash(&self, pepper: &Pepper) -> KeyHash {
        let mut mac = pepper.mac();
        mac.update(self.id.as_bytes());
        mac.update(self.secret.expose_secret());
        KeyHash(mac.finalize().into_bytes().into())
    }

    /// Whether this key's secret matches a stored hash, in constant time.
    pub fn verify(&self, pepper: &Pepper, stored: &KeyHash) -> bool {
        self.hash(pepper).ct_eq(stored)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey").field("id", &self.id).field("secret", &"[REDACTED]").finish()
    }
}

/// A stored key hash. Not secret in itself (the pepper is), but still kept out of
/// `Debug` output so it never lands in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(KeyHash(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash([REDACTED])")
    }
}

/// The server-wide HMAC key for credential hashes, from configuration.
pub struct Pepper(SecretBox<Vec<u8>>);

impl Pepper {
    /// At least 32 bytes; shorter peppers are refused so a typo cannot weaken hashing.
    pub fn new(bytes: Vec<u8>) -> Result<Self, PepperError> {
        if bytes.len() < 32 {
            return Err(PepperError::TooShort(bytes.len()));
        }
        Ok(Pepper(SecretBox::new(Box::new(bytes))))
    }

    /// A pepper given as text in configuration: base64url/base64 or hex, at least 32 bytes once decoded.
    pub fn from_config_text(text: &str) -> Result<Self, PepperError> {
        let text = text.trim();
        let decoded = if text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| PepperError::NotEncoded)?
        } else {
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
                .map_err(|_| PepperError::NotEncoded)?
        };
        Self::new(decoded)
    }

    /// A fresh random pepper, encoded for writing to a configuration file.
    pub fn generate_text() -> SecretString {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC accepts any key length")
    }

    /// HMAC of an arbitrary secret token under this pepper (admin tokens, session ids, OAuth tokens).
    pub fn hash_token(&self, domain: &str, token: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(token);
        mac.finalize().into_bytes().into()
    }

    /// A non-secret fingerprint stored in the database so that nodes started with
    /// different peppers refuse to start instead of rejecting every key.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.hash_token("octogen-pepper-fingerprint", b"")[..8])
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PepperError {
    #[error("the key pepper must decode to at least 32 bytes (got {0})")]
    TooShort(usize),
    #[error("the key pepper must be hex or base64url text")]
    NotEncoded,
}

/// Fills `buf` from the operating system's CSPRNG. There is no fallback: a
/// machine that cannot provide randomness must not mint credentials.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random number generator is unavailable");
}

/// A random URL-safe token of `bytes` random bytes (sessions, CSRF, OAuth codes).
pub fn random_token(bytes: usize) -> SecretString {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    SecretString::from(URL_SAFE_NO_PAD.encode(&buf))
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pepper() -> Pepper {
        Pepper::new(vec![7u8; 32]).unwrap()
    }

    #[test]
    fn generated_keys_round_trip_and_verify() {
        let key = ApiKey::generate();
        let text = key.reveal();
        let text = text.expose_secret();
        assert_eq!(text.len(), KEY_LEN);
        let parsed = ApiKey::parse(text).expect("a generated key parses");
        assert_eq!(parsed.id(), key.id());
        assert!(parsed.verify(&pepper(), &key.hash(&pepper())));
    }

    #[test]
    fn hash_depends_on_secret_id_and_pepper() {
        let key = ApiKey::generate();
        let other = ApiKey::generate();
        assert!(!other.verify(&pepper(), &key.hash(&pepper())));
        let other_pepper = Pepper::new(vec![8u8; 32]).unwrap();
        assert!(!key.verify(&other_pepper, &key.hash(&pepper())));
    }

    #[test]
    fn secret_with_underscores_parses() {
        // A secret that encodes to underscores and dashes must not be split on `_`.
        let mut secret = [0xffu8; 32];
        secret[31] = 0xfc;
        let encoded = URL_SAFE_NO_PAD.encode(secret);
        assert!(encoded.starts_with("____"));
        let text = format!("octo_live_0123456789abcdef0123456789abcdef_{encoded}");
        let key = ApiKey::parse(&text).expect("underscores in the secret are allowed");
        assert_eq!(key.id().to_string(), "0123456789abcdef0123456789abcdef");
        assert_eq!(key.reveal().expose_secret(), text);
    }

    #[test]
    fn rejects_malformed_keys() {
        let good = ApiKey::generate().reveal().expose_secret().to_string();
        let cases = [
            String::new(),
            good[..good.len() - 1].to_string(),
            format!("{good}A"),
            good.replacen("octo_live_", "octo_test_", 1),
            good.to_uppercase(),
            format!(" {}", &good[1..]),
            good.replacen('_', "-", 2),
            format!(
                "{}{}",
                &good[..KEY_PREFIX.len()],
                good[KEY_PREFIX.len()..].replacen(|c: char| c.is_ascii_lowercase(), "G", 1)
            ),
            good.replace(&good[KEY_LEN - 5..], "é=="),
        ];
        for case in cases {
            assert!(ApiKey::parse(&case).is_none(), "accepted {case:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = ApiKey::generate();
        let text = key.reveal().expose_secret().to_string();
        let secret_part = &text[KEY_PREFIX.len() + 33..];
        let debug = format!("{key:?} {:?} {:?}", key.hash(&pepper()), pepper());
        assert!(!debug.contains(secret_part));
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn pepper_parsing() {
        assert_eq!(Pepper::from_config_text("abcd").unwrap_err(), PepperError::TooShort(2));
        assert!(Pepper::from_config_text(&"ab".repeat(32)).is_ok());
        assert!(Pepper::from_config_text(Pepper::generate_text().expose_secret()).is_ok());
        assert_eq!(Pepper::from_config_text("not base64 !!").unwrap_err(), PepperError::NotEncoded);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = ApiKey::parse(&s);
        }

        #[test]
        fn only_the_exact_grammar_parses(id in "[0-9a-f]{32}", secret in "[A-Za-z0-9_-]{43}") {
            let text = format!("octo_live_{id}_{secret}");
            // Every string of the grammar with canonical trailing bits parses; others are refused.
            if let Some(key) = ApiKey::parse(&text) {
                let revealed = key.reveal();
                prop_assert_eq!(revealed.expose_secret(), text.as_str());
            }
        }
    }
}
