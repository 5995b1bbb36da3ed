//! The stored form of a `ProductSummary`: postcard (compact, non-self-describing
//! binary, typically 40–60 % of the JSON size before the doc store compresses it).
//!
//! Because postcard carries no field names, a change to `ProductSummary` would
//! make old stored bytes undecodable. The index therefore records a
//! fingerprint of the summary's shape in its commit payload; an index written
//! with another shape is reported as incompatible on open and rebuilt.

use octogen_core::product::{Brand, Image, Product, Rating};
use octogen_core::wire::{ProductRecord, ProductSummary};
use octogen_core::Timestamp;
use sha2::{Digest, Sha256};

use crate::IndexError;

pub(crate) fn encode(summary: &ProductSummary) -> Result<Vec<u8>, IndexError> {
    postcard::to_allocvec(summary)
        .map_err(|error| IndexError::InvalidRecord { uuid: summary.uuid.clone(), reason: error.to_string() })
}

pub(crate) fn decode(bytes: &[u8]) -> Result<ProductSummary, IndexError> {
    postcard::from_bytes(bytes).map_err(|error| IndexError::corrupt("undecodable stored product summary", error))
}

/// A short hash of the JSON form of a fully populated summary: it changes when
/// a field of `ProductSummary` (or of a type inside it) is added, removed or renamed.
pub(crate) fn shape_fingerprint() -> String {
    let json = serde_json::to_string(&ProductSummary::from_record(&sample_record())).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest[..8].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn sample_record() -> ProductRecord {
    let mut product = Product {
        url: "u".into(),
        title: "t".into(),
        description: Some("d".into()),
        brand: Some(Brand { name: "b".into(), slug: Some("s".into()), url: Some("u".into()), description: None }),
        product_type: Some("p".into()),
        current_price: Some(1.0),
        original_price: Some(2.0),
        currency: Some("c".into()),
        images: vec![Image {
            url: "i".into(),
            width: Some(1),
            height: Some(1),
            mime_type: Some("m".into()),
            size_bytes: Some(1),
        }],
        rating: Some(Rating { average: 1.0, count: 1 }),
        in_stock: Some(true),
        sizes: vec!["s".into()],
        colors: vec![octogen_core::product::Color::labelled("c")],
        tags: vec!["t".into()],
        ..Product::default()
    };
    product.enrichment.gender = Some("g".into());
    product.enrichment.category_path = vec!["c".into()];
    ProductRecord {
        uuid: "u".into(),
        catalog_key: "c".into(),
        is_active: true,
        updated_at: Timestamp::from_millis(1),
        normalized_url: "n".into(),
        product,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_full_summary() {
        let summary = ProductSummary::from_record(&sample_record());
        let bytes = encode(&summary).expect("encodes");
        assert_eq!(decode(&bytes).expect("decodes"), summary);
        assert!(bytes.len() < serde_json::to_vec(&summary).expect("json").len());
    }

    #[test]
    fn garbage_is_reported_as_corruption() {
        assert!(matches!(decode(&[0xff, 0xff, 0xff]), Err(IndexError::Corrupt(_))));
    }

    #[test]
    fn fingerprint_is_stable() {
        assert_eq!(shape_fingerprint(), shape_fingerprint());
        assert_eq!(shape_fingerprint().len(), 16);
    }
}
