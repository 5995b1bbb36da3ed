//! `octogen catalogs`, `octogen search`, `octogen lookup`: the partner API from
//! a terminal, through the `octogen-client` crate. The key comes from
//! `OCTO_API_KEY` (or `OCTOGEN_PLATFORM_API_KEY`), the server from
//! `--base-url` / `OCTO_BASE_URL`. Tables for people, `--json` for scripts,
//! exit codes by error class (`cli_error`).

use clap::Args;
use futures_util::TryStreamExt;
use octogen_client::{
    ApiErrorKind, Client, Error, LookupResult, MerchantCatalogSummary, MerchantProductListItem, RetryPolicy, SearchPage,
};

use crate::cli_error::{CliError, CliResult, ExitClass};
use crate::output;

#[derive(Args)]
pub struct ApiArgs {
    /// The API server (a trailing /v1 is accepted).
    #[arg(long, env = "OCTO_BASE_URL", default_value = octogen_client::DEFAULT_BASE_URL)]
    base_url: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Fail at once (exit 7 when rate limited) instead of waiting and retrying.
    #[arg(long)]
    no_retry: bool,
}

#[derive(Args)]
pub struct CatalogsArgs {
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Free text; leave out to browse.
    query: Option<String>,
    /// A facet filter NAME=VALUE, e.g. color_family=Black. Repeat it: values of one
    /// facet are ORed, different facets are ANDed.
    #[arg(long = "facet", value_name = "NAME=VALUE", value_parser = parse_facet)]
    facets: Vec<(String, String)>,
    /// Lowest current price (inclusive).
    #[arg(long)]
    price_min: Option<f64>,
    /// Highest current price (inclusive).
    #[arg(long)]
    price_max: Option<f64>,
    /// Results per page, 1–100 (the server's default is 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: Option<u32>,
    /// Search only this granted catalog; repeat for several.
    #[arg(long = "catalog", value_name = "KEY")]
    catalogs: Vec<String>,
    /// Continue from a previous page's cursor (with the same filters).
    #[arg(long)]
    cursor: Option<String>,
    /// Follow the cursor to the last page and print every result.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
pub struct LookupArgs {
    /// A product page URL.
    url: String,
    #[command(flatten)]
    api: ApiArgs,
}

fn parse_facet(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("expected NAME=VALUE (e.g. color_family=Black), got {text:?}")),
    }
}

fn client(api: &ApiArgs) -> CliResult<Client> {
    let mut builder = Client::builder()
        .base_url(&api.base_url)
        .user_agent(format!("octogen-cli/{}", env!("CARGO_PKG_VERSION")))
        .on_retry(|failure, wait| eprintln!("{}", retry_notice(failure, wait)));
    if api.no_retry {
        builder = builder.retry_policy(RetryPolicy::none());
    }
    builder.build().map_err(cli_error)
}

/// What the client waits for, on stderr, so a wait is never silent.
fn retry_notice(failure: &Error, wait: std::time::Duration) -> String {
    // Whole seconds (the jitter added to a Retry-After is noise here), never "0 s".
    let seconds = wait.as_secs_f64().round().max(1.0) as u64;
    let reason = match failure {
        Error::Api(api) if api.kind == ApiErrorKind::RateLimited => "rate limited".to_string(),
        Error::Api(api) => format!("the server answered HTTP {}", api.status),
        _ => "cannot reach the server".to_string(),
    };
    format!("{reason}, retrying in {seconds} s (--no-retry to fail at once)")
}

/// One line and an exit code for every client failure.
fn cli_error(error: Error) -> CliError {
    match &error {
        Error::MissingApiKey => {
            CliError::new(ExitClass::Auth, "no API key: set OCTO_API_KEY to your key (octo_live_…)")
        }
        Error::Config(_) => CliError::new(ExitClass::Invalid, error.to_string()),
        Error::Connection { .. } => CliError::new(ExitClass::Unreachable, error.to_string()),
        Error::Api(api) => {
            let hint = match api.kind {
                ApiErrorKind::Authentication => " (check OCTO_API_KEY: the key may be mistyped or revoked)".to_string(),
                ApiErrorKind::RateLimited => match api.retry_after {
                    Some(wait) => format!(" (retry in {}s)", wait.as_secs().max(1)),
                    None => String::new(),
                },
                _ => String::new(),
            };
            CliError::from_status(api.status, format!("{error}{hint}"))
        }
        _ => CliError::failure(error.to_string()),
    }
}

fn print_json(value: &impl serde::Serialize) -> CliResult {
    let value = serde_json::to_value(value).map_err(|error| CliError::failure(error.to_string()))?;
    output::json(&value);
    Ok(())
}

pub async fn catalogs(args: CatalogsArgs) -> CliResult {
    let catalogs = client(&args.api)?.list_catalogs().await.map_err(cli_error)?;
    if args.api.json {
        return print_json(&catalogs);
    }
    if catalogs.is_empty() {
        println!("No catalogs are granted to this key's organization.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = catalogs.iter().map(catalog_row).collect();
    output::table(&["CATALOG", "NAME", "PRODUCTS", "LAST INDEXED", "SOURCE"], &rows);
    Ok(())
}

fn catalog_row(catalog: &MerchantCatalogSummary) -> Vec<String> {
    vec![
        catalog.catalog.clone(),
        catalog.display_name.clone(),
        catalog.product_count.to_string(),
        catalog.last_indexed_at.map(|at| at.to_string()).unwrap_or_else(|| "-".into()),
        catalog.source_base_url.clone().unwrap_or_else(|| "-".into()),
    ]
}

pub async fn search(args: SearchArgs) -> CliResult {
    let client = client(&args.api)?;
    let mut search = client.search_products();
    if let Some(query) = &args.query {
        search = search.q(query);
    }
    match args.catalogs.as_slice() {
        [] => {}
        [one] => search = search.catalog(one),
        many => search = search.catalogs(many.iter().cloned()),
    }
    for (name, value) in &args.facets {
        search = search.facet(name, [value]);
    }
    if let Some(min) = args.price_min {
        search = search.price_min(min);
    }
    if let Some(max) = args.price_max {
        search = search.price_max(max);
    }
    if let Some(limit) = args.limit {
        search = search.limit(limit);
    }
    if let Some(cursor) = &args.cursor {
        search = search.cursor(cursor);
    }
    let page = if args.all {
        let items: Vec<MerchantProductListItem> = search.into_stream().try_collect().await.map_err(cli_error)?;
        SearchPage { items, next_cursor: None, request_id: None }
    } else {
        search.send().await.map_err(cli_error)?
    };
    if args.api.json {
        return print_json(&page);
    }
    if page.items.is_empty() {
        println!("No products match.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|item| {
            vec![
                item.title.clone().unwrap_or_else(|| "-".into()),
                item.brand.as_ref().map(|brand| brand.name.clone()).unwrap_or_else(|| "-".into()),
                price(item),
                item.catalog_key.clone(),
                item.product_url.clone(),
            ]
        })
        .collect();
    output::table(&["TITLE", "BRAND", "PRICE", "CATALOG", "URL"], &rows);
    let count = page.items.len();
    let noun = if count == 1 { "product" } else { "products" };
    match &page.next_cursor {
        Some(cursor) => {
            println!("\n{count} {noun} on this page. Next page: add --cursor {cursor} (or use --all)")
        }
        None => println!("\n{count} {noun}"),
    }
    Ok(())
}

fn money(amount: f64) -> String {
    format!("{amount:.2}")
}

fn price(item: &MerchantProductListItem) -> String {
    let Some(current) = item.current_price else { return "-".into() };
    let mut text = money(current);
    if let Some(currency) = &item.currency {
        text = format!("{text} {currency}");
    }
    if let Some(original) = item.original_price {
        text = format!("{text} (was {})", money(original));
    }
    text
}

pub async fn lookup(args: LookupArgs) -> CliResult {
    let found = client(&args.api)?.lookup_product(&args.url).await.map_err(cli_error)?;
    if args.api.json {
        return print_json(&found);
    }
    print_product(&found);
    Ok(())
}

fn print_product(found: &LookupResult) {
    let product = &found.product;
    let item = &product.item;
    println!("{}", item.title.as_deref().unwrap_or("(untitled)"));
    let join = |values: Vec<String>| if values.is_empty() { "-".to_string() } else { values.join(", ") };
    let mut fields: Vec<(&str, String)> = vec![
        ("brand", item.brand.as_ref().map(|brand| brand.name.clone()).unwrap_or_else(|| "-".into())),
        ("price", price(item)),
        (
            "in stock",
            match product.in_stock {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "unknown".into(),
            },
        ),
        ("catalog", format!("{} ({})", found.catalog_display_name, found.catalog_key)),
        ("url", item.product_url.clone()),
        ("uuid", item.uuid.clone()),
        ("sizes", join(product.sizes.clone())),
        ("colors", join(product.colors.iter().map(|color| color.label.clone()).collect())),
        ("categories", join(product.categories.iter().map(|category| category.name.clone()).collect())),
        ("variants", product.variants.len().to_string()),
    ];
    if let Some(rating) = &item.rating {
        fields.push(("rating", format!("{:.1} ({} reviews)", rating.average, rating.count)));
    }
    if let Some(description) = &product.description {
        let short: String = description.chars().take(200).collect();
        let ellipsis = if description.chars().count() > 200 { "…" } else { "" };
        fields.push(("description", format!("{short}{ellipsis}")));
    }
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in fields {
        println!("  {name:<width$}  {value}");
    }
}
