//! A deterministic generator of realistic catalogs, for benchmarks and load
//! tests at any size: the same seed gives byte-identical output, and products
//! are written one at a time (a 1M-product catalog never sits in memory).
//!
//! The vocabulary — brands, product types with their price ranges, colors,
//! fits, patterns, materials, title shapes — is curated from the two real
//! catalogs the project tests against (a fashion marketplace and a home/sleep
//! Shopify store); no data file is copied. Output is Shopify storefront JSON
//! (`{"products": [...]}`) or a CSV in the Myntra export's shape, readable with
//! `mappings/myntra.toml`.

use std::io::{self, Write};
use std::str::FromStr;

use serde::Serialize;

use crate::text::slugify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthFormat {
    Shopify,
    Csv,
}

impl FromStr for SynthFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "shopify" => Ok(SynthFormat::Shopify),
            "csv" => Ok(SynthFormat::Csv),
            other => Err(format!("unknown synthetic format {other:?}: expected shopify or csv")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub products: u64,
    pub seed: u64,
    pub format: SynthFormat,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions { products: 1_000, seed: 42, format: SynthFormat::Shopify }
    }
}

/// The store URL to import the Shopify output with (product URLs are `<it>/products/<handle>`).
pub const SYNTH_BASE_URL: &str = "https://synthetic.octogen.test";

/// SplitMix64: tiny, fast, and the same on every platform and Rust version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// An independent stream per product, so any product can be generated alone.
    pub fn for_product(seed: u64, index: u64) -> Self {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A price between `low` and `high` (log-uniform: cheap items are more common), in cents.
    pub fn price_cents(&mut self, low: f64, high: f64) -> u64 {
        let fraction = self.below(1_000_000) as f64 / 1_000_000.0;
        let price = low * (high / low).powf(fraction);
        (price * 100.0).round() as u64
    }
}

// ---- vocabulary ----

const FASHION_BRANDS: &[&str] = &[
    "Indian Terrain",
    "Puma",
    "Pepe Jeans",
    "AURELIA",
    "Flying Machine",
    "Roadster",
    "WROGN",
    "Park Avenue",
    "HERE&NOW",
    "Parx",
    "Calvin Klein Jeans",
    "Lavie",
    "Cortina",
    "Titan",
    "Next Look",
    "Gini and Jony",
    "DressBerry",
    "Mast & Harbour",
    "Geox",
    "Tommy Hilfiger",
    "Levis",
    "Alcis",
    "ColorPlus",
    "United Colors of Benetton",
    "Carlton London",
    "Van Heusen Woman",
    "Raymond",
    "GIORDANO",
    "Fastrack",
    "Tokyo Talkies",
    "Louis Philippe",
    "Marks & Spencer",
    "HIGHLANDER",
    "SPYKAR",
    "DKNY",
    "Kenneth Cole",
    "U.S. Polo Assn. Kids",
    "Being Human Clothing",
    "YAK YAK",
    "Difference of Opinion",
    "Vishudh",
    "Soie",
];

const HOME_BRANDS: &[&str] = &[
    "BlissLoom",
    "CloudLuxe",
    "QuiltAura",
    "SilkBreeze",
    "SilkenHug",
    "SleepAura",
    "SnugCraft",
    "Ximonth",
    "Acousticax",
    "Aethera",
    "Calmwavezx",
    "AiryNap",
    "Plumexa",
    "CozyNest",
    "HeavenlyNest",
    "PlushAura",
    "VelvetWhisper",
    "Eirenem",
    "Laniska",
    "Houkea",
];

/// (type, department, low price, high price in GBP, sized by letters?)
struct TypeSpec {
    name: &'static str,
    fashion: bool,
    low: f64,
    high: f64,
    letter_sizes: bool,
}

const fn spec(name: &'static str, fashion: bool, low: f64, high: f64, letter_sizes: bool) -> TypeSpec {
    TypeSpec { name, fashion, low, high, letter_sizes }
}

const TYPES: &[TypeSpec] = &[
    spec("Casual Shirt", true, 8.0, 45.0, true),
    spec("Formal Shirt", true, 10.0, 60.0, true),
    spec("Round Neck T-shirt", true, 5.0, 30.0, true),
    spec("Polo Collar T-shirt", true, 6.0, 35.0, true),
    spec("Straight Kurta", true, 6.0, 55.0, true),
    spec("Stretchable Jeans", true, 10.0, 70.0, true),
    spec("A-Line Top", true, 5.0, 35.0, true),
    spec("Maxi Dress", true, 12.0, 90.0, true),
    spec("Regular Trousers", true, 9.0, 60.0, true),
    spec("Sneakers", true, 15.0, 120.0, false),
    spec("Running Shoes", true, 20.0, 150.0, false),
    spec("Bomber Jacket", true, 20.0, 140.0, true),
    spec("Hooded Sweatshirt", true, 12.0, 70.0, true),
    spec("Shoulder Bag", true, 10.0, 110.0, false),
    spec("Backpack", true, 12.0, 90.0, false),
    spec("Drop Earrings", true, 3.0, 40.0, false),
    spec("Analogue Watch", true, 15.0, 400.0, false),
    spec("Track Pants", true, 8.0, 45.0, true),
    spec("Weighted Blanket", false, 40.0, 180.0, false),
    spec("Flannel Blanket", false, 18.0, 90.0, false),
    spec("Memory Foam Pillow", false, 15.0, 80.0, false),
    spec("Silk Pillowcase", false, 10.0, 60.0, false),
    spec("Eye Mask", false, 5.0, 40.0, false),
    spec("Sleep Spray", false, 6.0, 30.0, false),
    spec("White Noise Machine", false, 18.0, 120.0, false),
    spec("Blackout Curtain", false, 15.0, 110.0, false),
    spec("Aroma Diffuser", false, 15.0, 75.0, false),
    spec("Night Light", false, 8.0, 45.0, false),
];

const COLORS: &[&str] = &[
    "Black",
    "Navy Blue",
    "Blue",
    "White",
    "Off White",
    "Grey",
    "Charcoal",
    "Red",
    "Maroon",
    "Burgundy",
    "Green",
    "Olive",
    "Beige",
    "Khaki",
    "Brown",
    "Pink",
    "Mustard",
    "Yellow",
    "Purple",
    "Lavender",
    "Teal",
    "Ivory",
    "Light Gray",
    "Sky Blue",
    "Rose Gold",
    "Peach",
];

const FASHION_GENDERS: &[&str] = &["Men", "Women", "Men", "Women", "Boys", "Girls", "Unisex"];
const FITS: &[&str] = &["Slim Fit", "Regular Fit", "Relaxed Fit", "Skinny Fit", "Tapered Fit", "Oversized"];
const PATTERNS: &[&str] = &["Solid", "Printed", "Checked", "Striped", "Self-Design", "Floral", "Colourblocked"];
const MATERIALS: &[&str] = &["Cotton", "Linen", "Pure Cotton", "Polyester", "Wool", "Denim", "Leather", "Viscose"];
const HOME_ADJECTIVES: &[&str] =
    &["Cozy", "Luxury", "Breathable", "Soft", "Hand-Woven", "Cooling", "Portable", "Smart", "Ultra-Soft", "Premium"];
const HOME_BENEFITS: &[&str] = &[
    "Stress Relief",
    "Deep Relaxation",
    "Better Sleep",
    "Restful Nights",
    "Anxiety Relief",
    "Peaceful Sleep",
    "Calm & Comfort",
    "Travel & Home",
];
const HOME_MATERIALS: &[&str] =
    &["Cotton", "Mulberry Silk", "Velvet", "Memory Foam", "Bamboo", "Linen", "Coral Fleece"];
const LETTER_SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
const SHOE_SIZES: &[&str] = &["6", "7", "8", "9", "10", "11"];
const HOME_SIZES: &[&str] = &["100x150cm", "150x200cm", "180x200cm", "200x230cm", "Single", "Double", "King"];

/// One generated product, independent of the output format.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthProduct {
    pub index: u64,
    pub title: String,
    pub brand: String,
    pub product_type: String,
    pub gender: Option<String>,
    pub description: String,
    pub colors: Vec<String>,
    pub sizes: Vec<String>,
    pub tags: Vec<String>,
    /// Per variant (colors × sizes, in order), price in cents.
    pub variant_prices: Vec<u64>,
    /// Per variant, compare-at price in cents when marked down.
    pub compare_at: Vec<Option<u64>>,
    pub inventory: Vec<i64>,
    pub image_count: u64,
}

/// The product at `index` of the catalog with this seed.
pub fn product(seed: u64, index: u64) -> SynthProduct {
    let mut rng = Rng::for_product(seed, index);
    let spec = rng.pick(TYPES);
    if spec.fashion {
        fashion_product(&mut rng, spec, index)
    } else {
        home_product(&mut rng, spec, index)
    }
}

fn fashion_product(rng: &mut Rng, spec: &TypeSpec, index: u64) -> SynthProduct {
    let brand = rng.pick(FASHION_BRANDS).to_string();
    let gender = rng.pick(FASHION_GENDERS).to_string();
    let color = rng.pick(COLORS).to_string();
    let mut words = vec![brand.clone(), gender.clone(), color.clone()];
    if rng.chance(60) && spec.letter_sizes {
        words.push(rng.pick(FITS).to_string());
    }
    let pattern = rng.pick(PATTERNS).to_string();
    words.push(pattern.clone());
    let material = rng.chance(30).then(|| rng.pick(MATERIALS).to_string());
    words.extend(material.clone());
    words.push(spec.name.to_string());
    let title = words.join(" ");
    let description = format!(
        "{color} {} {}, {}. {}",
        pattern.to_lowercase(),
        spec.name.to_lowercase(),
        material.map_or_else(|| "easy to style".to_string(), |m| format!("made of {}", m.to_lowercase())),
        rng.pick(&["Machine wash cold.", "Has a regular length.", "Comes with a dust bag.", "Warranty: 6 months."])
    );
    let mut colors = vec![color];
    if rng.chance(30) {
        let second = rng.pick(COLORS).to_string();
        if !colors.contains(&second) {
            colors.push(second);
        }
    }
    let size_pool = if spec.letter_sizes { LETTER_SIZES } else { SHOE_SIZES };
    let sizes = if spec.name.contains("Shoes") || spec.name == "Sneakers" || spec.letter_sizes {
        pick_run(rng, size_pool, 2, 5)
    } else {
        Vec::new()
    };
    finish(rng, spec, index, title, brand, Some(gender), description, colors, sizes)
}

fn home_product(rng: &mut Rng, spec: &TypeSpec, index: u64) -> SynthProduct {
    let brand = rng.pick(HOME_BRANDS).to_string();
    let material = rng.pick(HOME_MATERIALS);
    let title = format!(
        "{brand} {} {} {} – {} for {}",
        rng.pick(HOME_ADJECTIVES),
        if rng.chance(40) { *material } else { "" },
        spec.name,
        rng.pick(HOME_BENEFITS),
        rng.pick(&["Bedroom", "Travel", "Home & Office", "Kids", "Adults", "Couples"]),
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ");
    let description = format!(
        "Find your calm with the {brand} {}. Made from soft {}, it helps you unwind. {}",
        spec.name.to_lowercase(),
        material.to_lowercase(),
        rng.pick(&["Machine washable.", "Ideal for year-round use.", "A thoughtful gift.", "Easy care."])
    );
    let colors = if rng.chance(70) { pick_run(rng, COLORS, 1, 4) } else { Vec::new() };
    let sizes = if rng.chance(50) { pick_run(rng, HOME_SIZES, 1, 4) } else { Vec::new() };
    finish(rng, spec, index, title, brand, None, description, colors, sizes)
}

/// `min..=max` distinct items, starting at a random position (keeps natural size order).
fn pick_run(rng: &mut Rng, pool: &[&str], min: u64, max: u64) -> Vec<String> {
    let count = (min + rng.below(max - min + 1)).min(pool.len() as u64) as usize;
    let start = rng.below((pool.len() - count + 1) as u64) as usize;
    pool[start..start + count].iter().map(|item| item.to_string()).collect()
}

#[allow(clippy::too_many_arguments)]
fn finish(
    rng: &mut Rng,
    spec: &TypeSpec,
    index: u64,
    title: String,
    brand: String,
    gender: Option<String>,
    description: String,
    colors: Vec<String>,
    sizes: Vec<String>,
) -> SynthProduct {
    let variants = colors.len().max(1) * sizes.len().max(1);
    let base = rng.price_cents(spec.low, spec.high);
    let marked_down = rng.chance(35);
    let mut variant_prices = Vec::with_capacity(variants);
    let mut compare_at = Vec::with_capacity(variants);
    let mut inventory = Vec::with_capacity(variants);
    for _ in 0..variants {
        let step = rng.below(3) * (base / 20);
        let price = base + step;
        variant_prices.push(price);
        compare_at.push(marked_down.then(|| price * (120 + rng.below(40)) / 100));
        inventory.push(if rng.chance(12) { 0 } else { rng.below(500) as i64 });
    }
    let mut tags = vec![spec.name.to_lowercase()];
    if rng.chance(50) {
        tags.push(rng.pick(&["new arrival", "bestseller", "gift idea", "sale", "summer", "winter"]).to_string());
    }
    SynthProduct {
        index,
        title,
        brand,
        product_type: spec.name.to_string(),
        gender,
        description,
        colors,
        sizes,
        tags,
        variant_prices,
        compare_at,
        inventory,
        image_count: 1 + rng.below(6),
    }
}

// ---- output ----

#[derive(Serialize)]
struct ShopifyProductOut<'a> {
    id: u64,
    title: &'a str,
    handle: String,
    body_html: String,
    vendor: &'a str,
    product_type: &'a str,
    tags: String,
    status: &'static str,
    variants: Vec<ShopifyVariantOut>,
    options: Vec<ShopifyOptionOut<'a>>,
    images: Vec<ShopifyImageOut>,
}

#[derive(Serialize)]
struct ShopifyVariantOut {
    id: u64,
    title: String,
    option1: Option<String>,
    option2: Option<String>,
    sku: String,
    price: String,
    compare_at_price: Option<String>,
    inventory_management: &'static str,
    inventory_policy: &'static str,
    inventory_quantity: i64,
}

#[derive(Serialize)]
struct ShopifyOptionOut<'a> {
    name: &'static str,
    position: u32,
    values: &'a [String],
}

#[derive(Serialize)]
struct ShopifyImageOut {
    id: u64,
    src: String,
    width: u32,
    height: u32,
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn shopify_json(product: &SynthProduct) -> ShopifyProductOut<'_> {
    let id = 9_000_000_000 + product.index;
    let handle = format!("{}-{}", slugify(&product.title), product.index);
    let colors: Vec<Option<&String>> =
        if product.colors.is_empty() { vec![None] } else { product.colors.iter().map(Some).collect() };
    let sizes: Vec<Option<&String>> =
        if product.sizes.is_empty() { vec![None] } else { product.sizes.iter().map(Some).collect() };
    let mut variants = Vec::with_capacity(product.variant_prices.len());
    for (position, (color, size)) in colors.iter().flat_map(|c| sizes.iter().map(move |s| (*c, *s))).enumerate() {
        let label: Vec<&str> = [color, size].into_iter().flatten().map(String::as_str).collect();
        let (option1, option2) = match (color, size) {
            (Some(color), size) => (Some(color.clone()), size.cloned()),
            (None, Some(size)) => (Some(size.clone()), None),
            (None, None) => (Some("Default Title".to_string()), None),
        };
        variants.push(ShopifyVariantOut {
            id: id * 100 + position as u64,
            title: if label.is_empty() { "Default Title".into() } else { label.join(" / ") },
            option1,
            option2,
            sku: format!("SYN-{}-{position}", product.index),
            price: money(product.variant_prices[position]),
            compare_at_price: product.compare_at[position].map(money),
            inventory_management: "shopify",
            inventory_policy: "deny",
            inventory_quantity: product.inventory[position],
        });
    }
    let mut options = Vec::new();
    if !product.colors.is_empty() {
        options.push(ShopifyOptionOut { name: "Color", position: 1, values: &product.colors });
    }
    if !product.sizes.is_empty() {
        options.push(ShopifyOptionOut { name: "Size", position: options.len() as u32 + 1, values: &product.sizes });
    }
    let images = (1..=product.image_count)
        .map(|number| ShopifyImageOut {
            id: id * 10 + number,
            src: format!("https://cdn.synthetic.octogen.test/{}/{number}.jpg", product.index),
            width: 1000,
            height: 1250,
        })
        .collect();
    ShopifyProductOut {
        id,
        title: &product.title,
        handle,
        body_html: format!("<p>{}</p>", product.description.replace('&', "&amp;")),
        vendor: &product.brand,
        product_type: &product.product_type,
        tags: product.tags.join(", "),
        status: "active",
        variants,
        options,
        images,
    }
}

pub const CSV_HEADER: &str = "ProductID,ProductName,ProductBrand,Gender,Price (INR),NumImages,Description,PrimaryColor";

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A Myntra-shaped row: one row per product, price in rupees (≈ 100 × the GBP
/// price). ASCII only, so it reads the same as UTF-8 or as the export's Windows-1252.
fn csv_row(product: &SynthProduct) -> String {
    let rupees = product.variant_prices.first().copied().unwrap_or(0);
    [
        (20_000_000 + product.index).to_string(),
        csv_field(&product.title.replace('–', "-")),
        csv_field(&product.brand),
        product.gender.clone().unwrap_or_else(|| "Unisex".into()),
        rupees.to_string(),
        product.image_count.to_string(),
        csv_field(&product.description),
        product.colors.first().map_or_else(String::new, |color| csv_field(color)),
    ]
    .join(",")
}

/// The product page URL of the product at `index` as an import of the `format`
/// output records it (Shopify: the store URL + handle; CSV: the Myntra mapping's template).
pub fn product_url(format: SynthFormat, seed: u64, index: u64) -> String {
    match format {
        SynthFormat::Shopify => {
            format!("{SYNTH_BASE_URL}/products/{}-{index}", slugify(&product(seed, index).title))
        }
        SynthFormat::Csv => format!("https://www.myntra.com/{}", 20_000_000 + index),
    }
}

/// Writes the whole catalog, one product at a time.
pub fn write_catalog(options: &SynthOptions, mut out: impl Write) -> io::Result<()> {
    match options.format {
        SynthFormat::Shopify => {
            out.write_all(b"{\"products\":[\n")?;
            for index in 0..options.products {
                if index > 0 {
                    out.write_all(b",\n")?;
                }
                let product = product(options.seed, index);
                serde_json::to_writer(&mut out, &shopify_json(&product))?;
            }
            out.write_all(b"\n]}\n")?;
        }
        SynthFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            for index in 0..options.products {
                writeln!(out, "{}", csv_row(&product(options.seed, index)))?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_feed_to_vec, CsvMapping, FeedFormat, FeedOptions};

    fn catalog(format: SynthFormat, seed: u64, products: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_catalog(&SynthOptions { products, seed, format }, &mut out).unwrap();
        out
    }

    #[test]
    fn same_seed_same_bytes() {
        for format in [SynthFormat::Shopify, SynthFormat::Csv] {
            assert_eq!(catalog(format, 42, 300), catalog(format, 42, 300));
            assert_ne!(catalog(format, 42, 300), catalog(format, 43, 300));
        }
        // A product does not depend on how many come before or after it.
        assert_eq!(product(7, 120), product(7, 120));
        let small = catalog(SynthFormat::Csv, 5, 10);
        let large = catalog(SynthFormat::Csv, 5, 20);
        assert!(large.starts_with(&small[..small.len() - 1]));
    }

    #[test]
    fn rng_is_pinned() {
        // Changing the generator changes every benchmark: this pins it.
        let mut rng = Rng::new(42);
        assert_eq!(rng.next_u64(), 0xbdd7_3226_2feb_6e95);
        assert!((0..1000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn shopify_output_imports_cleanly() {
        let bytes = catalog(SynthFormat::Shopify, 42, 500);
        let options = FeedOptions {
            base_url: Some(SYNTH_BASE_URL.into()),
            default_currency: Some("GBP".into()),
            ..FeedOptions::default()
        };
        let (records, summary) = parse_feed_to_vec(FeedFormat::Shopify, &bytes[..], &options).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (500, 0));
        let products: Vec<_> = records.into_iter().flatten().collect();
        let typed = products.iter().filter(|p| p.enrichment.product_type.is_some()).count();
        assert_eq!(typed, 500);
        let colored = products.iter().filter(|p| !p.enrichment.color_family.is_empty()).count();
        assert!(colored > 350, "{colored}");
        let gendered = products.iter().filter(|p| p.enrichment.gender.is_some()).count();
        assert!(gendered > 200, "{gendered}");
    }

    #[test]
    fn csv_output_imports_with_the_myntra_mapping() {
        let bytes = catalog(SynthFormat::Csv, 42, 500);
        let mapping_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mappings/myntra.toml");
        let options = FeedOptions { mapping: Some(CsvMapping::load(mapping_path).unwrap()), ..FeedOptions::default() };
        let (records, summary) = parse_feed_to_vec(FeedFormat::Csv, &bytes[..], &options).unwrap();
        assert_eq!((summary.accepted, summary.skipped), (500, 0));
        let products: Vec<_> = records.into_iter().flatten().collect();
        for index in [0, 17, 499] {
            assert_eq!(products[index as usize].url, product_url(SynthFormat::Csv, 42, index));
        }
    }

    #[test]
    fn product_urls_are_the_imported_ones() {
        let bytes = catalog(SynthFormat::Shopify, 42, 200);
        let options = FeedOptions { base_url: Some(SYNTH_BASE_URL.into()), ..FeedOptions::default() };
        let (records, _) = parse_feed_to_vec(FeedFormat::Shopify, &bytes[..], &options).unwrap();
        let products: Vec<_> = records.into_iter().flatten().collect();
        for index in [0, 1, 99, 199] {
            assert_eq!(products[index as usize].url, product_url(SynthFormat::Shopify, 42, index));
        }
    }
}
