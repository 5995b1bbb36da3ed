//! Organizations, catalogs, grants and API keys.

use std::time::Duration;

use octogen_core::error::ValidationIssue;
use octogen_core::{loc, ApiKey, Timestamp};
use octogen_store::{ApiKeyInfo, AuditEvent, Catalog, NewApiKey, NewCatalog, NewOrg, OldKeyEnd, Org, OrgType};
use secrecy::SecretString;
use serde_json::json;

use super::{Actor, Services};
use crate::error::{ApiError, ApiResult};

/// The largest per-organization budget accepted (requests per minute).
pub const MAX_RATE_LIMIT: u32 = 10_000_000;

/// A freshly minted key: its metadata and the full key, which exists only
/// in this value and the one response that shows it.
pub struct IssuedKey {
    pub info: ApiKeyInfo,
    pub key: SecretString,
}

pub struct KeyRotation {
    pub replacement: IssuedKey,
    /// The key being replaced, after the rotation.
    pub previous: ApiKeyInfo,
}

/// The longest an old key may keep working after a rotation: long enough to
/// deploy a replacement everywhere, short enough that a forgotten old key dies.
pub const MAX_OLD_KEY_LIFETIME_SECS: u64 = 30 * 24 * 3600;

/// What a rotation does with the key it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKey {
    /// Keeps working until revoked (the default of the CLI and the operator API).
    StaysActive,
    /// Stops at once.
    RevokedNow,
    /// Keeps working for this long (at most `MAX_OLD_KEY_LIFETIME_SECS`), then is refused like a revoked key.
    ExpiresIn(Duration),
}

impl Services {
    pub async fn create_org(&self, actor: &Actor, name: &str, org_type: OrgType) -> ApiResult<Org> {
        let name = required_text("name", name, 200)?;
        if octogen_store::org_slug(&name).is_empty() {
            return Err(invalid("name", "value_error", "The name needs at least one letter or digit", &name));
        }
        let new = NewOrg {
            // Pinned at creation, so changing the server's default later moves no existing organization.
            api_version: Some(self.default_api_version.name().to_string()),
            ..NewOrg::new(name, org_type)
        };
        let detail = json!({"name": new.name, "type": new.org_type, "apiVersion": new.api_version});
        let event = actor.event(Some(&new.id), "organization.created", Some(&new.id), Some(detail));
        Ok(self.store.create_org(new, &[event]).await?)
    }

    pub async fn set_org_suspended(&self, actor: &Actor, org_id: &str, suspended: bool) -> ApiResult<Org> {
        let action = if suspended { "organization.suspended" } else { "organization.unsuspended" };
        let event = actor.event(Some(org_id), action, Some(org_id), None);
        Ok(self.store.set_org_suspended(org_id, suspended, &[event]).await?)
    }

    /// Sets an organization's budget (`None`: the server default). Effective on its next request.
    pub async fn set_org_rate_limit(&self, actor: &Actor, org_id: &str, per_minute: Option<u32>) -> ApiResult<Org> {
        if let Some(limit) = per_minute {
            if !(1..=MAX_RATE_LIMIT).contains(&limit) {
                return Err(ApiError::validation(
                    ValidationIssue::new(
                        loc!["body", "perMinute"],
                        "less_than_equal",
                        format!("The rate limit must be between 1 and {MAX_RATE_LIMIT} requests per minute"),
                    )
                    .with_input(json!(limit))
                    .with_ctx(json!({"ge": 1, "le": MAX_RATE_LIMIT})),
                ));
            }
        }
        let detail = json!({"perMinute": per_minute});
        let event = actor.event(Some(org_id), "organization.rate_limit_set", Some(org_id), Some(detail));
        Ok(self.store.set_org_rate_limit(org_id, per_minute, &[event]).await?)
    }

    /// Pins an organization to an API version; effective on its next request.
    pub async fn set_org_api_version(&self, actor: &Actor, org_id: &str, version: &str) -> ApiResult<Org> {
        let Some(version) = crate::versions::ApiVersion::named(version) else {
            return Err(ApiError::validation(
                ValidationIssue::new(
                    loc!["body", "version"],
                    "enum",
                    format!(
                        "Input should be one of the known API versions: {}",
                        crate::versions::ApiVersion::known_names().join(", ")
                    ),
                )
                .with_input(json!(version)),
            ));
        };
        let detail = json!({"version": version.name()});
        let event = actor.event(Some(org_id), "organization.api_version_set", Some(org_id), Some(detail));
        Ok(self.store.set_org_api_version(org_id, Some(version.name()), &[event]).await?)
    }

    pub async fn create_catalog(
        &self,
        actor: &Actor,
        key: &str,
        display_name: &str,
        source_base_url: Option<&str>,
    ) -> ApiResult<Catalog> {
        let key = key.trim();
        if !is_catalog_key(key) {
            return Err(invalid(
                "key",
                "string_pattern_mismatch",
                "A catalog key is 1-64 characters: lowercase letters, digits, '-' or '_', starting with a letter or digit",
                key,
            ));
        }
        let display_name = required_text("name", display_name, 200)?;
        let source_base_url =
            source_base_url.map(str::trim).filter(|url| !url.is_empty()).map(validate_base_url).transpose()?;
        let event = actor.event(None, "catalog.created", Some(key), Some(json!({"name": display_name})));
        let new = NewCatalog { key: key.to_string(), display_name, source_base_url };
        Ok(self.store.create_catalog(new, &[event]).await?)
    }

    pub async fn set_catalog_active(&self, actor: &Actor, key: &str, active: bool) -> ApiResult<Catalog> {
        let action = if active { "catalog.activated" } else { "catalog.deactivated" };
        let event = actor.event(None, action, Some(key), None);
        Ok(self.store.set_catalog_active(key, active, &[event]).await?)
    }

    /// Returns whether the grant is new (only then is it recorded).
    pub async fn grant(&self, actor: &Actor, org_id: &str, catalog_key: &str) -> ApiResult<bool> {
        let event = actor.event(Some(org_id), "grant.added", Some(catalog_key), None);
        Ok(self.store.grant(org_id, catalog_key, &[event]).await?)
    }

    /// Returns whether there was a grant to remove (only then is it recorded).
    pub async fn ungrant(&self, actor: &Actor, org_id: &str, catalog_key: &str) -> ApiResult<bool> {
        let event = actor.event(Some(org_id), "grant.removed", Some(catalog_key), None);
        Ok(self.store.ungrant(org_id, catalog_key, &[event]).await?)
    }

    pub async fn create_key(&self, actor: &Actor, org_id: &str, name: &str) -> ApiResult<IssuedKey> {
        let name = required_text("name", name, 100)?;
        let (key, new) = self.new_key(org_id, name);
        let event = key_created(actor, &new, None);
        let info = self.store.create_api_key(new, &[event]).await?;
        Ok(IssuedKey { info, key: key.reveal() })
    }

    pub async fn revoke_key(&self, actor: &Actor, key_id: &str) -> ApiResult<ApiKeyInfo> {
        let before = self.store.get_api_key(key_id).await?;
        let event = key_revoked(actor, &before);
        Ok(self.store.revoke_api_key(key_id, &[event]).await?)
    }

    /// Issues a replacement for the same organization and ends the old key as
    /// `old` says, in one transaction: a rotation never leaves a replacement
    /// without the old key's end, or the other way round.
    pub async fn rotate_key(&self, actor: &Actor, key_id: &str, old: OldKey) -> ApiResult<KeyRotation> {
        let now = Timestamp::now();
        let old_end = old_key_end(old, now)?;
        let previous = self.store.get_api_key(key_id).await?;
        let (key, new) = self.new_key(&previous.org_id, rotated_name(&previous.name));
        let mut events = vec![key_created(actor, &new, Some(&previous.id))];
        let fate = match old_end {
            OldKeyEnd::StaysActive => json!({"replacement": new.id.to_string(), "oldKey": "stays active"}),
            OldKeyEnd::Revoked => json!({"replacement": new.id.to_string(), "oldKey": "revoked"}),
            OldKeyEnd::ExpiresAt(at) => {
                json!({"replacement": new.id.to_string(), "oldKey": "expires", "expiresAt": at.to_rfc3339()})
            }
        };
        events.push(actor.event(Some(&previous.org_id), "api_key.rotated", Some(&previous.id), Some(fate)));
        if old_end == OldKeyEnd::Revoked {
            events.push(key_revoked(actor, &previous));
        }
        let (info, previous) = self.store.rotate_api_key(key_id, new, old_end, now, &events).await?;
        Ok(KeyRotation { replacement: IssuedKey { info, key: key.reveal() }, previous })
    }

    /// A fresh key for `org_id` and the record the store keeps of it (its hash, never the secret).
    fn new_key(&self, org_id: &str, name: String) -> (ApiKey, NewApiKey) {
        let key = ApiKey::generate();
        let new = NewApiKey {
            id: key.id(),
            org_id: org_id.to_string(),
            name,
            secret_hash: key.hash(&self.secrets.pepper),
            expires_at: None,
        };
        (key, new)
    }
}

fn key_created(actor: &Actor, new: &NewApiKey, rotated_from: Option<&str>) -> AuditEvent {
    let mut detail = json!({"name": new.name});
    if let Some(old) = rotated_from {
        detail["rotatedFrom"] = json!(old);
    }
    actor.event(Some(&new.org_id), "api_key.created", Some(&new.id.to_string()), Some(detail))
}

fn key_revoked(actor: &Actor, key: &ApiKeyInfo) -> AuditEvent {
    actor.event(Some(&key.org_id), "api_key.revoked", Some(&key.id), Some(json!({"name": key.name})))
}

/// When the old key of a rotation stops: refused beyond `MAX_OLD_KEY_LIFETIME_SECS`, and below a second.
fn old_key_end(old: OldKey, now: Timestamp) -> ApiResult<OldKeyEnd> {
    Ok(match old {
        OldKey::StaysActive => OldKeyEnd::StaysActive,
        OldKey::RevokedNow => OldKeyEnd::Revoked,
        OldKey::ExpiresIn(lifetime) if (1..=MAX_OLD_KEY_LIFETIME_SECS).contains(&lifetime.as_secs()) => {
            OldKeyEnd::ExpiresAt(now.plus_millis(lifetime.as_millis() as i64))
        }
        OldKey::ExpiresIn(lifetime) => {
            return Err(ApiError::validation(
                ValidationIssue::new(
                    loc!["body", "expireOldInSeconds"],
                    "less_than_equal",
                    format!(
                        "The old key can keep working for 1 second to {} days after a rotation",
                        MAX_OLD_KEY_LIFETIME_SECS / 86_400
                    ),
                )
                .with_input(json!(lifetime.as_secs()))
                .with_ctx(json!({"ge": 1, "le": MAX_OLD_KEY_LIFETIME_SECS})),
            ))
        }
    })
}

fn rotated_name(name: &str) -> String {
    let base = name.strip_suffix(" (rotated)").unwrap_or(name);
    let mut rotated = format!("{base} (rotated)");
    rotated.truncate(100);
    rotated
}

fn is_catalog_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit())
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The merchant site is shown to partners (`sourceUrl`), so it may not carry
/// credentials (userinfo or token-like parameters, see `redact_url`).
fn validate_base_url(url: &str) -> ApiResult<String> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => {
            if octogen_fetch::carries_credentials(url) {
                let message = "Input should not carry credentials: the merchant site is shown to partners";
                return Err(invalid("source_url", "value_error", message, &octogen_fetch::redact_url(url)));
            }
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(invalid(
            "source_url",
            "url_parsing",
            "Input should be an absolute http(s) URL",
            &octogen_fetch::redact_url(url),
        )),
    }
}

fn required_text(field: &str, value: &str, max_chars: usize) -> ApiResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation(
            ValidationIssue::new(loc!["body", field], "string_too_short", "String should have at least 1 character")
                .with_input(json!(value))
                .with_ctx(json!({"min_length": 1})),
        ));
    }
    if trimmed.chars().count() > max_chars || trimmed.chars().any(char::is_control) {
        return Err(ApiError::validation(
            ValidationIssue::new(
                loc!["body", field],
                "string_too_long",
                format!("String should have at most {max_chars} printable characters"),
            )
            .with_input(json!(value))
            .with_ctx(json!({"max_length": max_chars})),
        ));
    }
    Ok(trimmed.to_string())
}

fn invalid(field: &str, kind: &str, message: &str, input: &str) -> ApiError {
    ApiError::validation(ValidationIssue::new(loc!["body", field], kind, message).with_input(json!(input)))
}
