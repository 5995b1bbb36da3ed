//! Search cursors: opaque to clients, bound to the query that made them, and
//! tamper-evident. A cursor is base64url of
//! `version ‖ query fingerprint (16 bytes) ‖ position (JSON) ‖ tag (16 bytes)`,
//! the tag being an HMAC under the server's pepper, so any node of a
//! deployment accepts any other node's cursors and nobody can forge one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use octogen_core::Pepper;
use octogen_search::SortPosition;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const VERSION: u8 = 1;
const FINGERPRINT: usize = 16;
const TAG: usize = 16;
const DOMAIN: &str = "octogen-search-cursor";

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor of ours: garbled, truncated, forged, or from an older format.
    Malformed,
    /// A genuine cursor, but made by a query with other filters.
    OtherQuery,
}

/// What a query is, for binding cursors: hashed from its canonical form.
pub fn fingerprint(canonical_query: &serde_json::Value) -> [u8; FINGERPRINT] {
    let digest = Sha256::digest(canonical_query.to_string().as_bytes());
    digest[..FINGERPRINT].try_into().expect("a SHA-256 digest has 32 bytes")
}

pub fn encode(pepper: &Pepper, fingerprint: &[u8; FINGERPRINT], position: &SortPosition) -> String {
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(fingerprint);
    bytes.extend(serde_json::to_vec(position).expect("a sort position serializes"));
    let tag = pepper.hash_token(DOMAIN, &bytes);
    bytes.extend_from_slice(&tag[..TAG]);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(pepper: &Pepper, cursor: &str, fingerprint: &[u8; FINGERPRINT]) -> Result<SortPosition, CursorError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| CursorError::Malformed)?;
    if bytes.len() < 1 + FINGERPRINT + TAG + 2 || bytes[0] != VERSION {
        return Err(CursorError::Malformed);
    }
    let (signed, tag) = bytes.split_at(bytes.len() - TAG);
    let expected = pepper.hash_token(DOMAIN, signed);
    if !bool::from(expected[..TAG].ct_eq(tag)) {
        return Err(CursorError::Malformed);
    }
    if signed[1..1 + FINGERPRINT] != fingerprint[..] {
        return Err(CursorError::OtherQuery);
    }
    serde_json::from_slice(&signed[1 + FINGERPRINT..]).map_err(|_| CursorError::Malformed)
}
