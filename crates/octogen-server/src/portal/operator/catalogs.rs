//! Operator pages for catalogs: create, (de)activate, configure a source,
//! import from a URL, and the index runs with their reports.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use octogen_ingest::FeedFormat;
use octogen_store::{IndexRun, RunTrigger};
use serde::{Deserialize, Serialize};

use super::confirm::{confirm_page, Confirmation};
use super::orgs::{form_error, redirect};
use super::OperatorUser;
use crate::indexing::{RunInput, RunRequest};
use crate::portal::csrf::CsrfForm;
use crate::portal::render::{page, time, Feedback, PortalError};
use crate::portal::PortalUser;
use crate::service::sources::{parse_format, SourceSettings};
use crate::state::AppState;

/// Index runs listed on a catalog's page.
const SHOWN_RUNS: u32 = 20;

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Catalog created. Configure its source or import a feed below.",
        "activated" => "Catalog activated: organizations it is granted to see it again.",
        "deactivated" => "Catalog deactivated: hidden from every partner from the next request on.",
        "source" => "Source saved. The first scheduled import starts right away.",
        "source-cleared" => "Scheduled imports stopped.",
        "import" => "Import started. Its run appears below; reload to follow its progress.",
        _ => return None,
    })
}

#[derive(Serialize)]
struct CatalogRow {
    key: String,
    display_name: String,
    source_base_url: Option<String>,
    is_active: bool,
    product_count: u64,
    last_indexed_at: Option<String>,
}

impl From<octogen_store::Catalog> for CatalogRow {
    fn from(catalog: octogen_store::Catalog) -> Self {
        CatalogRow {
            key: catalog.key,
            display_name: catalog.display_name,
            source_base_url: catalog.source_base_url,
            is_active: catalog.is_active,
            product_count: catalog.product_count,
            last_indexed_at: catalog.last_indexed_at.map(time),
        }
    }
}

#[derive(Serialize)]
struct RunRow {
    id: String,
    status: &'static str,
    trigger: &'static str,
    format: String,
    source: String,
    created_at: String,
    finished_at: Option<String>,
    seen: u64,
    added: u64,
    updated: u64,
    deactivated: u64,
    skipped: u64,
    error: Option<String>,
    report: Option<String>,
}

impl From<IndexRun> for RunRow {
    fn from(run: IndexRun) -> Self {
        RunRow {
            id: run.id,
            status: run.status.as_str(),
            trigger: run.trigger.as_str(),
            format: run.format,
            source: run.source,
            created_at: time(run.created_at),
            finished_at: run.finished_at.map(time),
            seen: run.counts.seen,
            added: run.counts.added,
            updated: run.counts.updated,
            deactivated: run.counts.deactivated,
            skipped: run.counts.skipped,
            error: run.error,
            report: run.report.map(|report| serde_json::to_string_pretty(&report).unwrap_or_default()),
        }
    }
}

fn formats() -> Vec<&'static str> {
    FeedFormat::ALL.iter().map(|format| format.as_str()).collect()
}

/// `GET /operator/catalogs`.
pub async fn list(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    catalogs_page(&state, &user, Feedback::notice(notice_text(query.notice.as_deref()))).await
}

async fn catalogs_page(state: &AppState, user: &PortalUser, feedback: Feedback) -> Result<Response, PortalError> {
    let catalogs: Vec<CatalogRow> = state.store.list_catalogs().await?.into_iter().map(CatalogRow::from).collect();
    let status = feedback.status();
    let context = context! {
        layout => user.layout("operator-catalogs"), catalogs,
        notice => feedback.notice, error => feedback.error, typed => feedback.typed,
    };
    Ok(page(status, "portal/operator/catalogs.html", context))
}

#[derive(Deserialize, Serialize)]
pub struct CreateCatalog {
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    source_url: String,
}

/// `POST /operator/catalogs`.
pub async fn create(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    CsrfForm(form): CsrfForm<CreateCatalog>,
) -> Result<Response, PortalError> {
    let source_url = Some(form.source_url.as_str()).filter(|url| !url.trim().is_empty());
    match state.services.create_catalog(&user.actor(), &form.key, &form.name, source_url).await {
        Ok(catalog) => Ok(redirect(&format!("/operator/catalogs/{}?notice=created", catalog.key))),
        Err(error) => {
            form_error(error, |message| catalogs_page(&state, &user, Feedback::refused(message, &form))).await
        }
    }
}

/// `GET /operator/catalogs/{key}`.
pub async fn show(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
    Query(query): Query<Notice>,
) -> Result<Response, PortalError> {
    catalog_page(&state, &user, &key, Feedback::notice(notice_text(query.notice.as_deref())), None).await
}

/// Which of the page's two forms a refusal belongs to (its fields are shown again there).
#[derive(Serialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum CatalogForm {
    Import,
    Source,
}

async fn catalog_page(
    state: &AppState,
    user: &PortalUser,
    key: &str,
    feedback: Feedback,
    refused_form: Option<CatalogForm>,
) -> Result<Response, PortalError> {
    let catalog = state.store.get_catalog(key).await?;
    let source = state.store.get_catalog_source(key).await?.map(|source| {
        let url = octogen_fetch::redact_url(&source.url);
        // A URL with credentials is never put back into the page: the form asks for it again.
        let form_url = (!octogen_fetch::carries_credentials(&source.url)).then(|| source.url.clone());
        context! {
            url, form_url, format => source.format, currency => source.currency,
            interval_minutes => source.interval_secs / 60, next_run_at => time(source.next_run_at),
        }
    });
    let runs: Vec<RunRow> =
        state.store.list_index_runs(Some(key), SHOWN_RUNS).await?.into_iter().map(RunRow::from).collect();
    let status = feedback.status();
    let context = context! {
        layout => user.layout("operator-catalogs"),
        catalog => CatalogRow::from(catalog), source, runs, formats => formats(),
        notice => feedback.notice, error => feedback.error, typed => feedback.typed, refused_form,
    };
    Ok(page(status, "portal/operator/catalog.html", context))
}

/// `GET /operator/catalogs/{key}/deactivate`: the confirmation (changes nothing).
pub async fn confirm_deactivate(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
) -> Result<Response, PortalError> {
    let catalog = state.store.get_catalog(&key).await?;
    if !catalog.is_active {
        return Err(PortalError::BadRequest(format!("{} is already inactive.", catalog.display_name)));
    }
    let confirmation = Confirmation {
        title: format!("Deactivate {}?", catalog.display_name),
        consequence: format!(
            "From the next request on, the catalog {} and its {} products disappear for every organization it is \
             granted to: from their catalog lists, searches, lookups and agents. Grants, products and scheduled \
             imports are kept.",
            catalog.key, catalog.product_count
        ),
        undo: Some("Activate the catalog on its page to bring it back for the same organizations.".into()),
        action: format!("/operator/catalogs/{key}/deactivate"),
        button: "Deactivate catalog".into(),
        cancel: format!("/operator/catalogs/{key}"),
    };
    Ok(confirm_page(&user, "operator-catalogs", confirmation))
}

/// `POST /operator/catalogs/{key}/activate`.
pub async fn activate(
    state: State<AppState>,
    user: OperatorUser,
    path: Path<String>,
    form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    set_active(state, user, path, form, true).await
}

/// `POST /operator/catalogs/{key}/deactivate`.
pub async fn deactivate(
    state: State<AppState>,
    user: OperatorUser,
    path: Path<String>,
    form: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    set_active(state, user, path, form, false).await
}

async fn set_active(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
    active: bool,
) -> Result<Response, PortalError> {
    state.services.set_catalog_active(&user.actor(), &key, active).await?;
    let notice = if active { "activated" } else { "deactivated" };
    Ok(redirect(&format!("/operator/catalogs/{key}?notice={notice}")))
}

#[derive(Deserialize, Serialize)]
pub struct SourceForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    interval_minutes: String,
}

/// `POST /operator/catalogs/{key}/source`.
pub async fn set_source(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
    CsrfForm(form): CsrfForm<SourceForm>,
) -> Result<Response, PortalError> {
    state.store.get_catalog(&key).await?;
    let fail = |message: String| {
        catalog_page(&state, &user, &key, Feedback::refused(message, &form), Some(CatalogForm::Source))
    };
    let Ok(minutes) = form.interval_minutes.trim().parse::<u64>() else {
        return fail("Enter the interval as a whole number of minutes (at least 1).".into()).await;
    };
    let settings = SourceSettings {
        url: form.url.trim().to_string(),
        format: form.format.clone(),
        mapping: None,
        currency: non_empty(&form.currency),
        interval_secs: minutes.saturating_mul(60),
    };
    match state.services.set_catalog_source(&user.actor(), &key, settings).await {
        Ok(_) => Ok(redirect(&format!("/operator/catalogs/{key}?notice=source"))),
        Err(error) => form_error(error, fail).await,
    }
}

/// `POST /operator/catalogs/{key}/source/clear`.
pub async fn clear_source(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
    _: CsrfForm<serde::de::IgnoredAny>,
) -> Result<Response, PortalError> {
    state.store.get_catalog(&key).await?;
    state.services.clear_catalog_source(&user.actor(), &key).await?;
    Ok(redirect(&format!("/operator/catalogs/{key}?notice=source-cleared")))
}

#[derive(Deserialize, Serialize)]
pub struct ImportForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    currency: String,
}

/// `POST /operator/catalogs/{key}/imports`: one index run from a feed URL the server fetches.
pub async fn import(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(key): Path<String>,
    CsrfForm(form): CsrfForm<ImportForm>,
) -> Result<Response, PortalError> {
    state.store.get_catalog(&key).await?;
    let fail = |message: String| {
        catalog_page(&state, &user, &key, Feedback::refused(message, &form), Some(CatalogForm::Import))
    };
    let format = match parse_format(&form.format) {
        Ok(format) => format,
        Err(error) => return form_error(error, fail).await,
    };
    let url = form.url.trim().to_string();
    if !matches!(url::Url::parse(&url).map(|u| u.scheme().to_string()).as_deref(), Ok("http" | "https")) {
        return fail("Enter the feed URL as an http(s) URL, such as https://shop.example/products.json.".into()).await;
    }
    let request = RunRequest {
        catalog_key: key.clone(),
        format,
        mapping: None,
        currency: non_empty(&form.currency),
        base_url: None,
        input: RunInput::Url(url),
        trigger: RunTrigger::Portal,
    };
    match state.indexing.start_run(request).await {
        Ok(_) => Ok(redirect(&format!("/operator/catalogs/{key}?notice=import"))),
        Err(error) => form_error(error, fail).await,
    }
}

/// `GET /operator/runs/{id}`: one run with its full report.
pub async fn run(
    State(state): State<AppState>,
    OperatorUser(user): OperatorUser,
    Path(run_id): Path<String>,
) -> Result<Response, PortalError> {
    let run = state.store.get_index_run(&run_id).await?;
    let catalog_key = run.catalog_key.clone();
    let context = context! { layout => user.layout("operator-catalogs"), run => RunRow::from(run), catalog_key };
    Ok(page(StatusCode::OK, "portal/operator/run.html", context))
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|text| !text.is_empty())
}
