//! Writes a deterministic synthetic catalog to stdout.
//!
//! cargo run --release -p octogen-ingest --example gen_catalog -- --products 1000000 --seed 42 --format shopify > /tmp/c.json
//!
//! Import the Shopify output with base URL `https://synthetic.octogen.test`; the
//! CSV output with `mappings/myntra.toml`.

use std::io::{BufWriter, Write};

use octogen_ingest::synth::{write_catalog, SynthOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = SynthOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--products" => options.products = value()?.replace('_', "").parse()?,
            "--seed" => options.seed = value()?.parse()?,
            "--format" => options.format = value()?.parse()?,
            "--help" | "-h" => {
                println!("usage: gen_catalog [--products N] [--seed S] [--format shopify|csv]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    write_catalog(&options, &mut out)?;
    out.flush()?;
    Ok(())
}
