"""Async Python client for the Octogen Platform Catalog API.

    import asyncio
    from octogen_ai_sdk import OctogenClient

    async def main():
        async with OctogenClient() as client:  # OCTO_API_KEY, OCTO_BASE_URL
            catalogs = await client.list_catalogs()
            page = await client.search_products("black hoodie", facets={"color_family": ["Black"]}, limit=10)
            found = await client.lookup_product(page.items[0].product_url)

    asyncio.run(main())
"""

from ._client import (
    API_KEY_ENV,
    API_VERSION,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    FALLBACK_API_KEY_ENV,
    OctogenClient,
    __version__,
)
from ._errors import (
    MissingAPIKeyError,
    OctogenAPIError,
    OctogenAuthenticationError,
    OctogenConnectionError,
    OctogenError,
    OctogenForbiddenError,
    OctogenNotFoundError,
    OctogenRateLimitError,
    OctogenServerError,
    OctogenValidationError,
)
from .models import (
    Audience,
    Brand,
    CanonicalBrand,
    CatalogSummary,
    Color,
    Details,
    Enrichment,
    Facet,
    FacetName,
    Identifiers,
    Link,
    LookupResult,
    ProductListItem,
    ProductView,
    Promotion,
    Rating,
    Review,
    SearchPage,
    Variant,
    Video,
)

__all__ = [
    "OctogenClient",
    "API_KEY_ENV",
    "API_VERSION",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "FALLBACK_API_KEY_ENV",
    "__version__",
    "OctogenError",
    "MissingAPIKeyError",
    "OctogenConnectionError",
    "OctogenAPIError",
    "OctogenAuthenticationError",
    "OctogenForbiddenError",
    "OctogenNotFoundError",
    "OctogenValidationError",
    "OctogenRateLimitError",
    "OctogenServerError",
    "Audience",
    "Brand",
    "CanonicalBrand",
    "CatalogSummary",
    "Color",
    "Details",
    "Enrichment",
    "Facet",
    "FacetName",
    "Identifiers",
    "Link",
    "LookupResult",
    "ProductListItem",
    "ProductView",
    "Promotion",
    "Rating",
    "Review",
    "SearchPage",
    "Variant",
    "Video",
]
