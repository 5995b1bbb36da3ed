//! One-time secrets between a form's POST and the page it redirects to.
//!
//! A new API key is shown exactly once, and reloading the page that shows it
//! must not create another key (issue 17.1). So the form's POST creates the
//! key, stores it sealed as a *flash* of the session and answers 303 to
//! `GET /keys/issued/{flash id}`; that page takes the flash and shows the key.
//! A reload, the back button or another tab finds the flash already taken.
//!
//! - The secret never appears in a URL, a log line or the store in clear: it
//!   is sealed with ChaCha20-Poly1305 under a key derived (HMAC under the
//!   server pepper) from the session's cookie token and the flash id. The
//!   store holds only an HMAC of that token, so a copy of the database, even
//!   with the pepper, opens nothing; only the browser that made the key can.
//! - The store hands the sealed part out once (`take_flash` clears it in one
//!   conditional UPDATE), so two nodes or two tabs cannot both show it.
//! - A flash lives `FLASH_TTL_MILLIS` and ends with its session (sign-out).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use octogen_core::api_key::random_token;
use octogen_core::{Pepper, Timestamp};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::session::PortalUser;
use crate::state::AppState;

/// How long a new key waits to be shown: enough for a slow redirect, short
/// enough that a forgotten tab does not keep a way to the secret.
pub const FLASH_TTL_MILLIS: i64 = 10 * 60 * 1000;

const FLASH_KEY_DOMAIN: &str = "octogen-portal-flash";

/// A flash as the page that shows it reads it back.
pub struct TakenFlash<T> {
    pub kind: String,
    pub detail: T,
    /// The secret, if this request is the one that shows it.
    pub secret: Option<SecretString>,
}

/// Seals `secret` for the signed-in session and stores it with its non-secret
/// `detail`. Returns the flash id for the URL of the page that shows it.
pub async fn put<T: Serialize>(
    state: &AppState,
    user: &PortalUser,
    kind: &str,
    detail: &T,
    secret: &SecretString,
) -> anyhow::Result<String> {
    let id = random_token(16).expose_secret().to_string();
    let sealed = seal(&Binding::of(state, user), &id, secret.expose_secret())?;
    let now = Timestamp::now();
    state
        .store
        .create_flash(octogen_store::NewFlash {
            id: id.clone(),
            session_id: user.session.id.clone(),
            kind: kind.to_string(),
            detail: serde_json::to_string(detail)?,
            sealed,
            created_at: now,
            expires_at: now.plus_millis(FLASH_TTL_MILLIS),
        })
        .await?;
    Ok(id)
}

/// The session's flash `id`, if it has not expired; its secret comes with it
/// the first time only. A flash that cannot be opened (another session's
/// token, a changed pepper) comes without its secret.
pub async fn take<T: DeserializeOwned>(
    state: &AppState,
    user: &PortalUser,
    id: &str,
) -> anyhow::Result<Option<TakenFlash<T>>> {
    let Some(flash) = state.store.take_flash(id, &user.session.id, Timestamp::now()).await? else {
        return Ok(None);
    };
    let secret = flash.sealed.as_deref().and_then(|sealed| open(&Binding::of(state, user), id, sealed));
    if flash.sealed.is_some() && secret.is_none() {
        tracing::warn!(flash = id, "portal: a one-time secret could not be opened");
    }
    Ok(Some(TakenFlash { kind: flash.kind, detail: serde_json::from_str(&flash.detail)?, secret }))
}

/// What a sealed secret is bound to: the server's pepper and one session.
struct Binding<'a> {
    pepper: &'a Pepper,
    session_token: &'a str,
    session_id: &'a str,
}

impl<'a> Binding<'a> {
    fn of(state: &'a AppState, user: &'a PortalUser) -> Self {
        Binding {
            pepper: &state.secrets.pepper,
            session_token: user.token.expose_secret(),
            session_id: &user.session.id,
        }
    }

    /// A key for this flash alone: HMAC(pepper, domain, session token ‖ flash id).
    fn key(&self, flash_id: &str) -> LessSafeKey {
        let material = [self.session_token.as_bytes(), b"\0", flash_id.as_bytes()].concat();
        let key = self.pepper.hash_token(FLASH_KEY_DOMAIN, &material);
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("32 bytes is a ChaCha20-Poly1305 key"))
    }

    /// The associated data: the sealed text is only good for this flash of this session.
    fn aad(&self, flash_id: &str) -> Aad<Vec<u8>> {
        Aad::from([self.session_id.as_bytes(), b"\0", flash_id.as_bytes()].concat())
    }
}

/// `base64url(nonce ‖ ciphertext ‖ tag)`.
fn seal(binding: &Binding, flash_id: &str, secret: &str) -> anyhow::Result<String> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
    let mut sealed = secret.as_bytes().to_vec();
    binding
        .key(flash_id)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), binding.aad(flash_id), &mut sealed)
        .map_err(|_| anyhow::anyhow!("sealing a one-time secret failed"))?;
    Ok(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
}

fn open(binding: &Binding, flash_id: &str, sealed: &str) -> Option<SecretString> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let (nonce, sealed) = bytes.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let opened = binding.key(flash_id).open_in_place(nonce, binding.aad(flash_id), &mut sealed).ok()?;
    String::from_utf8(opened.to_vec()).ok().map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_session_and_flash_open_a_sealed_secret() {
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        let other_pepper = Pepper::new(vec![8; 32]).unwrap();
        let binding = Binding { pepper: &pepper, session_token: "token-a", session_id: "s1" };
        let secret = "octo_live_0123456789abcdef0123456789abcdef_secret";
        let sealed = seal(&binding, "f1", secret).unwrap();
        assert!(!sealed.contains("secret") && !sealed.contains("0123456789abcdef"), "{sealed}");
        assert_ne!(sealed, seal(&binding, "f1", secret).unwrap(), "a fresh nonce each time");
        assert_eq!(open(&binding, "f1", &sealed).unwrap().expose_secret(), secret);

        let other_token = Binding { session_token: "token-b", ..binding };
        let other_session = Binding { session_id: "s2", ..binding };
        let other_server = Binding { pepper: &other_pepper, ..binding };
        for (case, wrong) in [("token", &other_token), ("session", &other_session), ("pepper", &other_server)] {
            assert!(open(wrong, "f1", &sealed).is_none(), "another {case}");
        }
        assert!(open(&binding, "f2", &sealed).is_none(), "another flash id");
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&binding, "f1", &URL_SAFE_NO_PAD.encode(tampered)).is_none(), "tampered");
        assert!(open(&binding, "f1", "short").is_none());
    }
}
