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

pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("octo_live_<32 hex>_<43 base64url>".into());
        scheme.description = Some("An organization API key.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(serde::Deserialize)]
pub struct OpenApiQuery {
    version: Option<String>,
}

/// `GET /v1/openapi.json[?version=VERSION]`: the server's default version's document, or another's.
pub async fn openapi_json(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    axum::extract::Query(query): axum::extract::Query<OpenApiQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let name = query.version.unwrap_or_else(|| state.config.default_api_version.clone());
    let Some(version) = crate::versions::ApiVersion::named(&name) else {
        return crate::versions::unknown_version(&name);
    };
    let mut response = Json(version.shape().openapi()).into_response();
    response.headers_mut().insert(crate::versions::VERSION_HEADER.clone(), version.header_value());
    response
}
