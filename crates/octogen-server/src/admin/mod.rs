//! The operator API (`/admin/v1`), used by the `octogen admin` and
//! `octogen keys` commands. Every route requires the operator token, named in
//! each handler's signature.

mod indexing;
mod users;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use self::indexing as data;
use axum::{Json, Router};
use octogen_core::error::ValidationIssue;
use octogen_core::{loc, Timestamp};
use octogen_store::{ApiKeyInfo, Catalog, Org, OrgType};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::net::ClientAddr;
use crate::service::{Actor, IssuedKey, OldKey};
use crate::state::AppState;

/// Feed uploads stream bodies of any size, so they are routed outside the request timeout and body limit.
pub fn upload_router() -> Router<AppState> {
    Router::new().route("/uploads", post(data::upload)).layer(axum::extract::DefaultBodyLimit::disable())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/orgs/{org_id}", get(get_org))
        .route("/orgs/{org_id}/suspend", post(suspend_org))
        .route("/orgs/{org_id}/unsuspend", post(unsuspend_org))
        .route("/orgs/{org_id}/rate-limit", put(set_rate_limit))
        .route("/orgs/{org_id}/api-version", put(set_api_version))
        .route("/orgs/{org_id}/grants/{catalog}", put(grant).delete(ungrant))
        .route("/orgs/{org_id}/keys", get(list_keys).post(create_key))
        .route("/catalogs", get(list_catalogs).post(create_catalog))
        .route("/catalogs/{key}/activate", post(activate_catalog))
        .route("/catalogs/{key}/deactivate", post(deactivate_catalog))
        .route("/catalogs/{key}/imports", post(data::start_import))
        .route("/catalogs/{key}/runs", get(data::list_runs))
        .route("/catalogs/{key}/source", get(data::get_source).put(data::set_source).delete(data::clear_source))
        .route("/runs/{run_id}", get(data::get_run))
        .route("/reindex", post(data::start_reindex))
        .route("/reindex/{id}", get(data::get_reindex))
        .route("/keys/{key_id}/revoke", post(revoke_key))
        .route("/keys/{key_id}/rotate", post(rotate_key))
        .merge(users::router())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrgView {
    id: String,
    name: String,
    slug: String,
    #[serde(rename = "type")]
    org_type: OrgType,
    suspended: bool,
    created_at: Timestamp,
    /// Requests per minute; null means the server's default.
    rate_limit_per_minute: Option<u32>,
    /// The pinned API version; null means the server's default.
    api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    granted_catalogs: Option<Vec<String>>,
}

impl OrgView {
    fn new(org: Org, granted_catalogs: Option<Vec<String>>) -> Self {
        OrgView {
            id: org.id,
            name: org.name,
            slug: org.slug,
            org_type: org.org_type,
            suspended: org.suspended,
            created_at: org.created_at,
            rate_limit_per_minute: org.rate_limit_per_minute,
            api_version: org.api_version,
            granted_catalogs,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogView {
    key: String,
    display_name: String,
    source_base_url: Option<String>,
    is_active: bool,
    product_count: u64,
    last_indexed_at: Option<Timestamp>,
    created_at: Timestamp,
}

impl From<Catalog> for CatalogView {
    fn from(catalog: Catalog) -> Self {
        CatalogView {
            key: catalog.key,
            display_name: catalog.display_name,
            source_base_url: catalog.source_base_url,
            is_active: catalog.is_active,
            product_count: catalog.product_count,
            last_indexed_at: catalog.last_indexed_at,
            created_at: catalog.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    id: String,
    org_id: String,
    name: String,
    /// `active`, `revoked`, or `expired` (past `expiresAt`), as of this response.
    status: &'static str,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    /// When the key stops working by itself; null: never.
    expires_at: Option<Timestamp>,
}

impl From<ApiKeyInfo> for KeyView {
    fn from(info: ApiKeyInfo) -> Self {
        KeyView {
            status: info.status_at(Timestamp::now()).as_str(),
            id: info.id,
            org_id: info.org_id,
            name: info.name,
            created_at: info.created_at,
            last_used_at: info.last_used_at,
            revoked_at: info.revoked_at,
            expires_at: info.expires_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrg {
    name: String,
    #[serde(rename = "type")]
    org_type: OrgType,
}

async fn create_org(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<CreateOrg>,
) -> ApiResult<Response> {
    let org = state.services.create_org(&Actor::operator(client.label()), &body.name, body.org_type).await?;
    Ok((StatusCode::CREATED, Json(OrgView::new(org, Some(Vec::new())))).into_response())
}

async fn list_orgs(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Vec<OrgView>>> {
    let orgs = state.store.list_orgs().await?;
    Ok(Json(orgs.into_iter().map(|org| OrgView::new(org, None)).collect()))
}

async fn get_org(_: Operator, State(state): State<AppState>, Path(org_id): Path<String>) -> ApiResult<Json<OrgView>> {
    let org = state.store.get_org(&org_id).await?;
    let granted = state.store.granted_catalogs(&org_id).await?.into_iter().map(|catalog| catalog.key).collect();
    Ok(Json(OrgView::new(org, Some(granted))))
}

async fn suspend_org(
    operator: Operator,
    state: State<AppState>,
    client: ClientAddr,
    path: Path<String>,
) -> ApiResult<Json<OrgView>> {
    set_suspended(operator, state, client, path, true).await
}

async fn unsuspend_org(
    operator: Operator,
    state: State<AppState>,
    client: ClientAddr,
    path: Path<String>,
) -> ApiResult<Json<OrgView>> {
    set_suspended(operator, state, client, path, false).await
}

async fn set_suspended(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(org_id): Path<String>,
    suspended: bool,
) -> ApiResult<Json<OrgView>> {
    let org = state.services.set_org_suspended(&Actor::operator(client.label()), &org_id, suspended).await?;
    Ok(Json(OrgView::new(org, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RateLimitRequest {
    /// Requests per minute, or null for the server's default.
    per_minute: Option<u32>,
}

async fn set_rate_limit(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<RateLimitRequest>,
) -> ApiResult<Json<OrgView>> {
    let org = state.services.set_org_rate_limit(&Actor::operator(client.label()), &org_id, body.per_minute).await?;
    Ok(Json(OrgView::new(org, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiVersionRequest {
    version: String,
}

async fn set_api_version(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<ApiVersionRequest>,
) -> ApiResult<Json<OrgView>> {
    let org = state.services.set_org_api_version(&Actor::operator(client.label()), &org_id, &body.version).await?;
    Ok(Json(OrgView::new(org, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCatalog {
    key: String,
    name: String,
    #[serde(default)]
    source_url: Option<String>,
}

async fn create_catalog(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody<CreateCatalog>,
) -> ApiResult<Response> {
    let actor = Actor::operator(client.label());
    let catalog = state.services.create_catalog(&actor, &body.key, &body.name, body.source_url.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(CatalogView::from(catalog))).into_response())
}

/// A catalog in the operator's list: with its latest index run, so the list
/// says at a glance which catalogs are fresh, failing or never imported.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogListItem {
    #[serde(flatten)]
    catalog: CatalogView,
    last_run: Option<LastRun>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LastRun {
    id: String,
    status: octogen_store::RunStatus,
    created_at: Timestamp,
    finished_at: Option<Timestamp>,
    error: Option<String>,
}

async fn list_catalogs(_: Operator, State(state): State<AppState>) -> ApiResult<Json<Vec<CatalogListItem>>> {
    let mut items = Vec::new();
    for catalog in state.store.list_catalogs().await? {
        // One indexed query per catalog (runs by catalog and time): the list is operator-only and short.
        let last_run =
            state.store.list_index_runs(Some(&catalog.key), 1).await?.into_iter().next().map(|run| LastRun {
                id: run.id,
                status: run.status,
                created_at: run.created_at,
                finished_at: run.finished_at,
                error: run.error,
            });
        items.push(CatalogListItem { catalog: catalog.into(), last_run });
    }
    Ok(Json(items))
}

async fn activate_catalog(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(key): Path<String>,
) -> ApiResult<Json<CatalogView>> {
    Ok(Json(state.services.set_catalog_active(&Actor::operator(client.label()), &key, true).await?.into()))
}

async fn deactivate_catalog(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(key): Path<String>,
) -> ApiResult<Json<CatalogView>> {
    Ok(Json(state.services.set_catalog_active(&Actor::operator(client.label()), &key, false).await?.into()))
}

async fn grant(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path((org_id, catalog)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let changed = state.services.grant(&Actor::operator(client.label()), &org_id, &catalog).await?;
    Ok(Json(json!({"org": org_id, "catalog": catalog, "granted": true, "changed": changed})))
}

async fn ungrant(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path((org_id, catalog)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let changed = state.services.ungrant(&Actor::operator(client.label()), &org_id, &catalog).await?;
    Ok(Json(json!({"org": org_id, "catalog": catalog, "granted": false, "changed": changed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
}

async fn create_key(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(org_id): Path<String>,
    JsonBody(body): JsonBody<CreateKey>,
) -> ApiResult<Response> {
    let issued = state.services.create_key(&Actor::operator(client.label()), &org_id, &body.name).await?;
    Ok(secret_response(StatusCode::CREATED, issued_json(&issued, None)))
}

async fn list_keys(
    _: Operator,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Vec<KeyView>>> {
    Ok(Json(state.store.list_api_keys(&org_id).await?.into_iter().map(KeyView::from).collect()))
}

async fn revoke_key(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(key_id): Path<String>,
) -> ApiResult<Json<KeyView>> {
    Ok(Json(state.services.revoke_key(&Actor::operator(client.label()), &key_id).await?.into()))
}

/// Without either field the old key stays active until revoked.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateKey {
    /// Revoke the old key in the same transaction.
    #[serde(default)]
    revoke_old: bool,
    /// Keep the old key working for this many seconds (1 to 30 days), then refuse it like a revoked key.
    #[serde(default)]
    expire_old_in_seconds: Option<u64>,
}

impl RotateKey {
    fn old_key(&self) -> ApiResult<OldKey> {
        match (self.revoke_old, self.expire_old_in_seconds) {
            (false, None) => Ok(OldKey::StaysActive),
            (true, None) => Ok(OldKey::RevokedNow),
            (false, Some(seconds)) => Ok(OldKey::ExpiresIn(std::time::Duration::from_secs(seconds))),
            (true, Some(_)) => Err(ApiError::validation(ValidationIssue::new(
                loc!["body", "expireOldInSeconds"],
                "value_error",
                "Give revokeOld or expireOldInSeconds, not both",
            ))),
        }
    }
}

async fn rotate_key(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(key_id): Path<String>,
    JsonBody(body): JsonBody<RotateKey>,
) -> ApiResult<Response> {
    let rotation = state.services.rotate_key(&Actor::operator(client.label()), &key_id, body.old_key()?).await?;
    Ok(secret_response(StatusCode::CREATED, issued_json(&rotation.replacement, Some(rotation.previous.into()))))
}

fn issued_json(issued: &IssuedKey, previous: Option<KeyView>) -> serde_json::Value {
    let mut body = serde_json::to_value(KeyView::from(issued.info.clone())).unwrap_or_default();
    body["key"] = json!(issued.key.expose_secret());
    if let Some(previous) = previous {
        body["previous"] = serde_json::to_value(previous).unwrap_or_default();
    }
    body
}

/// A response that carries a secret must never be stored by a cache.
fn secret_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
