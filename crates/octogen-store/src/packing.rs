//! How product records are kept in the database: their JSON, zstd-compressed.
//!
//! A product's JSON is about 3 KB and compresses about 3× at level 1, the
//! fastest level; an import at scale is bound by the bytes the database
//! writes (BENCHMARKS.md §5), and a lookup pays a few microseconds to unpack.
//! Each thread keeps one compression and one decompression context, so
//! neither allocates per product.

use std::cell::RefCell;

const LEVEL: i32 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The stored form of a product record's JSON.
pub fn pack(json: &str) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor =
            compressor.get_or_insert_with(|| zstd::bulk::Compressor::new(LEVEL).expect("zstd accepts its own levels"));
        compressor.compress(json.as_bytes()).expect("compressing into a growable buffer cannot fail")
    })
}

/// The JSON a `pack` result holds.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, String> {
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .map_err(|_| "not a zstd frame".to_string())?
        .ok_or("the zstd frame does not record its size")?;
    // A corrupt header must not make us allocate gigabytes: records are capped far below this.
    if size > 64 * 1024 * 1024 {
        return Err(format!("the zstd frame claims {size} bytes"));
    }
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        let decompressor =
            decompressor.get_or_insert_with(|| zstd::bulk::Decompressor::new().expect("a zstd context can be created"));
        decompressor.decompress(packed, size as usize).map_err(|error| error.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_shrinks_json() {
        let json = serde_json::json!({
            "title": "SleepAura Velvet Silk Pillowcase",
            "variants": (0..5).map(|i| serde_json::json!({"sku": format!("SYN-{i}"), "color": null, "size": null, "inStock": true})).collect::<Vec<_>>(),
        })
        .to_string();
        let packed = pack(&json);
        assert!(packed.len() < json.len() / 2, "{} → {}", json.len(), packed.len());
        assert_eq!(unpack(&packed).unwrap(), json.as_bytes());
        assert_eq!(unpack(&pack("")).unwrap(), b"");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(unpack(b"{\"title\": \"plain json\"}").is_err());
        assert!(unpack(&[]).is_err());
        let mut truncated = pack(&"x".repeat(10_000));
        truncated.truncate(truncated.len() - 3);
        assert!(unpack(&truncated).is_err());
    }
}
