//! How product records are kept in the database: their JSON, compressed.
//!
//! A product's JSON is about 3 KB; an import at scale is bound by the CPU
//! (BENCHMARKS.md §5), and zstd at its fastest level was 14 % of the parse
//! phase, building entropy tables for every small record. LZ4 (lz4_flex, the
//! block codec tantivy's doc store already uses) compresses several times
//! faster at a somewhat lower ratio, and unpacks faster for lookups too.
//!
//! A packed record is the tag byte `L`, then the JSON's length (u32 LE) and
//! the LZ4 block. Records packed before this change are zstd frames (they
//! start with zstd's magic number) and still unpack.

/// The first byte of an LZ4-packed record.
const LZ4_TAG: u8 = b'L';
/// zstd's frame magic number, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Records are capped far below this; a larger claimed size means damage, not a product.
const MAX_UNPACKED: usize = 64 * 1024 * 1024;

/// The stored form of a product record's JSON.
pub fn pack(bytes: &[u8]) -> Vec<u8> {
    let mut packed = vec![0u8; 5 + lz4_flex::block::get_maximum_output_size(bytes.len())];
    packed[0] = LZ4_TAG;
    packed[1..5].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    let written =
        lz4_flex::block::compress_into(bytes, &mut packed[5..]).expect("the buffer has the block's maximum size");
    packed.truncate(5 + written);
    packed
}

/// The JSON a `pack` result holds.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, String> {
    match packed {
        [LZ4_TAG, a, b, c, d, block @ ..] => {
            let size = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
            if size > MAX_UNPACKED {
                return Err(format!("the packed record claims {size} bytes"));
            }
            lz4_flex::block::decompress(block, size).map_err(|error| error.to_string())
        }
        _ if packed.starts_with(&ZSTD_MAGIC) => unpack_zstd(packed),
        _ => Err("not a packed product record".into()),
    }
}

/// Records packed before LZ4: one zstd frame.
fn unpack_zstd(packed: &[u8]) -> Result<Vec<u8>, String> {
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .map_err(|_| "not a zstd frame".to_string())?
        .ok_or("the zstd frame does not record its size")?;
    if size > MAX_UNPACKED as u64 {
        return Err(format!("the zstd frame claims {size} bytes"));
    }
    zstd::bulk::decompress(packed, size as usize).map_err(|error| error.to_string())
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
        let packed = pack(json.as_bytes());
        assert!(packed.len() < json.len() / 2, "{} → {}", json.len(), packed.len());
        assert_eq!(unpack(&packed).unwrap(), json.as_bytes());
        assert_eq!(unpack(&pack(b"")).unwrap(), b"");
    }

    #[test]
    fn records_packed_with_zstd_still_unpack() {
        let json = r#"{"title":"Packed before LZ4","tags":["a","b","a","b","a","b"]}"#;
        let old = zstd::bulk::compress(json.as_bytes(), 1).unwrap();
        assert_eq!(unpack(&old).unwrap(), json.as_bytes());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(unpack(&[LZ4_TAG, 0xff, 0xff, 0xff, 0x7f]).unwrap_err().contains("claims"));
        assert!(unpack(&[LZ4_TAG, 10, 0, 0, 0, 0xff]).is_err());
        assert!(unpack(b"{\"title\": \"plain json\"}").is_err());
        assert!(unpack(&[]).is_err());
        let mut truncated = pack("x".repeat(10_000).as_bytes());
        truncated.truncate(truncated.len() - 3);
        assert!(unpack(&truncated).is_err());
    }
}
