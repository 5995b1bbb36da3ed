//! Catalog sources: where a catalog's feed lives, for scheduled re-imports.
//! Shared by the admin API and the portal's operator area.

use axum::http::StatusCode;
use octogen_core::Timestamp;
use octogen_ingest::FeedFormat;
use octogen_store::CatalogSource;
use serde_json::json;

use super::{Actor, Services};
use crate::error::{ApiError, ApiResult};

/// Scheduled imports run at most this often.
pub const MIN_INTERVAL_SECS: u64 = 60;

pub struct SourceSettings {
    pub url: String,
    pub format: String,
    /// CSV column mapping (TOML text).
    pub mapping: Option<String>,
    pub currency: Option<String>,
    pub interval_secs: u64,
}

impl Services {
    /// Sets a catalog's source; its first scheduled import runs right away.
    /// Returns the source as it may be shown (see [`shown`]).
    pub async fn set_catalog_source(
        &self,
        actor: &Actor,
        catalog_key: &str,
        settings: SourceSettings,
    ) -> ApiResult<CatalogSource> {
        parse_format(&settings.format)?;
        if settings.interval_secs < MIN_INTERVAL_SECS {
            return Err(unprocessable("intervalSecs must be at least 60"));
        }
        if !is_http_url(&settings.url) {
            return Err(unprocessable(&format!("{:?} is not an http(s) URL", settings.url)));
        }
        let source = CatalogSource {
            url: settings.url,
            format: settings.format,
            mapping: settings.mapping,
            currency: settings.currency,
            interval_secs: settings.interval_secs,
            next_run_at: Timestamp::now(),
        };
        self.store.set_catalog_source(catalog_key, Some(source.clone())).await?;
        let source = shown(source);
        let detail = json!({"url": source.url, "format": source.format, "intervalSecs": source.interval_secs});
        self.audit(actor, None, "catalog.source_set", Some(catalog_key), Some(detail)).await?;
        Ok(source)
    }

    pub async fn clear_catalog_source(&self, actor: &Actor, catalog_key: &str) -> ApiResult<()> {
        self.store.set_catalog_source(catalog_key, None).await?;
        self.audit(actor, None, "catalog.source_cleared", Some(catalog_key), None).await?;
        Ok(())
    }
}

/// A source as it may be shown (API responses, the portal, audit events): its
/// URL without credentials. The stored source keeps them; the fetch needs them.
pub fn shown(source: CatalogSource) -> CatalogSource {
    CatalogSource { url: octogen_fetch::redact_url(&source.url), ..source }
}

/// A feed format by name (`shopify`, `merchant-xml`, …), or a 422 naming the known ones.
/// Whether `text` is an absolute http(s) URL (a feed or a store's address).
pub fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| matches!(url.scheme(), "http" | "https"))
}

pub fn parse_format(name: &str) -> ApiResult<FeedFormat> {
    name.parse().map_err(|error: octogen_ingest::UnknownFormat| unprocessable(&error.to_string()))
}

fn unprocessable(message: &str) -> ApiError {
    ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, message.to_string())
}
