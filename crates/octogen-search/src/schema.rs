//! The tantivy schema, its analyzers, and the mapping of a `ProductRecord` to
//! an index document (through [`ProductDocument`]).
//!
//! Size matters (the target is ≤ 1.5 KB per product at 1M products), so:
//! - every text field is indexed with doc ids only (`IndexRecordOption::Basic`)
//!   and without field norms: ranking uses constant per-field weights, never
//!   term frequencies, positions or lengths;
//! - the description is indexed in stemmed form only and never stored;
//! - the only stored value is the compact binary `ProductSummary`;
//! - sort keys, tie-break ids and the price live in fast (columnar) fields.

use octogen_core::facets::facet_terms;
use octogen_core::wire::{ProductRecord, ProductSummary};
use sha2::{Digest, Sha256};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST, STORED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter,
    TextAnalyzer, TokenizerManager,
};
use tantivy::{Index, TantivyDocument};

use crate::summary_codec;
use crate::IndexError;

/// Lowercased, ASCII-folded words: "Décor" → "decor". Used for exact, prefix and fuzzy matching.
pub(crate) const EXACT_ANALYZER: &str = "og_exact";
/// The exact analyzer plus English stop-word removal and stemming: "blankets" → "blanket".
pub(crate) const STEM_ANALYZER: &str = "og_stem";
/// Single-token analyzer for ids, catalog keys and facet terms.
pub(crate) const RAW_ANALYZER: &str = "raw";
/// Words longer than this are dropped (they are URLs, hashes or garbage, never shopper words).
const MAX_WORD_BYTES: usize = 40;
/// The browse sort key keeps this many bytes of the lowercased title.
pub(crate) const TITLE_SORT_MAX_BYTES: usize = 64;

/// Field handles, resolved once from the schema by name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// 16 bytes: the big-endian sort id. Indexed so updates can delete by it.
    pub id: Field,
    /// The sort id split into two fast u64 columns for the tie-break.
    pub id_hi: Field,
    pub id_lo: Field,
    pub catalog: Field,
    /// Every `facet_terms(product)` value.
    pub facet: Field,
    pub title: Field,
    pub title_stem: Field,
    pub brand: Field,
    /// Product type, type synonyms, tags, styles, categories, colors, materials.
    pub kind: Field,
    pub kind_stem: Field,
    pub description: Field,
    pub price: Field,
    /// Lowercased title prefix, the browse order.
    pub title_sort: Field,
    /// The compact binary `ProductSummary`.
    pub summary: Field,
}

pub(crate) fn build_schema() -> Schema {
    let mut builder = Schema::builder();
    let indexed_only = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
    };
    builder.add_bytes_field("id", BytesOptions::default().set_indexed());
    builder.add_u64_field("id_hi", FAST);
    builder.add_u64_field("id_lo", FAST);
    builder.add_text_field("catalog", indexed_only(RAW_ANALYZER));
    builder.add_text_field("facet", indexed_only(RAW_ANALYZER));
    // The title's field norm (its number of indexed words, a byte per document) breaks ranking ties.
    let title = indexed_only(EXACT_ANALYZER);
    let title_indexing = title.get_indexing_options().cloned().map(|indexing| indexing.set_fieldnorms(true));
    builder.add_text_field("title", title.set_indexing_options(title_indexing.unwrap_or_default()));
    builder.add_text_field("title_stem", indexed_only(STEM_ANALYZER));
    builder.add_text_field("brand", indexed_only(EXACT_ANALYZER));
    builder.add_text_field("kind", indexed_only(EXACT_ANALYZER));
    builder.add_text_field("kind_stem", indexed_only(STEM_ANALYZER));
    builder.add_text_field("description", indexed_only(STEM_ANALYZER));
    builder.add_f64_field("price", NumericOptions::default().set_fast());
    builder.add_text_field("title_sort", TextOptions::default().set_fast(RAW_ANALYZER));
    builder.add_bytes_field("summary", STORED);
    builder.build()
}

impl Fields {
    pub(crate) fn resolve(schema: &Schema) -> Result<Fields, IndexError> {
        let field = |name: &str| {
            schema.get_field(name).map_err(|_| IndexError::Corrupt(format!("the index has no field `{name}`")))
        };
        Ok(Fields {
            id: field("id")?,
            id_hi: field("id_hi")?,
            id_lo: field("id_lo")?,
            catalog: field("catalog")?,
            facet: field("facet")?,
            title: field("title")?,
            title_stem: field("title_stem")?,
            brand: field("brand")?,
            kind: field("kind")?,
            kind_stem: field("kind_stem")?,
            description: field("description")?,
            price: field("price")?,
            title_sort: field("title_sort")?,
            summary: field("summary")?,
        })
    }
}

pub(crate) fn exact_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub(crate) fn stem_analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(english_stop_words())
        .filter(crate::stem_cache::CachedStemmer);
    builder.build()
}

/// Stems one already-lowercased word with the same stemmer the index uses.
pub(crate) fn word_stemmer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default()).filter(Stemmer::new(Language::English)).build()
}

pub(crate) fn english_stop_words() -> StopWordFilter {
    // The feature `stopwords` is on by default in tantivy, so the list always exists.
    StopWordFilter::new(Language::English).unwrap_or_else(|| StopWordFilter::remove(Vec::new()))
}

pub(crate) fn register_analyzers(index: &Index) {
    register_analyzers_in(index.tokenizers());
}

fn register_analyzers_in(manager: &TokenizerManager) {
    manager.register(EXACT_ANALYZER, exact_analyzer());
    manager.register(STEM_ANALYZER, stem_analyzer());
}

/// The 128-bit id that orders products with equal sort keys. For a UUID it is
/// the UUID's own value, so the order equals the order of the canonical
/// (lowercase, hyphenated) strings. Any other id string falls back to the
/// first 128 bits of its SHA-256, which is just as deterministic everywhere.
pub(crate) fn sort_id(uuid: &str) -> u128 {
    match uuid::Uuid::try_parse(uuid) {
        Ok(parsed) => parsed.as_u128(),
        Err(_) => {
            let digest = Sha256::digest(uuid.as_bytes());
            let mut first = [0u8; 16];
            first.copy_from_slice(&digest[..16]);
            u128::from_be_bytes(first)
        }
    }
}

/// `_` + the title lowercased, whitespace-collapsed, cut to `TITLE_SORT_MAX_BYTES`
/// on a char boundary. The constant first byte keeps the order of the rest and
/// makes the key non-empty, so every document has a value in the fast column.
pub(crate) fn title_sort_key(title: &str) -> String {
    let mut key = String::with_capacity(TITLE_SORT_MAX_BYTES);
    key.push('_');
    for word in title.split_whitespace() {
        for ch in word.chars().flat_map(char::to_lowercase).chain(std::iter::once(' ')) {
            if key.len() + ch.len_utf8() > TITLE_SORT_MAX_BYTES {
                return key.trim_end().to_string();
            }
            key.push(ch);
        }
    }
    key.trim_end().to_string()
}

/// Every value the index document of an active product holds, apart from
/// tantivy: it can be prepared on another thread than the index writer's, or
/// ahead of time and kept as bytes (an import stages it next to the product,
/// so indexing a run need not decode the product's JSON again). The document
/// is [`ProductDocument::to_tantivy`] of it, whichever way it came.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProductDocument {
    /// Unique, sorted.
    facets: Vec<String>,
    /// Unique, sorted.
    brands: Vec<String>,
    /// Unique, sorted.
    kinds: Vec<String>,
    /// The description, then the enrichment summary.
    descriptions: Vec<String>,
    summary: ProductSummary,
}

impl ProductDocument {
    /// The document of `record`, which must be active (inactive products are not indexed).
    pub fn of(record: &ProductRecord) -> ProductDocument {
        let product = &record.product;
        let owned = |texts: Vec<&str>| texts.into_iter().map(str::to_owned).collect();
        ProductDocument {
            facets: facet_terms(product),
            brands: owned(brand_texts(record)),
            kinds: owned(kind_texts(record)),
            descriptions: product.description.iter().chain(&product.enrichment.summary).cloned().collect(),
            summary: ProductSummary::from_record(record),
        }
    }

    pub fn uuid(&self) -> &str {
        &self.summary.uuid
    }

    /// When the product last changed, as search results report it. A document
    /// prepared before its publish gets the publish's time here.
    pub fn set_updated_at(&mut self, updated_at: octogen_core::Timestamp) {
        self.summary.updated_at = updated_at;
    }

    /// The compact binary form (postcard), for staging.
    pub fn encode(&self) -> Result<Vec<u8>, IndexError> {
        postcard::to_allocvec(self)
            .map_err(|error| IndexError::InvalidRecord { uuid: self.summary.uuid.clone(), reason: error.to_string() })
    }

    pub fn decode(bytes: &[u8]) -> Result<ProductDocument, IndexError> {
        postcard::from_bytes(bytes).map_err(|error| IndexError::corrupt("undecodable prepared index document", error))
    }

    pub(crate) fn to_tantivy(&self, fields: &Fields) -> Result<TantivyDocument, IndexError> {
        let summary = &self.summary;
        let id = sort_id(&summary.uuid);
        let mut doc = TantivyDocument::default();
        doc.add_bytes(fields.id, &id.to_be_bytes());
        doc.add_u64(fields.id_hi, (id >> 64) as u64);
        doc.add_u64(fields.id_lo, id as u64);
        doc.add_text(fields.catalog, &summary.catalog_key);
        for term in &self.facets {
            doc.add_text(fields.facet, term);
        }
        doc.add_text(fields.title, &summary.title);
        doc.add_text(fields.title_stem, &summary.title);
        doc.add_text(fields.title_sort, title_sort_key(&summary.title));
        for brand in &self.brands {
            doc.add_text(fields.brand, brand);
        }
        for kind in &self.kinds {
            doc.add_text(fields.kind, kind);
            doc.add_text(fields.kind_stem, kind);
        }
        for description in &self.descriptions {
            doc.add_text(fields.description, description);
        }
        if let Some(price) = summary.current_price.filter(|price| price.is_finite()) {
            doc.add_f64(fields.price, price);
        }
        doc.add_bytes(fields.summary, &summary_codec::encode(summary)?);
        Ok(doc)
    }
}

fn brand_texts(record: &ProductRecord) -> Vec<&str> {
    let product = &record.product;
    let mut texts: Vec<&str> = product.brand.iter().map(|brand| brand.name.as_str()).collect();
    if let Some(canonical) = &product.enrichment.canonical_brand {
        texts.push(&canonical.brand_name);
        texts.extend(canonical.brand_synonyms.iter().map(String::as_str));
    }
    texts.sort_unstable();
    texts.dedup();
    texts
}

/// What a shopper means by "the kind of thing": types, tags, styles,
/// categories, colors, materials, patterns.
fn kind_texts(record: &ProductRecord) -> Vec<&str> {
    let product = &record.product;
    let enrichment = &product.enrichment;
    let mut texts: Vec<&str> = Vec::new();
    texts.extend(product.product_type.as_deref());
    texts.extend(enrichment.product_type.as_deref());
    let lists = [
        &enrichment.type_synonyms,
        &product.tags,
        &enrichment.tags,
        &enrichment.styles,
        &enrichment.category_path,
        &enrichment.color,
        &enrichment.color_family,
        &product.details.materials,
        &product.details.patterns,
    ];
    for list in lists {
        texts.extend(list.iter().map(String::as_str));
    }
    texts.extend(product.colors.iter().map(|color| color.label.as_str()));
    texts.sort_unstable();
    texts.dedup();
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_document_survives_encoding_and_takes_the_publish_time() {
        let mut product = octogen_core::Product {
            url: "https://shop.example/products/lamp".into(),
            title: "Brass Desk Lamp".into(),
            description: Some("A lamp for the desk.".into()),
            product_type: Some("Lamp".into()),
            current_price: Some(49.0),
            tags: vec!["lighting".into()],
            ..octogen_core::Product::default()
        };
        product.enrichment.color_family = vec!["gold".into()];
        product.enrichment.summary = Some("Brass lamp".into());
        let record = ProductRecord {
            uuid: "0a8f3e2c-1111-4222-8333-444455556666".into(),
            catalog_key: "shop".into(),
            is_active: true,
            updated_at: octogen_core::Timestamp::from_millis(0),
            normalized_url: "https://shop.example/products/lamp".into(),
            product,
        };
        let document = ProductDocument::of(&record);
        assert_eq!(document.descriptions, ["A lamp for the desk.", "Brass lamp"]);
        assert!(document.kinds.contains(&"gold".to_string()) && document.kinds.contains(&"Lamp".to_string()));
        let mut decoded = ProductDocument::decode(&document.encode().unwrap()).unwrap();
        assert_eq!(decoded, document);

        let published = octogen_core::Timestamp::from_millis(1_700_000_000_000);
        decoded.set_updated_at(published);
        let at_publish = ProductRecord { updated_at: published, ..record };
        assert_eq!(decoded, ProductDocument::of(&at_publish), "as if prepared from the published record");
        assert!(ProductDocument::decode(b"\xff\xff").is_err());
    }

    #[test]
    fn sort_id_of_a_uuid_orders_like_its_canonical_string() {
        let low = "0a8f3e2c-1111-4222-8333-444455556666";
        let high = "f0000000-0000-4000-8000-000000000000";
        assert!(sort_id(low) < sort_id(high));
        assert_eq!(sort_id(low), sort_id(&low.to_uppercase()));
        assert_ne!(sort_id("not-a-uuid"), sort_id("not-a-uuid-2"));
    }

    #[test]
    fn title_sort_key_is_lowercase_collapsed_and_bounded() {
        assert_eq!(title_sort_key("  Cozy   BLANKET "), "_cozy blanket");
        assert_eq!(title_sort_key(""), "_");
        let long = "Ä".repeat(100);
        let key = title_sort_key(&long);
        assert!(key.len() <= TITLE_SORT_MAX_BYTES);
        assert!(key[1..].chars().all(|c| c == 'ä'));
    }

    #[test]
    fn stem_analyzer_drops_stop_words_and_stems() {
        let mut analyzer = stem_analyzer();
        let mut stream = analyzer.token_stream("Blankets for the Beds");
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            words.push(token.text.clone());
        }
        assert_eq!(words, ["blanket", "bed"]);
    }
}
