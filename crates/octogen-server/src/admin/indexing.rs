//! Operator API for the data plane: uploads, imports (index runs), catalog
//! sources for scheduled re-imports, and search-index rebuilds.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use octogen_store::{CatalogSource, IndexRun, RunTrigger};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::auth::Operator;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::indexing::{RunInput, RunRequest};
use crate::net::ClientAddr;
use crate::service::sources::{parse_format, shown, SourceSettings};
use crate::service::Actor;
use crate::state::AppState;

/// Uploads larger than this are refused (a feed, not a backup).
const MAX_UPLOAD_BYTES: u64 = 8 * 1024 * 1024 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    #[serde(flatten)]
    run: IndexRun,
    /// Whether this node's search index reflects the run (published runs only).
    searchable: bool,
}

fn run_view(state: &AppState, run: IndexRun) -> RunView {
    let searchable = run.published_seq.is_some_and(|seq| state.indexing.is_searchable(seq));
    RunView { run, searchable }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// The file's name, for the run's report.
    #[serde(default)]
    name: Option<String>,
}

/// Bytes gathered before each write of an upload to disk.
const UPLOAD_WRITE_BUFFER: usize = 1 << 20;

/// `POST /admin/v1/uploads`: the raw feed bytes as the body. Returns an id for one import.
pub async fn upload(
    _: Operator,
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> ApiResult<Response> {
    let id = uuid::Uuid::new_v4().to_string();
    let path = state.indexing.upload_path(&id).expect("a fresh uuid is a valid upload id");
    // Request bodies arrive in small chunks; writing each through tokio's file
    // (a blocking-pool hop per write) capped uploads near 100 MB/s.
    let file = tokio::fs::File::create(&path).await.map_err(anyhow::Error::from)?;
    let mut file = tokio::io::BufWriter::with_capacity(UPLOAD_WRITE_BUFFER, file);
    let mut stream = body.into_data_stream();
    let mut bytes: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(ApiError::bad_request(format!("the upload was interrupted: {error}")));
            }
        };
        bytes += chunk.len() as u64;
        if bytes > MAX_UPLOAD_BYTES {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(ApiError::Message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("uploads are limited to {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        file.write_all(&chunk).await.map_err(anyhow::Error::from)?;
    }
    file.flush().await.map_err(anyhow::Error::from)?;
    let name = query.name.unwrap_or_else(|| "upload".into());
    Ok((StatusCode::CREATED, Json(json!({"upload": id, "bytes": bytes, "name": name}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportRequest {
    format: String,
    /// An upload id from `POST /uploads`…
    #[serde(default)]
    upload: Option<String>,
    /// …with the file's name for the report…
    #[serde(default)]
    name: Option<String>,
    /// …or a feed URL the server fetches.
    #[serde(default)]
    url: Option<String>,
    /// CSV column mapping (TOML text).
    #[serde(default)]
    mapping: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    /// The store's URL for this import (Shopify product URLs); default: the catalog's source URL.
    #[serde(default)]
    base_url: Option<String>,
}

/// `POST /admin/v1/catalogs/{key}/imports`: starts an index run (202 with the run).
///
/// A refused request discards the upload it names: uploads are used once, and
/// one that no run will read must not stay on disk (a feed can be gigabytes).
pub async fn start_import(
    _: Operator,
    State(state): State<AppState>,
    Path(catalog_key): Path<String>,
    JsonBody(body): JsonBody<ImportRequest>,
) -> ApiResult<Response> {
    let upload = body.upload.clone();
    let started = start_import_run(&state, catalog_key, body).await;
    if let (Err(_), Some(upload)) = (&started, upload) {
        state.indexing.discard_upload(&upload).await;
    }
    Ok((StatusCode::ACCEPTED, Json(run_view(&state, started?))).into_response())
}

async fn start_import_run(state: &AppState, catalog_key: String, body: ImportRequest) -> ApiResult<IndexRun> {
    let format = parse_format(&body.format)?;
    let input = match (body.upload, body.url) {
        (Some(id), None) => RunInput::Upload { id, name: body.name.unwrap_or_else(|| "upload".into()) },
        (None, Some(url)) => RunInput::Url(url),
        _ => return Err(unprocessable("give exactly one of upload (an uploaded file) or url (a feed to fetch)")),
    };
    let request = RunRequest {
        catalog_key,
        format,
        mapping: body.mapping,
        currency: body.currency,
        base_url: body.base_url,
        input,
        trigger: RunTrigger::Operator,
    };
    state.indexing.start_run(request).await
}

pub async fn get_run(
    _: Operator,
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunView>> {
    let run = state.store.get_index_run(&run_id).await?;
    Ok(Json(run_view(&state, run)))
}

pub async fn list_runs(
    _: Operator,
    State(state): State<AppState>,
    Path(catalog_key): Path<String>,
) -> ApiResult<Json<Vec<RunView>>> {
    state.store.get_catalog(&catalog_key).await?;
    let runs = state.store.list_index_runs(Some(&catalog_key), 50).await?;
    Ok(Json(runs.into_iter().map(|run| run_view(&state, run)).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceRequest {
    url: String,
    format: String,
    #[serde(default)]
    mapping: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    /// Seconds between imports (at least 60).
    interval_secs: u64,
}

/// `PUT /admin/v1/catalogs/{key}/source`: the first scheduled import runs right away.
pub async fn set_source(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(catalog_key): Path<String>,
    JsonBody(body): JsonBody<SourceRequest>,
) -> ApiResult<Json<CatalogSource>> {
    let settings = SourceSettings {
        url: body.url,
        format: body.format,
        mapping: body.mapping,
        currency: body.currency,
        interval_secs: body.interval_secs,
    };
    Ok(Json(state.services.set_catalog_source(&Actor::operator(client.label()), &catalog_key, settings).await?))
}

pub async fn get_source(
    _: Operator,
    State(state): State<AppState>,
    Path(catalog_key): Path<String>,
) -> ApiResult<Json<Option<CatalogSource>>> {
    Ok(Json(state.store.get_catalog_source(&catalog_key).await?.map(shown)))
}

pub async fn clear_source(
    _: Operator,
    State(state): State<AppState>,
    client: ClientAddr,
    Path(catalog_key): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    state.services.clear_catalog_source(&Actor::operator(client.label()), &catalog_key).await?;
    Ok(Json(json!({"catalog": catalog_key, "source": null})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReindexRequest {
    #[serde(default)]
    catalog: Option<String>,
}

/// `POST /admin/v1/reindex`: rebuilds this node's search index (or one catalog's part) from the store.
pub async fn start_reindex(
    _: Operator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ReindexRequest>,
) -> ApiResult<Response> {
    let job = state.indexing.start_reindex(body.catalog).await?;
    Ok((StatusCode::ACCEPTED, Json(job.view())).into_response())
}

pub async fn get_reindex(_: Operator, State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let job = state
        .indexing
        .reindex_jobs
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("reindex job {id} not found")))?;
    Ok(Json(job.view()).into_response())
}

fn unprocessable(message: &str) -> ApiError {
    ApiError::Message(StatusCode::UNPROCESSABLE_ENTITY, message.to_string())
}
