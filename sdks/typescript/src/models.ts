// Wire shapes of API version 2026-05-28 (SPEC §4–5). JSON fields are camelCase,
// except `enrichment`, whose keys are snake_case on the wire. A newer server may
// add fields; they are passed through untouched.

/** The facet names of SPEC §4. Any other name filters on a product attribute. */
export enum FacetName {
  BrandName = "brand_name",
  BrandSlug = "brand_slug",
  RawBrandName = "raw_brand_name",
  ProductType = "product_type",
  /** `male`, `female`, `unisex`. */
  Gender = "gender",
  /** `infant`, `toddler`, `kids`, `adult`. */
  AgeGroups = "age_groups",
  Color = "color",
  /** One of the 11 families: `Black`, `Blue`, `Brown`, `Gray`, `Green`, `Orange`, `Pink`, `Purple`, `Red`, `White`, `Yellow`. */
  ColorFamily = "color_family",
  /** `true` / `false`. */
  IsActivewear = "is_activewear",
  CategoryDepth0 = "category_path.depth_0",
  CategoryDepth1 = "category_path.depth_1",
  CategoryDepth2 = "category_path.depth_2",
  CategoryDepth3 = "category_path.depth_3",
  CategoryDepth4 = "category_path.depth_4",
  CategoryDepth5 = "category_path.depth_5",
  CategoryDepth6 = "category_path.depth_6",
}

/** One facet filter: values are ORed (case-insensitive); facets are ANDed. */
export interface Facet {
  name: FacetName | string;
  values: string[];
}

export interface SearchParams {
  /** Free text; leave out to browse. */
  q?: string;
  /** One granted catalog (404 `catalog_not_found` otherwise). */
  catalog?: string;
  /** Several granted catalogs. */
  catalogs?: string[];
  /** `[{name, values}]`, or `{color_family: ["Black"], gender: "male"}`. */
  facets?: Facet[] | Partial<Record<FacetName | string, string | string[]>>;
  /** Inclusive lower bound on `currentPrice` (sent as `price_min`). */
  priceMin?: number;
  /** Inclusive upper bound on `currentPrice` (sent as `price_max`). */
  priceMax?: number;
  /** A previous page's `nextCursor` (send the same filters). */
  cursor?: string;
  /** 1..100; the server's default is 50. */
  limit?: number;
}

export interface MerchantCatalogSummary {
  catalog: string;
  displayName: string;
  sourceBaseUrl: string | null;
  productCount: number;
  /** ISO 8601 UTC. */
  lastIndexedAt: string | null;
}

export interface Brand {
  name: string;
  slug: string | null;
  url: string | null;
  description: string | null;
}

export interface Rating {
  average: number;
  count: number;
}

export interface Link {
  name: string;
  url: string | null;
}

export interface Color {
  label: string;
  hexCode: string | null;
  swatchUrl: string | null;
}

export interface Variant {
  sku: string | null;
  productUrl: string | null;
  color: Color | null;
  size: string | null;
  inStock: boolean | null;
  imageUrl: string | null;
}

export interface Details {
  materials: string[];
  fit: string[];
  dimensions: string | null;
  patterns: string[];
}

export interface Audience {
  genders: string[];
  ageGroups: string[];
}

export interface Identifiers {
  productId: string | null;
  gtin: string | null;
  productGroupId: string | null;
}

export interface Promotion {
  description: string;
  code: string | null;
}

export interface Review {
  author: string | null;
  rating: number | null;
  body: string | null;
  publishedAt: string | null;
}

export interface Video {
  url: string;
  thumbnailUrl: string | null;
  name: string | null;
}

export interface CanonicalBrand {
  brand_uuid: string;
  brand_name: string;
  brand_slug: string | null;
  brand_synonyms: string[];
  brand_enrichment: Record<string, unknown> | null;
}

/** Derived facts (snake_case on the wire); the facets filter on these values. */
export interface Enrichment {
  type: string | null;
  type_synonyms: string[];
  tags: string[];
  styles: string[];
  gender: string | null;
  is_activewear: boolean | null;
  age_groups: string[];
  color: string[];
  color_family: string[];
  category_path: string[];
  attributes: Record<string, string[]>;
  attribute_handles: Record<string, string[]>;
  canonical_brand: CanonicalBrand | null;
  summary: string | null;
}

/** A search result. */
export interface MerchantProductListItem {
  uuid: string;
  catalogKey: string;
  productUrl: string;
  title: string | null;
  brand: Brand | null;
  currentPrice: number | null;
  /** Null when there is no markdown. */
  originalPrice: number | null;
  currency: string | null;
  imageUrl: string | null;
  /** Image URLs, the primary first. */
  images: string[];
  rating: Rating | null;
  isActive: boolean;
  /** ISO 8601 UTC. */
  updatedAt: string;
}

/** A full product: every list-item field plus details. */
export interface MerchantProductView extends MerchantProductListItem {
  description: string | null;
  inStock: boolean | null;
  categories: Link[];
  sizes: string[];
  colors: Color[];
  tags: string[];
  variants: Variant[];
  details: Details;
  audience: Audience | null;
  identifiers: Identifiers;
  breadcrumbs: Link[];
  promotions: Promotion[];
  reviews: Review[];
  videos: Video[];
  enrichment: Enrichment | null;
}

export interface SearchPage {
  items: MerchantProductListItem[];
  /** Null on the last page. */
  nextCursor: string | null;
  requestId?: string;
}

export interface LookupResult {
  catalogKey: string;
  catalogDisplayName: string;
  sourceBaseUrl: string | null;
  product: MerchantProductView;
  requestId?: string;
  /** `indexed` on a self-hosted server. */
  source?: string;
  requestedUrl?: string;
  normalizedUrl?: string;
}

/** One entry of a 422 body. */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
}
