"""Response and request models (SPEC §4–5, API version 2026-05-28).

Attributes are snake_case; the wire is camelCase (aliases), except
``enrichment``, whose keys are snake_case on the wire too. Every model keeps
fields it does not know (``extra="allow"``), so a newer server's additions
never break parsing; ``model_dump(by_alias=True)`` gives the wire shape back.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "FacetName",
    "Facet",
    "Brand",
    "Rating",
    "Link",
    "Color",
    "Variant",
    "Details",
    "Audience",
    "Identifiers",
    "Promotion",
    "Review",
    "Video",
    "CanonicalBrand",
    "Enrichment",
    "CatalogSummary",
    "ProductListItem",
    "ProductView",
    "SearchPage",
    "LookupResult",
]


class FacetName(str, Enum):
    """The facet names of SPEC §4. Any other name filters on a product attribute."""

    BRAND_NAME = "brand_name"
    BRAND_SLUG = "brand_slug"
    RAW_BRAND_NAME = "raw_brand_name"
    PRODUCT_TYPE = "product_type"
    GENDER = "gender"
    AGE_GROUPS = "age_groups"
    COLOR = "color"
    COLOR_FAMILY = "color_family"
    IS_ACTIVEWEAR = "is_activewear"
    CATEGORY_DEPTH_0 = "category_path.depth_0"
    CATEGORY_DEPTH_1 = "category_path.depth_1"
    CATEGORY_DEPTH_2 = "category_path.depth_2"
    CATEGORY_DEPTH_3 = "category_path.depth_3"
    CATEGORY_DEPTH_4 = "category_path.depth_4"
    CATEGORY_DEPTH_5 = "category_path.depth_5"
    CATEGORY_DEPTH_6 = "category_path.depth_6"


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class _SnakeWire(BaseModel):
    """snake_case on the wire too (enrichment)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")


class Facet(BaseModel):
    """One facet filter: a product matches when it has any of ``values``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    values: List[str]


class Brand(_Wire):
    name: str = ""
    slug: Optional[str] = None
    url: Optional[str] = None
    description: Optional[str] = None


class Rating(_Wire):
    average: float = 0.0
    count: int = 0


class Link(_Wire):
    name: str = ""
    url: Optional[str] = None


class Color(_Wire):
    label: str = ""
    hex_code: Optional[str] = None
    swatch_url: Optional[str] = None


class Variant(_Wire):
    sku: Optional[str] = None
    product_url: Optional[str] = None
    color: Optional[Color] = None
    size: Optional[str] = None
    in_stock: Optional[bool] = None
    image_url: Optional[str] = None


class Details(_Wire):
    materials: List[str] = Field(default_factory=list)
    fit: List[str] = Field(default_factory=list)
    dimensions: Optional[str] = None
    patterns: List[str] = Field(default_factory=list)


class Audience(_Wire):
    genders: List[str] = Field(default_factory=list)
    age_groups: List[str] = Field(default_factory=list)


class Identifiers(_Wire):
    product_id: Optional[str] = None
    gtin: Optional[str] = None
    product_group_id: Optional[str] = None


class Promotion(_Wire):
    description: str = ""
    code: Optional[str] = None


class Review(_Wire):
    author: Optional[str] = None
    rating: Optional[float] = None
    body: Optional[str] = None
    published_at: Optional[str] = None


class Video(_Wire):
    url: str = ""
    thumbnail_url: Optional[str] = None
    name: Optional[str] = None


class CanonicalBrand(_SnakeWire):
    brand_uuid: str = ""
    brand_name: str = ""
    brand_slug: Optional[str] = None
    brand_synonyms: List[str] = Field(default_factory=list)
    brand_enrichment: Optional[Dict[str, Any]] = None


class Enrichment(_SnakeWire):
    """Derived facts; the facets filter on these values."""

    type: Optional[str] = None
    type_synonyms: List[str] = Field(default_factory=list)
    tags: List[str] = Field(default_factory=list)
    styles: List[str] = Field(default_factory=list)
    gender: Optional[str] = None
    is_activewear: Optional[bool] = None
    age_groups: List[str] = Field(default_factory=list)
    color: List[str] = Field(default_factory=list)
    color_family: List[str] = Field(default_factory=list)
    category_path: List[str] = Field(default_factory=list)
    attributes: Dict[str, List[str]] = Field(default_factory=dict)
    attribute_handles: Dict[str, List[str]] = Field(default_factory=dict)
    canonical_brand: Optional[CanonicalBrand] = None
    summary: Optional[str] = None


class CatalogSummary(_Wire):
    """A catalog granted to the key's organization (``GET /v1/catalogs``)."""

    catalog: str
    display_name: str
    source_base_url: Optional[str] = None
    product_count: int = 0
    last_indexed_at: Optional[datetime] = None


class ProductListItem(_Wire):
    """A search result (``MerchantProductListItem``)."""

    uuid: str
    catalog_key: str = ""
    product_url: str
    title: Optional[str] = None
    brand: Optional[Brand] = None
    current_price: Optional[float] = None
    original_price: Optional[float] = None
    currency: Optional[str] = None
    image_url: Optional[str] = None
    images: List[str] = Field(default_factory=list)
    rating: Optional[Rating] = None
    is_active: bool = True
    updated_at: Optional[datetime] = None


class ProductView(ProductListItem):
    """A full product (``MerchantProductView``): every list-item field plus details."""

    description: Optional[str] = None
    in_stock: Optional[bool] = None
    categories: List[Link] = Field(default_factory=list)
    sizes: List[str] = Field(default_factory=list)
    colors: List[Color] = Field(default_factory=list)
    tags: List[str] = Field(default_factory=list)
    variants: List[Variant] = Field(default_factory=list)
    details: Details = Field(default_factory=Details)
    audience: Optional[Audience] = None
    identifiers: Identifiers = Field(default_factory=Identifiers)
    breadcrumbs: List[Link] = Field(default_factory=list)
    promotions: List[Promotion] = Field(default_factory=list)
    reviews: List[Review] = Field(default_factory=list)
    videos: List[Video] = Field(default_factory=list)
    enrichment: Optional[Enrichment] = None


class SearchPage(_Wire):
    """One page of search results; ``next_cursor`` is None on the last page."""

    items: List[ProductListItem]
    next_cursor: Optional[str] = None
    request_id: Optional[str] = None


class LookupResult(_Wire):
    """The answer of ``POST /v1/products/lookup``."""

    catalog_key: str
    catalog_display_name: str
    source_base_url: Optional[str] = None
    product: ProductView
    request_id: Optional[str] = None
    source: Optional[str] = None
    requested_url: Optional[str] = None
    normalized_url: Optional[str] = None
