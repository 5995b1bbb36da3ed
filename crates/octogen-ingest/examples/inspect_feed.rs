//! Parses a feed and prints what ingestion made of it: skipped records with
//! their reasons, then the most common derived facet values, or every product
//! as one JSON line with `--json`.
//!
//! cargo run -p octogen-ingest --example inspect_feed -- --format csv --mapping mappings/myntra.toml ../shared/data/myntra-products.csv

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;

use octogen_ingest::{parse_feed, CsvMapping, FeedFormat, FeedOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut format = FeedFormat::Shopify;
    let mut options = FeedOptions::default();
    let mut json = false;
    let mut quiet = false;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--format" => format = args.next().ok_or("--format needs a value")?.parse()?,
            "--base-url" => options.base_url = args.next(),
            "--currency" => options.default_currency = args.next(),
            "--mapping" => options.mapping = Some(CsvMapping::load(args.next().ok_or("--mapping needs a file")?)?),
            "--json" => json = true,
            // Only parse: for timing the parser itself.
            "--quiet" => quiet = true,
            other => path = Some(other.to_string()),
        }
    }
    let path =
        path.ok_or("usage: inspect_feed --format F [--base-url U] [--mapping M] [--currency C] [--json|--quiet] FILE")?;
    let mut counts: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    let summary = parse_feed(format, BufReader::new(File::open(&path)?), &options, |record| {
        match record {
            Err(error) => eprintln!("skipped {error}"),
            Ok(_) if quiet => {}
            Ok(product) if json => println!("{}", serde_json::to_string(&product).unwrap_or_default()),
            Ok(product) => {
                let e = &product.enrichment;
                let mut count = |facet: &'static str, value: &str| {
                    *counts.entry(facet).or_default().entry(value.to_string()).or_default() += 1;
                };
                count("type", e.product_type.as_deref().unwrap_or("(none)"));
                count("gender", e.gender.as_deref().unwrap_or("(none)"));
                count("category_path.depth_0", e.category_path.first().map_or("(none)", String::as_str));
                e.age_groups.iter().for_each(|age| count("age_groups", age));
                e.color_family.iter().for_each(|family| count("color_family", family));
                e.color.iter().for_each(|color| count("color", color));
                product.details.materials.iter().for_each(|material| count("material", material));
                product.details.fit.iter().for_each(|fit| count("fit", fit));
                product.details.patterns.iter().for_each(|pattern| count("pattern", pattern));
                count("is_activewear", &format!("{:?}", e.is_activewear));
            }
        }
        ControlFlow::Continue(())
    })?;
    for (facet, values) in &counts {
        let mut sorted: Vec<_> = values.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = sorted.iter().take(25).map(|(value, count)| format!("{value} ({count})")).collect();
        println!("{facet} [{} values]: {}", values.len(), top.join(", "));
    }
    eprintln!("{summary:?}");
    Ok(())
}
