//! `octogen demo`: a ready-to-try server. Creates (once) a catalog-partner
//! organization with a granted sample catalog, and mints a fresh API key on
//! every start (revoking the previous demo keys, whose secrets were only ever
//! printed to a terminal).

use std::time::Duration;

use octogen_ingest::FeedFormat;
use octogen_store::{OrgType, RunStatus, RunTrigger, StoreError};
use secrecy::SecretString;

use crate::service::Actor;
use crate::state::AppState;

pub const DEMO_ORG: &str = "Demo Partner";
pub const DEMO_CATALOG: &str = "northwind";
const DEMO_CATALOG_NAME: &str = "Northwind Outfitters";
const DEMO_SOURCE: &str = "https://northwind.example";
const DEMO_KEY_NAME: &str = "demo";
/// A small catalog written for this project (24 products, Shopify storefront JSON).
const DEMO_FEED: &[u8] = include_bytes!("../demo/northwind-products.json");

pub struct DemoInfo {
    pub org_id: String,
    pub catalog_key: String,
    pub product_count: u64,
    pub key: SecretString,
}

pub async fn prepare(state: &AppState) -> anyhow::Result<DemoInfo> {
    let services = &state.services;
    let actor = Actor::system();
    let org = match state.store.list_orgs().await?.into_iter().find(|org| org.name == DEMO_ORG) {
        Some(org) => org,
        None => services.create_org(&actor, DEMO_ORG, OrgType::CatalogPartner).await.map_err(api_error)?,
    };
    let catalog = match state.store.get_catalog(DEMO_CATALOG).await {
        Ok(catalog) => catalog,
        Err(StoreError::NotFound(_)) => services
            .create_catalog(&actor, DEMO_CATALOG, DEMO_CATALOG_NAME, Some(DEMO_SOURCE))
            .await
            .map_err(api_error)?,
        Err(error) => return Err(error.into()),
    };
    services.grant(&actor, &org.id, &catalog.key).await.map_err(api_error)?;
    if catalog.last_indexed_at.is_none() {
        import_sample(state).await?;
    }
    for key in state.store.list_api_keys(&org.id).await? {
        if key.name == DEMO_KEY_NAME && key.revoked_at.is_none() {
            services.revoke_key(&actor, &key.id).await.map_err(api_error)?;
        }
    }
    let issued = services.create_key(&actor, &org.id, DEMO_KEY_NAME).await.map_err(api_error)?;
    let catalog = state.store.get_catalog(DEMO_CATALOG).await?;
    Ok(DemoInfo { org_id: org.id, catalog_key: catalog.key, product_count: catalog.product_count, key: issued.key })
}

fn api_error(error: crate::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

/// Imports the embedded sample feed as an ordinary index run and waits until it is searchable.
async fn import_sample(state: &AppState) -> anyhow::Result<()> {
    let indexing = &state.indexing;
    let upload = indexing.save_upload_bytes(DEMO_FEED)?;
    let request = crate::indexing::RunRequest {
        catalog_key: DEMO_CATALOG.into(),
        format: FeedFormat::Shopify,
        mapping: None,
        currency: Some("USD".into()),
        base_url: None,
        input: crate::indexing::RunInput::Upload { id: upload, name: "northwind-products.json".into() },
        trigger: RunTrigger::Operator,
    };
    let run = indexing.start_run(request).await.map_err(api_error)?;
    loop {
        let run = state.store.get_index_run(&run.id).await?;
        match run.status {
            RunStatus::Succeeded => {
                let seq = run.published_seq.unwrap_or_default();
                indexing.wait_until_searchable(seq, Duration::from_secs(30)).await;
                return Ok(());
            }
            RunStatus::Failed | RunStatus::Interrupted => {
                anyhow::bail!("importing the sample catalog failed: {}", run.error.unwrap_or_default())
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
