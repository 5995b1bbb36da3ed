//! Server secrets that come from configuration, never from the database: the
//! key pepper and the operator token. When not configured they are generated
//! once into files under the data directory (mode 0600), which is the
//! embedded single-node default; multi-node deployments configure both.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use octogen_core::api_key::random_token;
use octogen_core::Pepper;
use octogen_store::Store;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::config::Config;

const PEPPER_FILE: &str = "key-pepper";
const ADMIN_TOKEN_FILE: &str = "admin-token";
const PEPPER_FINGERPRINT_SETTING: &str = "key_pepper_fingerprint";
/// Domain separator for operator-token hashes.
const ADMIN_TOKEN_DOMAIN: &str = "octogen-admin-token";
pub const ADMIN_TOKEN_PREFIX: &str = "octo_admin_";

pub struct ServerSecrets {
    pub pepper: Pepper,
    admin_token_hash: [u8; 32],
    /// The file holding the operator token, when this start generated it: the
    /// caller names the file (never the token: terminal output ends up in logs).
    pub generated_admin_token_file: Option<PathBuf>,
}

impl ServerSecrets {
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        ensure_private_dir(&config.data_dir)?;
        let pepper_text = match &config.key_pepper {
            Some(text) => text.clone(),
            None => read_or_create(&config.data_dir.join(PEPPER_FILE), Pepper::generate_text)?.0,
        };
        let pepper = Pepper::from_config_text(pepper_text.expose_secret()).context("key_pepper")?;
        let (admin_token, generated_admin_token_file) = match &config.admin_token {
            Some(token) => {
                check_admin_token_strength(token.expose_secret(), "admin_token")?;
                (token.clone(), None)
            }
            None => {
                let path = config.data_dir.join(ADMIN_TOKEN_FILE);
                let (token, created) = read_or_create(&path, || {
                    SecretString::from(format!("{ADMIN_TOKEN_PREFIX}{}", random_token(32).expose_secret()))
                })?;
                check_admin_token_strength(token.expose_secret(), &format!("admin_token (in {})", path.display()))?;
                (token, created.then_some(path))
            }
        };
        let admin_token_hash = pepper.hash_token(ADMIN_TOKEN_DOMAIN, admin_token.expose_secret().as_bytes());
        Ok(ServerSecrets { pepper, admin_token_hash, generated_admin_token_file })
    }

    /// Constant-time check of a presented operator token.
    pub fn is_admin_token(&self, presented: &[u8]) -> bool {
        let hash = self.pepper.hash_token(ADMIN_TOKEN_DOMAIN, presented);
        hash.ct_eq(&self.admin_token_hash).into()
    }

    /// Refuses to serve a database initialized with another pepper: every key
    /// would fail to verify, which looks like an outage rather than a misconfiguration.
    pub async fn check_pepper_matches(&self, store: &dyn Store) -> anyhow::Result<()> {
        let fingerprint = self.pepper.fingerprint();
        match store.get_setting(PEPPER_FINGERPRINT_SETTING).await? {
            None => store.put_setting(PEPPER_FINGERPRINT_SETTING, &fingerprint).await?,
            Some(stored) if stored == fingerprint => {}
            Some(stored) => anyhow::bail!(
                "the configured key_pepper (fingerprint {fingerprint}) differs from the one this database was \
                 initialized with (fingerprint {stored}); every node must use the same key_pepper"
            ),
        }
        Ok(())
    }
}

/// The operator token opens the whole admin API, so it must be as strong as
/// the tokens octogen generates: at least 32 random bytes. We cannot measure
/// randomness, so we require its encoding: after an optional `octo_admin_`
/// prefix, 43 or more base64/base64url characters (what 32 bytes encode to),
/// or 64 or more if they are all hex digits (which carry 4 bits each); and at
/// least 10 distinct characters, which no random value of that length misses
/// but `aaaa…` or a repeated word does. Passphrases (spaces, punctuation) are
/// refused: their strength cannot be told from their length.
fn check_admin_token_strength(token: &str, source: &str) -> anyhow::Result<()> {
    let body = token.strip_prefix(ADMIN_TOKEN_PREFIX).unwrap_or(token);
    let significant = body.trim_end_matches('=');
    let base64 = significant.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_+/".contains(&byte));
    let needed = if significant.bytes().all(|byte| byte.is_ascii_hexdigit()) { 64 } else { 43 };
    let distinct = significant.bytes().collect::<std::collections::HashSet<u8>>().len();
    if !base64 || significant.len() < needed || distinct < 10 {
        anyhow::bail!(
            "{source} must hold at least 32 random bytes: 43 or more base64url characters (e.g. from \
             `openssl rand -base64 32`) or 64 hex digits (`openssl rand -hex 32`), optionally after the \
             `{ADMIN_TOKEN_PREFIX}` prefix; or leave admin_token unset to have one generated"
        );
    }
    Ok(())
}

/// Reads a secret file, or creates it with `generate()` (mode 0600). Returns whether it was created.
fn read_or_create(path: &Path, generate: impl FnOnce() -> SecretString) -> anyhow::Result<(SecretString, bool)> {
    match fs::read_to_string(path) {
        Ok(text) => Ok((SecretString::from(text.trim().to_string()), false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let value = generate();
            let mut file = private_file(path).with_context(|| format!("cannot create {}", path.display()))?;
            file.write_all(value.expose_secret().as_bytes())?;
            file.sync_all()?;
            Ok((value, true))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tokens_need_32_random_bytes() {
        let strong = [
            format!("{ADMIN_TOKEN_PREFIX}{}", random_token(32).expose_secret()),
            random_token(32).expose_secret().to_string(),
            "3q2+7wAAAAEAAgADAAQABQAGAAcACAAJAAoACwAMAA0=".to_string(),
            "0123456789abcdef".repeat(4),
        ];
        for token in &strong {
            assert!(check_admin_token_strength(token, "admin_token").is_ok(), "{token}");
        }
        let weak = [
            "octo_admin_tooshorttooshorttooshort".to_string(),
            "0123456789abcdef".repeat(3),
            "a".repeat(100),
            "correct horse battery staple, correct horse battery staple".to_string(),
            format!("{ADMIN_TOKEN_PREFIX}{}", "ab".repeat(40)),
        ];
        for token in &weak {
            let error = check_admin_token_strength(token, "admin_token").expect_err(token).to_string();
            assert!(error.starts_with("admin_token must hold at least 32 random bytes"), "{error}");
            assert!(!error.contains(token.as_str()), "the token is never echoed");
        }
    }
}
