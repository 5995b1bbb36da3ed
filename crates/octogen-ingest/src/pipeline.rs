//! What happens to every record after its parser: validation (title, URL,
//! prices, field caps), URL resolution, duplicate detection, enrichment, and
//! delivery to the caller. Parsers only translate their format into a `Draft`.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;

use octogen_core::product::Image;
use octogen_core::url_norm::{absolutize, normalize_product_url};
use octogen_core::Product;

use crate::enrich::{enrich, FeedHints};
use crate::error::{RecordErrorKind, RecordLocation, Skip};
use crate::text::{char_count, check_price_number, collapse_whitespace, truncate_chars};
use crate::{FeedOptions, FeedSummary, Limits, UnenrichedRecord};

/// A record as its parser understood it, before validation and enrichment.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub product: Product,
    pub hints: FeedHints,
}

/// Where parsers deliver records.
pub trait RecordSink {
    fn submit(&mut self, location: RecordLocation, draft: Result<Draft, Skip>) -> ControlFlow<()>;
}

pub struct Pipeline<'a, F> {
    options: &'a FeedOptions,
    on_record: F,
    /// 128-bit hashes of accepted normalized URLs → their record number. Hashes
    /// keep a million-product feed's set to a few dozen MB.
    seen: HashMap<u128, u64>,
    summary: FeedSummary,
}

/// A product that passed validation, before enrichment: what
/// [`crate::parse_feed_unenriched`] hands over, so that the enrichment (about
/// a sixth of parsing a feed, measured) can run on another thread.
#[derive(Debug, Clone)]
pub struct Unenriched {
    product: Product,
    hints: FeedHints,
    normalized_url: String,
}

/// An accepted product with its enrichment, and its normalized URL (which
/// keys it in its catalog), so that the stager need not parse the URL again.
#[derive(Debug, Clone)]
pub struct Enriched {
    pub product: Product,
    pub normalized_url: String,
}

impl Unenriched {
    /// Title, URL, links, prices and lists as validation left them.
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// The product with its `enrichment` filled in, as `parse_feed` hands it over.
    pub fn enrich(self) -> Product {
        self.into_enriched().product
    }

    /// [`Unenriched::enrich`], keeping the normalized URL validation computed.
    pub fn into_enriched(self) -> Enriched {
        let Unenriched { mut product, hints, normalized_url } = self;
        enrich(&mut product, &hints);
        Enriched { product, normalized_url }
    }
}

impl<'a, F: FnMut(UnenrichedRecord) -> ControlFlow<()>> Pipeline<'a, F> {
    pub fn new(options: &'a FeedOptions, on_record: F) -> Self {
        Pipeline { options, on_record, seen: HashMap::new(), summary: FeedSummary::default() }
    }

    pub fn finish(self) -> FeedSummary {
        self.summary
    }

    fn accept(&mut self, location: &RecordLocation, draft: Draft) -> Result<Unenriched, Skip> {
        let Draft { mut product, hints } = draft;
        let limits = &self.options.limits;
        check_title(&mut product, limits)?;
        product.url = resolve_product_url(&product.url, self.options.base_url.as_deref(), limits)?;
        let normalized = normalize_product_url(&product.url).map_err(|error| {
            Skip::new(RecordErrorKind::InvalidUrl, format!("product URL {:?}: {error}", product.url))
        })?;
        check_brand(&mut product, limits)?;
        check_prices(&product)?;
        clean_description(&mut product, limits);
        clean_currency(&mut product, self.options.default_currency.as_deref());
        clean_lists(&mut product, limits);
        self.remember_url(&normalized, location.number)?;
        Ok(Unenriched { product, hints, normalized_url: normalized })
    }

    fn remember_url(&mut self, normalized: &str, number: u64) -> Result<(), Skip> {
        let key = url_key(normalized);
        if let Some(first) = self.seen.get(&key) {
            return Err(Skip::new(
                RecordErrorKind::DuplicateUrl,
                format!("duplicate product URL {normalized} (first seen at record {first})"),
            ));
        }
        self.seen.insert(key, number);
        Ok(())
    }
}

impl<F: FnMut(UnenrichedRecord) -> ControlFlow<()>> RecordSink for Pipeline<'_, F> {
    fn submit(&mut self, location: RecordLocation, draft: Result<Draft, Skip>) -> ControlFlow<()> {
        self.summary.records += 1;
        let record = draft.and_then(|draft| self.accept(&location, draft)).map_err(|skip| skip.at(location));
        match record {
            Ok(_) => self.summary.accepted += 1,
            Err(_) => self.summary.skipped += 1,
        }
        let flow = (self.on_record)(record);
        if flow.is_break() {
            self.summary.stopped_early = true;
        }
        flow
    }
}

fn url_key(normalized: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        normalized.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

fn check_title(product: &mut Product, limits: &Limits) -> Result<(), Skip> {
    let title = collapse_whitespace(&product.title);
    if title.is_empty() {
        return Err(Skip::new(RecordErrorKind::MissingTitle, "missing title"));
    }
    let length = char_count(&title);
    if length > limits.max_title_chars {
        return Err(Skip::new(
            RecordErrorKind::FieldTooLong,
            format!("title is {length} characters long (limit {})", limits.max_title_chars),
        ));
    }
    product.title = title;
    Ok(())
}

/// An absolute http(s) URL, resolving a relative one against the base URL.
pub fn resolve_product_url(raw: &str, base_url: Option<&str>, limits: &Limits) -> Result<String, Skip> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Skip::new(RecordErrorKind::MissingUrl, "missing product URL"));
    }
    let length = char_count(raw);
    if length > limits.max_url_chars {
        return Err(Skip::new(
            RecordErrorKind::FieldTooLong,
            format!("product URL is {length} characters long (limit {})", limits.max_url_chars),
        ));
    }
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url.to_string()),
        Ok(url) => Err(Skip::new(
            RecordErrorKind::InvalidUrl,
            format!("product URL {raw:?} is not http(s) (scheme {:?})", url.scheme()),
        )),
        Err(url::ParseError::RelativeUrlWithoutBase) => match base_url {
            Some(base) => absolutize(base, raw).ok_or_else(|| {
                Skip::new(
                    RecordErrorKind::InvalidUrl,
                    format!("relative product URL {raw:?} does not resolve against {base}"),
                )
            }),
            None => Err(Skip::new(
                RecordErrorKind::RelativeUrl,
                format!("relative product URL {raw:?} and no base URL to resolve it against"),
            )),
        },
        Err(error) => Err(Skip::new(RecordErrorKind::InvalidUrl, format!("product URL {raw:?} is invalid: {error}"))),
    }
}

fn check_brand(product: &mut Product, limits: &Limits) -> Result<(), Skip> {
    let Some(brand) = product.brand.as_mut() else { return Ok(()) };
    brand.name = collapse_whitespace(&brand.name);
    if brand.name.is_empty() {
        product.brand = None;
        return Ok(());
    }
    let length = char_count(&brand.name);
    if length > limits.max_brand_chars {
        return Err(Skip::new(
            RecordErrorKind::FieldTooLong,
            format!("brand is {length} characters long (limit {})", limits.max_brand_chars),
        ));
    }
    Ok(())
}

/// Parsers refuse bad price text; this catches numbers that arrived as numbers.
fn check_prices(product: &Product) -> Result<(), Skip> {
    for price in [product.current_price, product.original_price].into_iter().flatten() {
        check_price_number(price)?;
    }
    Ok(())
}

fn clean_description(product: &mut Product, limits: &Limits) {
    let Some(description) = product.description.take() else { return };
    let lines: Vec<String> = description.lines().map(collapse_whitespace).filter(|line| !line.is_empty()).collect();
    if lines.is_empty() {
        return;
    }
    let text = lines.join("\n");
    product.description = Some(if char_count(&text) > limits.max_description_chars {
        truncate_chars(&text, limits.max_description_chars)
    } else {
        text
    });
}

fn clean_currency(product: &mut Product, default_currency: Option<&str>) {
    let currency = product.currency.as_deref().or(default_currency).map(|code| code.trim().to_ascii_uppercase());
    product.currency = currency.filter(|code| code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()));
}

/// Absolute http(s) links are kept as written (the common case, and parsing
/// every image URL is costly); others are resolved against the product page.
/// The page is parsed only when a link needs it (`ProductPage`).
fn resolve_link(page: &ProductPage<'_>, link: &str) -> Option<String> {
    let link = link.trim();
    let lower_scheme = link.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let absolute = lower_scheme.starts_with("https://") || lower_scheme.starts_with("http://");
    if absolute && !link.contains(char::is_whitespace) {
        return Some(link.to_string());
    }
    let joined = page.url()?.join(link).ok()?;
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

/// The product's page URL, parsed on first use: most feeds give absolute
/// links, and parsing the page for every product was a few per cent of an import.
struct ProductPage<'a> {
    raw: &'a str,
    parsed: std::cell::OnceCell<Option<url::Url>>,
}

impl ProductPage<'_> {
    fn url(&self) -> Option<&url::Url> {
        self.parsed.get_or_init(|| url::Url::parse(self.raw).ok()).as_ref()
    }
}

fn clean_lists(product: &mut Product, limits: &Limits) {
    let page_url = product.url.clone();
    let page = ProductPage { raw: &page_url, parsed: std::cell::OnceCell::new() };
    let resolve = |link: &str| resolve_link(&page, link);
    let mut images: Vec<Image> = Vec::with_capacity(product.images.len());
    for mut image in product.images.drain(..) {
        let Some(url) = resolve(&image.url) else { continue };
        if images.iter().any(|kept| kept.url == url) {
            continue;
        }
        image.url = url;
        images.push(image);
    }
    images.truncate(limits.max_images);
    product.images = images;

    product.tags = dedupe_values(std::mem::take(&mut product.tags), limits);
    product.tags.truncate(limits.max_tags);
    product.sizes = dedupe_values(std::mem::take(&mut product.sizes), limits);
    product.colors.retain(|color| !color.label.trim().is_empty() && char_count(&color.label) <= limits.max_value_chars);
    for values in product.attributes.values_mut() {
        *values = dedupe_values(std::mem::take(values), limits);
    }
    product.attributes.retain(|name, values| !name.trim().is_empty() && !values.is_empty());

    product.variants.truncate(limits.max_variants);
    for variant in &mut product.variants {
        variant.product_url = variant.product_url.as_deref().and_then(resolve);
        variant.image_url = variant.image_url.as_deref().and_then(resolve);
    }
}

/// Trimmed, non-empty, not over the value cap, first spelling of each case-insensitive value.
fn dedupe_values(values: Vec<String>, limits: &Limits) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let value = collapse_whitespace(&value);
        if value.is_empty() || char_count(&value) > limits.max_value_chars {
            continue;
        }
        if !kept.iter().any(|existing| existing.eq_ignore_ascii_case(&value)) {
            kept.push(value);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn urls_resolve_or_are_named() {
        let limits = limits();
        assert_eq!(resolve_product_url(" https://x.example/p/1 ", None, &limits).unwrap(), "https://x.example/p/1");
        assert_eq!(
            resolve_product_url("/products/a", Some("https://shop.example"), &limits).unwrap(),
            "https://shop.example/products/a"
        );
        let relative = resolve_product_url("/products/a", None, &limits).unwrap_err();
        assert_eq!(relative.kind, RecordErrorKind::RelativeUrl);
        assert_eq!(relative.reason, "relative product URL \"/products/a\" and no base URL to resolve it against");
        assert_eq!(resolve_product_url("", None, &limits).unwrap_err().kind, RecordErrorKind::MissingUrl);
        assert_eq!(resolve_product_url("ftp://x/p", None, &limits).unwrap_err().kind, RecordErrorKind::InvalidUrl);
        let long = format!("https://x.example/{}", "a".repeat(3000));
        assert_eq!(resolve_product_url(&long, None, &limits).unwrap_err().kind, RecordErrorKind::FieldTooLong);
    }

    #[test]
    fn duplicates_name_the_first_record() {
        let options = FeedOptions::default();
        let mut delivered = Vec::new();
        let mut pipeline = Pipeline::new(&options, |record| {
            delivered.push(record);
            ControlFlow::Continue(())
        });
        let draft = |url: &str| Draft {
            product: Product { title: "Shirt".into(), url: url.into(), ..Product::default() },
            ..Draft::default()
        };
        let _ = pipeline.submit(RecordLocation::new(1, Some(2)), Ok(draft("https://shop.example/p/1")));
        let _ =
            pipeline.submit(RecordLocation::new(2, Some(3)), Ok(draft("http://www.shop.example/p/1/?utm_source=x")));
        let summary = pipeline.finish();
        assert_eq!((summary.accepted, summary.skipped), (1, 1));
        let error = delivered[1].as_ref().unwrap_err();
        assert_eq!(
            error.to_string(),
            "record 2 (line 3): duplicate product URL https://shop.example/p/1 (first seen at record 1)"
        );
    }

    #[test]
    fn descriptions_are_truncated_not_refused() {
        let limits = Limits { max_description_chars: 50, ..Limits::default() };
        let mut product = Product { description: Some("word ".repeat(40)), ..Product::default() };
        clean_description(&mut product, &limits);
        let description = product.description.unwrap();
        assert!(char_count(&description) <= 50);
        assert!(description.ends_with('…'));
    }
}
