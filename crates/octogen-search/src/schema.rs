//! The tantivy schema, its analyzers, and the mapping of a `ProductRecord` to
//! an index document.
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
        .filter(Stemmer::new(Language::English));
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

/// The index document of an active product.
pub(crate) fn product_document(fields: &Fields, record: &ProductRecord) -> Result<TantivyDocument, IndexError> {
    let product = &record.product;
    let enrichment = &product.enrichment;
    let id = sort_id(&record.uuid);
    let mut doc = TantivyDocument::default();
    doc.add_bytes(fields.id, &id.to_be_bytes());
    doc.add_u64(fields.id_hi, (id >> 64) as u64);
    doc.add_u64(fields.id_lo, id as u64);
    doc.add_text(fields.catalog, &record.catalog_key);
    for term in facet_terms(product) {
        doc.add_text(fields.facet, &term);
    }
    doc.add_text(fields.title, &product.title);
    doc.add_text(fields.title_stem, &product.title);
    doc.add_text(fields.title_sort, title_sort_key(&product.title));
    for brand in brand_texts(record) {
        doc.add_text(fields.brand, brand);
    }
    for kind in kind_texts(record) {
        doc.add_text(fields.kind, kind);
        doc.add_text(fields.kind_stem, kind);
    }
    if let Some(description) = &product.description {
        doc.add_text(fields.description, description);
    }
    if let Some(summary) = &enrichment.summary {
        doc.add_text(fields.description, summary);
    }
    if let Some(price) = product.current_price.filter(|price| price.is_finite()) {
        doc.add_f64(fields.price, price);
    }
    doc.add_bytes(fields.summary, &summary_codec::encode(&ProductSummary::from_record(record))?);
    Ok(doc)
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
