//! `2026-05-28`: the contract of SPEC §1–8, as the docs and SDKs had it in May 2026.

use serde_json::Value;
use utoipa::OpenApi;

use super::{ApiShape, Caller, RenderContext};
use crate::api::{lookup, openapi, search};
use crate::service::products::{LookupOutcome, ProductSearch, SearchOutcome};

pub struct May2026;

impl ApiShape for May2026 {
    fn name(&self) -> &'static str {
        "2026-05-28"
    }

    fn parse_search(&self, body: &Value) -> Result<ProductSearch, Vec<octogen_core::ValidationIssue>> {
        search::parse_search(body)
    }

    fn render_search(&self, outcome: &SearchOutcome, context: &RenderContext<'_>) -> Value {
        serde_json::to_value(search::render_may2026(outcome, context.request_id)).unwrap_or_default()
    }

    fn parse_lookup(&self, body: &Value) -> Result<String, Vec<octogen_core::ValidationIssue>> {
        lookup::parse_lookup(body)
    }

    fn render_lookup(&self, outcome: &LookupOutcome, requested_url: &str, context: &RenderContext<'_>) -> Value {
        serde_json::to_value(lookup::render_may2026(outcome, requested_url, context.request_id)).unwrap_or_default()
    }

    /// The May 2026 contract has no `/v1/me`.
    fn render_me(&self, _caller: &Caller<'_>) -> Option<Value> {
        None
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        openapi::ApiDoc::openapi()
    }
}
