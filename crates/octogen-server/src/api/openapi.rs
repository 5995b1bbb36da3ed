//! The OpenAPI 3.1 document at `/v1/openapi.json`, generated from the handlers
//! and wire types so it cannot drift from the code.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use octogen_core::error::ValidationIssue;

/// An error with a string `detail` (auth, authorization, not found, rate limit).
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    #[schema(example = "catalog_not_found")]
    pub detail: String,
}

/// A validation error: `detail` lists every problem.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrorBody {
    pub detail: Vec<ValidationIssue>,
}

/// A 422 of an operation that also has a coded 422 (e.g. `invalid_product_url`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum UnprocessableBody {
    Coded(ErrorDetail),
    Validation(ValidationErrorBody),
}

/// A string of at least one character (list items in request schemas).
pub struct NonEmptyString;

impl utoipa::PartialSchema for NonEmptyString {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .into()
    }
}

impl ToSchema for NonEmptyString {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Octogen Platform Catalog API",
        description = "Search and look up products in the merchant catalogs granted to your organization. \
                       Authenticate every request with `Authorization: Bearer <API key>`.",
        version = "2026-05-28"
    ),
    paths(super::catalogs::list_catalogs, super::search::search_products, super::lookup::lookup_product),
    components(schemas(ErrorDetail, ValidationErrorBody, UnprocessableBody, ValidationIssue)),
    modifiers(&BearerAuth),
    tags((name = "catalogs", description = "Catalogs granted to your organization"), (name = "products", description = "Product search and lookup"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("octo_live_<32 hex>_<43 base64url>".into());
        scheme.description = Some("An organization API key.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
