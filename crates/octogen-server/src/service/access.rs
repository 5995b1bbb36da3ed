//! Organizations, catalogs, grants and API keys.

use octogen_core::error::ValidationIssue;
use octogen_core::{loc, ApiKey};
use octogen_store::{ApiKeyInfo, Catalog, NewApiKey, NewCatalog, NewOrg, Org, OrgType};
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
    /// The key being replaced, after the rotation (revoked only when asked).
    pub previous: ApiKeyInfo,
}

impl Services {
    pub async fn create_org(&self, actor: &Actor, name: &str, org_type: OrgType) -> ApiResult<Org> {
        let name = required_text("name", name, 200)?;
        if octogen_store::org_slug(&name).is_empty() {
            return Err(invalid("name", "value_error", "The name needs at least one letter or digit", &name));
        }
        let org = self.store.create_org(NewOrg { name, org_type }).await?;
        // Pinned at creation, so changing the server's default later moves no existing organization.
        let org = self.store.set_org_api_version(&org.id, Some(self.default_api_version.name())).await?;
        self.audit(
            actor,
            Some(&org.id),
            "organization.created",
            Some(&org.id),
            Some(json!({"name": org.name, "type": org.org_type, "apiVersion": org.api_version})),
        )
        .await?;
        Ok(org)
    }

    pub async fn set_org_suspended(&self, actor: &Actor, org_id: &str, suspended: bool) -> ApiResult<Org> {
        let org = self.store.set_org_suspended(org_id, suspended).await?;
        let action = if suspended { "organization.suspended" } else { "organization.unsuspended" };
        self.audit(actor, Some(&org.id), action, Some(&org.id), None).await?;
        Ok(org)
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
        let org = self.store.set_org_rate_limit(org_id, per_minute).await?;
        self.audit(
            actor,
            Some(org_id),
            "organization.rate_limit_set",
            Some(org_id),
            Some(json!({"perMinute": per_minute})),
        )
        .await?;
        Ok(org)
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
        let org = self.store.set_org_api_version(org_id, Some(version.name())).await?;
        self.audit(
            actor,
            Some(org_id),
            "organization.api_version_set",
            Some(org_id),
            Some(json!({"version": version.name()})),
        )
        .await?;
        Ok(org)
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
        let catalog =
            self.store.create_catalog(NewCatalog { key: key.to_string(), display_name, source_base_url }).await?;
        self.audit(actor, None, "catalog.created", Some(&catalog.key), Some(json!({"name": catalog.display_name})))
            .await?;
        Ok(catalog)
    }

    pub async fn set_catalog_active(&self, actor: &Actor, key: &str, active: bool) -> ApiResult<Catalog> {
        let catalog = self.store.set_catalog_active(key, active).await?;
        let action = if active { "catalog.activated" } else { "catalog.deactivated" };
        self.audit(actor, None, action, Some(key), None).await?;
        Ok(catalog)
    }

    pub async fn grant(&self, actor: &Actor, org_id: &str, catalog_key: &str) -> ApiResult<bool> {
        let changed = self.store.grant(org_id, catalog_key).await?;
        if changed {
            self.audit(actor, Some(org_id), "grant.added", Some(catalog_key), None).await?;
        }
        Ok(changed)
    }

    pub async fn ungrant(&self, actor: &Actor, org_id: &str, catalog_key: &str) -> ApiResult<bool> {
        let changed = self.store.ungrant(org_id, catalog_key).await?;
        if changed {
            self.audit(actor, Some(org_id), "grant.removed", Some(catalog_key), None).await?;
        }
        Ok(changed)
    }

    pub async fn create_key(&self, actor: &Actor, org_id: &str, name: &str) -> ApiResult<IssuedKey> {
        let name = required_text("name", name, 100)?;
        let key = ApiKey::generate();
        let info = self
            .store
            .create_api_key(NewApiKey {
                id: key.id(),
                org_id: org_id.to_string(),
                name,
                secret_hash: key.hash(&self.secrets.pepper),
            })
            .await?;
        self.audit(actor, Some(org_id), "api_key.created", Some(&info.id), Some(json!({"name": info.name}))).await?;
        Ok(IssuedKey { info, key: key.reveal() })
    }

    pub async fn revoke_key(&self, actor: &Actor, key_id: &str) -> ApiResult<ApiKeyInfo> {
        let before = self.store.get_api_key(key_id).await?;
        let info = self.store.revoke_api_key(key_id).await?;
        if before.revoked_at.is_none() {
            self.audit(actor, Some(&info.org_id), "api_key.revoked", Some(&info.id), Some(json!({"name": info.name})))
                .await?;
        }
        Ok(info)
    }

    /// Issues a replacement for the same organization. The old key stays
    /// active (so the caller can deploy the new one first) unless `revoke_old`.
    pub async fn rotate_key(&self, actor: &Actor, key_id: &str, revoke_old: bool) -> ApiResult<KeyRotation> {
        let previous = self.store.get_api_key(key_id).await?;
        if previous.revoked_at.is_some() {
            return Err(ApiError::Message(
                axum::http::StatusCode::CONFLICT,
                format!("API key {key_id} is revoked; create a new key instead of rotating it"),
            ));
        }
        let name = rotated_name(&previous.name);
        let replacement = self.create_key(actor, &previous.org_id, &name).await?;
        self.audit(
            actor,
            Some(&previous.org_id),
            "api_key.rotated",
            Some(&previous.id),
            Some(json!({"replacement": replacement.info.id})),
        )
        .await?;
        let previous = if revoke_old { self.revoke_key(actor, key_id).await? } else { previous };
        Ok(KeyRotation { replacement, previous })
    }
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
