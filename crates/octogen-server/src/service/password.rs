//! Portal passwords: argon2id with explicit parameters, a length policy that
//! is checked before any hashing, and a dummy verification for unknown
//! accounts so that timing does not reveal which emails exist.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

pub const MIN_PASSWORD_CHARS: usize = 15;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// At most one hash per core at a time: a burst of sign-ins queues instead of
/// exhausting memory (each hash holds 19 MiB) or starving request handling.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2)));

/// Verified when the email is unknown, so that a failed sign-in costs the same either way.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let throwaway = octogen_core::api_key::random_token(24);
    hash_blocking(throwaway.expose_secret()).expect("hashing a random password")
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
}

/// The length policy, in characters. Runs before hashing so an oversized input costs nothing.
pub fn check_policy(password: &SecretString) -> Result<(), PasswordProblem> {
    let chars = password.expose_secret().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Err(PasswordProblem::TooShort)
    } else if chars > MAX_PASSWORD_CHARS {
        Err(PasswordProblem::TooLong)
    } else {
        Ok(())
    }
}

/// An argon2id PHC string for a password that passed `check_policy`.
pub async fn hash(password: &SecretString) -> anyhow::Result<String> {
    let password = password.clone();
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || hash_blocking(password.expose_secret())).await?
}

/// Checks a password against a stored hash, or against the dummy hash when
/// there is none (unknown account), which always fails after the same work.
pub async fn verify(stored: Option<String>, password: &SecretString) -> anyhow::Result<bool> {
    let password = password.clone();
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = verify_blocking(&hash, password.expose_secret());
        known && matches
    })
    .await
    .map_err(Into::into)
}

/// Computes the dummy hash now, so the first unknown-email sign-in is not slower than the rest.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    octogen_core::api_key::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("salt: {error}"))?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))?;
    Ok(hash.to_string())
}

/// Parameters come from the stored PHC string, so hashes made with stronger
/// parameters later still verify.
fn verify_blocking(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => {
            tracing::error!("a stored password hash is not a valid PHC string");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_string())
    }

    #[test]
    fn policy_counts_characters_not_bytes() {
        assert_eq!(check_policy(&secret(&"a".repeat(14))), Err(PasswordProblem::TooShort));
        assert_eq!(check_policy(&secret(&"a".repeat(15))), Ok(()));
        assert_eq!(check_policy(&secret(&"é".repeat(128))), Ok(()), "256 bytes, 128 characters");
        assert_eq!(check_policy(&secret(&"a".repeat(129))), Err(PasswordProblem::TooLong));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_the_documented_parameters() {
        let password = secret("correct horse battery staple");
        let stored = hash(&password).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        assert_ne!(stored, hash(&password).await.unwrap(), "a fresh salt each time");
        assert!(verify(Some(stored.clone()), &password).await.unwrap());
        assert!(!verify(Some(stored), &secret("correct horse battery stapler")).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify_but_cost_a_hash() {
        warm_up();
        let started = std::time::Instant::now();
        assert!(!verify(None, &secret("whatever password here")).await.unwrap());
        // One argon2id verification with 19 MiB is never instantaneous.
        assert!(started.elapsed() > std::time::Duration::from_millis(2), "{:?}", started.elapsed());
        assert!(!verify(Some("not a phc string".into()), &secret("whatever password here")).await.unwrap());
    }
}
