//! Bulk build + query benchmark of the search index on a synthetic catalog.
//!
//! ```text
//! cargo run --release -p octogen-search --example bench_search -- [--products 1000000] [--dir PATH] [--batch 100000]
//! ```
//!
//! Products are generated deterministically (splitmix64) from a built-in
//! vocabulary plus the words of `../shared/data/wands-queries.tsv` when present.
//! The query mix (1,000 searches) is: 500 WANDS keyword queries, 200 keyword +
//! facet, 200 browse + price range, and 10 deep paginations of 10 pages each,
//! after a warm-up of 50 other queries.
//! This is the index alone; the end-to-end import benchmark (parse → store →
//! index) lives with the ingest generator.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use octogen_core::facets::FacetKey;
use octogen_core::product::{Brand, Color, Image, Product};
use octogen_core::wire::ProductRecord;
use octogen_core::Timestamp;
use octogen_search::{FacetFilter, IndexChange, SearchIndex, SearchQuery, WriterConfig};

const CATALOGS: [&str; 4] = ["northwind", "spacire", "myntra", "acme"];
const COLORS: [(&str, &str); 11] = [
    ("Black", "Black"),
    ("Navy", "Blue"),
    ("Chocolate", "Brown"),
    ("Charcoal", "Gray"),
    ("Olive", "Green"),
    ("Rust", "Orange"),
    ("Blush", "Pink"),
    ("Plum", "Purple"),
    ("Burgundy", "Red"),
    ("Ivory", "White"),
    ("Mustard", "Yellow"),
];
const TYPES: [&str; 24] = [
    "weighted blanket",
    "throw pillow",
    "coffee table",
    "office chair",
    "floor lamp",
    "area rug",
    "bookcase",
    "sofa",
    "bed frame",
    "nightstand",
    "dresser",
    "bar stool",
    "dining chair",
    "tv stand",
    "wall mirror",
    "duvet cover",
    "sheet set",
    "curtain panel",
    "eye mask",
    "alarm clock",
    "sleep spray",
    "desk",
    "ottoman",
    "vanity",
];
const WORDS: [&str; 60] = [
    "modern",
    "rustic",
    "velvet",
    "linen",
    "cotton",
    "oak",
    "walnut",
    "metal",
    "upholstered",
    "tufted",
    "round",
    "square",
    "outdoor",
    "indoor",
    "kids",
    "adjustable",
    "storage",
    "folding",
    "swivel",
    "leather",
    "wool",
    "jute",
    "farmhouse",
    "industrial",
    "mid",
    "century",
    "boho",
    "glam",
    "coastal",
    "minimalist",
    "cozy",
    "soft",
    "large",
    "small",
    "queen",
    "king",
    "twin",
    "set",
    "piece",
    "solid",
    "wood",
    "glass",
    "marble",
    "handmade",
    "woven",
    "cooling",
    "memory",
    "foam",
    "bamboo",
    "silk",
    "blackout",
    "lavender",
    "portable",
    "wireless",
    "led",
    "smart",
    "ergonomic",
    "washable",
    "reversible",
    "stackable",
];
const BRANDS: [&str; 12] = [
    "Spacire",
    "Northwind",
    "Loomly",
    "Oakhaven",
    "Driftwood Co",
    "Nestiva",
    "Calmora",
    "Hearthstone",
    "Urbanite",
    "Solace",
    "Ember & Ash",
    "Willow Lane",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &'a [&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

struct Generator {
    vocabulary: Vec<String>,
}

impl Generator {
    fn new(extra_words: Vec<String>) -> Generator {
        let mut vocabulary: Vec<String> = WORDS.iter().map(|word| word.to_string()).collect();
        vocabulary.extend(extra_words);
        vocabulary.sort();
        vocabulary.dedup();
        Generator { vocabulary }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        &self.vocabulary[rng.below(self.vocabulary.len())]
    }

    fn record(&self, n: u64) -> ProductRecord {
        let mut rng = Rng(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF);
        let kind = rng.pick(&TYPES).to_string();
        let brand = rng.pick(&BRANDS).to_string();
        let (color, family) = COLORS[rng.below(COLORS.len())];
        let mut title_words: Vec<String> = (0..2 + rng.below(5)).map(|_| self.word(&mut rng).to_string()).collect();
        title_words.push(kind.clone());
        let title = format!("{brand} {} – {color}", title_words.join(" "));
        let description: Vec<&str> = (0..40 + rng.below(60)).map(|_| self.word(&mut rng)).collect();
        let price = (rng.below(50_000) as f64) / 100.0 + 5.0;
        let url = format!("https://{}.example/products/item-{n}", CATALOGS[(n % 4) as usize]);
        let images = (0..1 + rng.below(4))
            .map(|i| {
                Image::from_url(format!("https://cdn.example.com/s/files/1/0960/2259/files/{n}-{i}.jpg?v=1757123140"))
            })
            .collect();
        let mut product = Product {
            url: url.clone(),
            title,
            description: Some(description.join(" ")),
            brand: Some(Brand { name: brand, ..Brand::default() }),
            product_type: Some(kind.clone()),
            current_price: Some(price),
            original_price: (rng.below(4) == 0).then_some(price * 1.25),
            currency: Some("USD".into()),
            images,
            colors: vec![Color::labelled(color)],
            sizes: vec!["s".into(), "m".into(), "l".into()],
            tags: (0..3).map(|_| self.word(&mut rng).to_string()).collect(),
            ..Product::default()
        };
        product.enrichment.product_type = Some(kind);
        product.enrichment.color = vec![color.into()];
        product.enrichment.color_family = vec![family.into()];
        product.enrichment.gender = Some(["male", "female", "unisex"][rng.below(3)].into());
        product.enrichment.category_path = vec!["Home".into(), "Furniture".into()];
        product.enrichment.attributes.insert("Material".into(), vec![self.word(&mut rng).to_string()]);
        ProductRecord {
            uuid: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, url.as_bytes()).to_string(),
            catalog_key: CATALOGS[(n % 4) as usize].into(),
            is_active: true,
            updated_at: Timestamp::from_millis(1_764_000_000_000),
            normalized_url: url,
            product,
        }
    }
}

struct Args {
    products: u64,
    dir: Option<PathBuf>,
    batch: Option<usize>,
    /// Keep an index already in `--dir` and only run the queries.
    reuse: bool,
}

fn parse_args() -> Args {
    let mut args = Args { products: 100_000, dir: None, batch: None, reuse: false };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        if flag == "--reuse" {
            args.reuse = true;
            continue;
        }
        let value = raw.next().unwrap_or_default();
        match flag.as_str() {
            "--products" => args.products = value.parse().unwrap_or(args.products),
            "--dir" => args.dir = Some(PathBuf::from(value)),
            "--batch" => args.batch = value.parse().ok(),
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    args
}

fn wands_queries() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/wands-queries.tsv");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().skip(1).filter_map(|line| line.split('\t').nth(1)).map(String::from).collect()
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let queries = wands_queries();
    let generator =
        Generator::new(queries.iter().flat_map(|query| query.split_whitespace().map(String::from)).collect());
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().join("index"));
    let (index, _) = SearchIndex::open_or_recreate_with(&dir, WriterConfig::default())?;
    if let Ok(text) = std::env::var("BENCH_QUERY") {
        // Profile one query: run it 50 times.
        let query = SearchQuery { limit: 20, ..SearchQuery::text(CATALOGS, &text) };
        let started = Instant::now();
        for _ in 0..50 {
            std::hint::black_box(index.search(&query)?);
        }
        println!("{text:?}: {:.2} ms per search", started.elapsed().as_secs_f64() * 1e3 / 50.0);
        return Ok(());
    }
    if args.reuse && index.num_docs() > 0 {
        println!("reusing {} docs in {}", index.num_docs(), dir.display());
        run_queries(&index, &queries);
        return Ok(());
    }

    let started = Instant::now();
    let generation = Instant::now();
    for n in 0..args.products.min(50_000) {
        std::hint::black_box(generator.record(n));
    }
    let per_record_generation = generation.elapsed().as_secs_f64() / args.products.min(50_000) as f64;
    let build_started = Instant::now();
    match args.batch {
        None => {
            let mut build = index.bulk_build()?;
            for n in 0..args.products {
                build.add(&generator.record(n))?;
            }
            build.finish(args.products as i64)?;
        }
        Some(batch) => {
            let mut n = 0;
            while n < args.products {
                let end = (n + batch as u64).min(args.products);
                let changes = (n..end).map(|i| IndexChange::Upsert(generator.record(i))).collect();
                index.apply(changes, end as i64)?;
                n = end;
            }
        }
    }
    let build = build_started.elapsed();
    let generation_share = per_record_generation * args.products as f64;
    println!(
        "build: {} products in {:.1} s = {:.0} products/s (of which ~{:.1} s generating records; index only ≈ {:.0}/s)",
        args.products,
        build.as_secs_f64(),
        args.products as f64 / build.as_secs_f64(),
        generation_share,
        args.products as f64 / (build.as_secs_f64() - generation_share).max(0.001),
    );
    index.wait_for_merges()?;
    let size = index.size_on_disk();
    println!(
        "after merges ({:.1} s total): {} docs, {:.1} MiB on disk = {:.0} bytes/product; peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        index.num_docs(),
        size as f64 / 1048576.0,
        size as f64 / args.products.max(1) as f64,
        peak_rss_mib()
    );
    run_queries(&index, &queries);
    Ok(())
}

fn run_queries(index: &SearchIndex, wands: &[String]) {
    let fallback = vec!["velvet sofa".to_string(), "oak coffee table".to_string()];
    let wands = if wands.is_empty() { &fallback } else { wands };
    let all_catalogs: Vec<String> = CATALOGS.iter().map(|catalog| catalog.to_string()).collect();
    // Warm the page cache and the lazily opened segment structures, as a running server would be.
    for text in wands.iter().rev().take(50) {
        let _ = index.search(&SearchQuery { limit: 20, ..SearchQuery::text(all_catalogs.clone(), text) });
        let _ = index.search(&SearchQuery {
            limit: 50,
            price_max: Some(100.0),
            ..SearchQuery::browse(all_catalogs.clone())
        });
    }
    let mut samples: Vec<(&str, Duration)> = Vec::with_capacity(1000);
    let mut slowest: Vec<(Duration, String)> = Vec::new();
    let mut run = |kind: &'static str, query: &SearchQuery| {
        let started = Instant::now();
        let page = index.search(query).expect("search");
        let took = started.elapsed();
        samples.push((kind, took));
        slowest.push((
            took,
            format!("{kind} {:?} catalogs={} hits={}", query.text, query.catalogs.len(), page.hits.len()),
        ));
        page
    };
    for (i, text) in wands.iter().cycle().take(500).enumerate() {
        let catalogs = if i % 2 == 0 { all_catalogs.clone() } else { vec![all_catalogs[i % 4].clone()] };
        run("keyword", &SearchQuery { limit: 20, ..SearchQuery::text(catalogs, text) });
    }
    for (i, text) in wands.iter().cycle().skip(17).take(200).enumerate() {
        let facet = FacetFilter::new(FacetKey::ColorFamily, [COLORS[i % 11].1]);
        run(
            "keyword+facet",
            &SearchQuery { limit: 20, facets: vec![facet], ..SearchQuery::text(all_catalogs.clone(), text) },
        );
    }
    for i in 0..200 {
        let low = (i % 40) as f64 * 10.0;
        let query = SearchQuery {
            limit: 50,
            price_min: Some(low),
            price_max: Some(low + 25.0),
            ..SearchQuery::browse(all_catalogs.clone())
        };
        run("browse+price", &query);
    }
    for text in wands.iter().skip(100).take(10) {
        let mut query = SearchQuery { limit: 20, ..SearchQuery::text(all_catalogs.clone(), text) };
        for _ in 0..10 {
            let page = run("deep-page", &query);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    report(&samples);
    if std::env::var_os("BENCH_SLOWEST").is_some() {
        slowest.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
        for (took, what) in slowest.iter().take(15) {
            println!("{:7.2} ms  {what}", took.as_secs_f64() * 1e3);
        }
    }
}

fn report(samples: &[(&str, Duration)]) {
    let total: Duration = samples.iter().map(|(_, took)| *took).sum();
    let mut kinds: Vec<&str> = samples.iter().map(|(kind, _)| *kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds.push("all");
    for kind in kinds {
        let mut times: Vec<Duration> =
            samples.iter().filter(|(k, _)| kind == "all" || *k == kind).map(|(_, took)| *took).collect();
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{kind:>14}: n={:4} p50={:7.2} ms p99={:7.2} ms max={:7.2} ms",
            times.len(),
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3
        );
    }
    println!("single-thread QPS: {:.0}", samples.len() as f64 / total.as_secs_f64());
}
