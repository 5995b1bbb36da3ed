//! The search benchmark's baseline: the same search API answered by SQLite
//! FTS5, the way one would build it without a search engine.
//!
//! **Data.** The generated feed is parsed and enriched by `octogen_ingest`
//! (the very code the server's import runs), so both sides hold the same
//! products with the same enrichment. One SQLite file (sqlx's bundled SQLite,
//! compiled with `SQLITE_ENABLE_FTS5`):
//! - `products(id INTEGER PRIMARY KEY, title_key, price, item)`: `title_key`
//!   is the browse order (the lowercased, whitespace-collapsed title, its first
//!   64 bytes: octogen's browse key); `price` the current price; `item` the
//!   search result as JSON (`MerchantProductListItem`, rendered at load time, so
//!   a page is a concatenation of stored strings). Indexes on
//!   `(title_key, id)` and `(price)`.
//! - `fts`: a contentless FTS5 table (`content=''`, tokenizer
//!   `porter unicode61 remove_diacritics 2`: English stemming, like octogen)
//!   with 5 columns: title; brand (merchant and canonical brand); product type
//!   (merchant and enriched type, its synonyms, the category path); tags (tags,
//!   colors and color families, materials, patterns, fits, styles); description.
//! - `terms(id, term UNIQUE)` and `facets(term_id, product_id)` (a `WITHOUT
//!   ROWID` primary key on both): every facet term octogen indexes
//!   (`octogen_core::facets::facet_terms`, so any SPEC §4 facet name works and
//!   values match case-insensitively the same way).
//!
//! After loading: FTS5 `optimize` (one b-tree per term), `ANALYZE` (STAT4
//! statistics for the planner), WAL journal. The file can be kept and reused
//! (`--baseline-db`); a `meta` table records which catalog it holds.
//!
//! **Queries.** One SQL statement per request through a pool of read-only
//! connections (`mmap_size` 4 GiB, 64 MiB page cache each, sqlx's prepared
//! statement cache; sqlx runs each connection on its own thread, so requests
//! run in parallel up to the pool size):
//! - text: `fts MATCH` of all the query's words (stop words dropped, each word
//!   a quoted FTS5 string), ranked by `bm25(fts, 10, 5, 4, 3, 1)` (title >
//!   brand > type > tags > description), then id. If no product has all the
//!   words, the first page falls back to any of them (`OR`), so partly-matching
//!   queries get results as they do from octogen. Paged by `OFFSET` (a ranked
//!   page must score every match anyway); the cursor holds the mode and offset.
//! - browse (no text): `ORDER BY title_key, id`, paged by keyset
//!   (`(title_key, id) > (?, ?)`, which the `(title_key, id)` index serves).
//! - facets: per facet `EXISTS (SELECT 1 FROM facets WHERE term_id IN (…) AND
//!   product_id = p.id)` (ANDed across facets, ORed within: SPEC §4), term ids
//!   resolved from an in-memory copy of `terms`; price bounds: `p.price >= ?`,
//!   `p.price <= ?`.
//! - `limit + 1` rows are read to know whether there is a next page.
//!
//! The HTTP server is axum on 127.0.0.1, inside the benchmark process (so it
//! shares the load generator's process and runtime; that flatters it, if
//! anything: no separate process, no access log, no authentication).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use octogen_core::facets::{facet_term, facet_terms, normalize_value, FacetKey};
use octogen_core::product::product_uuid;
use octogen_core::wire::MerchantProductListItem;
use octogen_core::{Product, ProductRecord, Timestamp};
use octogen_ingest::synth::{SynthFormat, SYNTH_BASE_URL};
use octogen_ingest::{parse_feed, CsvMapping, FeedFormat, FeedOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::scenarios::catalog::{SynthCatalog, MYNTRA_MAPPING};

/// Bumped when the layout changes, so an old kept file is rebuilt rather than misread.
const SCHEMA_VERSION: &str = "1";
/// bm25 weights of the FTS5 columns: title, brand, product type, tags, description.
pub const BM25_WEIGHTS: &str = "10.0, 5.0, 4.0, 3.0, 1.0";
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on", "or", "the", "to",
    "with",
];
/// Products per multi-row INSERT.
const BATCH: usize = 200;
/// Products per transaction while loading.
const COMMIT_EVERY: u64 = 50_000;

/// How the baseline's database was obtained.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineBuild {
    pub path: PathBuf,
    /// An existing file for the same catalog was reused (not rebuilt).
    pub reused: bool,
    pub products: u64,
    pub facet_rows: u64,
    pub distinct_terms: u64,
    /// Parse + load + optimize + analyze (0 when reused).
    pub build_s: f64,
    pub db_bytes: u64,
    pub sqlite_version: String,
}

fn meta_value(catalog: &SynthCatalog) -> String {
    format!("{} schema {SCHEMA_VERSION}", catalog.key())
}

fn build_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // A derived file, rebuilt from the feed when in doubt: no journal while loading.
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-524288")
        .pragma("temp_store", "memory")
}

fn read_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .statement_cache_capacity(512)
        .pragma("mmap_size", "4294967296")
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
}

/// Whether `path` holds a complete baseline database of `catalog`.
pub async fn is_built(path: &Path, catalog: &SynthCatalog) -> bool {
    if !path.is_file() {
        return false;
    }
    let Ok(mut connection) = SqliteConnection::connect_with(&read_options(path)).await else { return false };
    let complete: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'complete'")
        .fetch_optional(&mut connection)
        .await
        .ok()
        .flatten();
    let _ = connection.close().await;
    complete.as_deref() == Some(meta_value(catalog).as_str())
}

/// Describes an existing database (after `is_built`).
pub async fn describe(path: &Path, reused: bool, build_s: f64) -> anyhow::Result<BaselineBuild> {
    let mut connection = SqliteConnection::connect_with(&read_options(path)).await?;
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM products").fetch_one(&mut connection).await?;
    let facet_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM facets").fetch_one(&mut connection).await?;
    let distinct_terms: i64 = sqlx::query_scalar("SELECT count(*) FROM terms").fetch_one(&mut connection).await?;
    let sqlite_version: String = sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&mut connection).await?;
    connection.close().await?;
    Ok(BaselineBuild {
        path: path.to_path_buf(),
        reused,
        products: products as u64,
        facet_rows: facet_rows as u64,
        distinct_terms: distinct_terms as u64,
        build_s,
        db_bytes: ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
            .map(|metadata| metadata.len())
            .sum(),
        sqlite_version,
    })
}

/// One product, ready to insert.
struct Row5 {
    title_key: String,
    price: Option<f64>,
    item: String,
    fts: [String; 5],
    terms: Vec<String>,
}

/// octogen's browse key: lowercased, whitespace collapsed, at most 64 bytes.
fn title_key(title: &str) -> String {
    let mut key = normalize_value(title);
    if key.len() > 64 {
        let mut end = 64;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

fn join_distinct<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for part in parts {
        if !part.trim().is_empty() && !seen.iter().any(|existing| existing.eq_ignore_ascii_case(part)) {
            seen.push(part);
        }
    }
    seen.join(" ; ")
}

fn to_row(catalog_key: &str, product: Product, now: Timestamp) -> Row5 {
    let enrichment = &product.enrichment;
    let brand = join_distinct(
        product
            .brand
            .iter()
            .map(|brand| brand.name.as_str())
            .chain(enrichment.canonical_brand.iter().map(|brand| brand.brand_name.as_str())),
    );
    let kind = join_distinct(
        product
            .product_type
            .iter()
            .chain(enrichment.product_type.iter())
            .chain(&enrichment.type_synonyms)
            .chain(&enrichment.category_path)
            .map(String::as_str),
    );
    let tags = join_distinct(
        product
            .tags
            .iter()
            .chain(&enrichment.tags)
            .chain(product.colors.iter().map(|color| &color.label))
            .chain(&enrichment.color)
            .chain(&enrichment.color_family)
            .chain(&product.details.materials)
            .chain(&product.details.patterns)
            .chain(&product.details.fit)
            .chain(&enrichment.styles)
            .map(String::as_str),
    );
    let terms = facet_terms(&product);
    let record = ProductRecord {
        uuid: product_uuid(catalog_key, &product.url),
        catalog_key: catalog_key.to_string(),
        is_active: true,
        updated_at: now,
        normalized_url: product.url.clone(),
        product,
    };
    let item = serde_json::to_string(&MerchantProductListItem::from_record(&record)).expect("an item serializes");
    let product = record.product;
    Row5 {
        title_key: title_key(&product.title),
        price: product.current_price,
        item,
        fts: [product.title, brand, kind, tags, product.description.unwrap_or_default()],
        terms,
    }
}

fn feed_options(format: SynthFormat) -> anyhow::Result<(FeedFormat, FeedOptions)> {
    Ok(match format {
        SynthFormat::Shopify => (
            FeedFormat::Shopify,
            FeedOptions {
                base_url: Some(SYNTH_BASE_URL.into()),
                default_currency: Some("GBP".into()),
                ..FeedOptions::default()
            },
        ),
        SynthFormat::Csv => {
            let mapping = CsvMapping::from_toml(MYNTRA_MAPPING).map_err(|error| anyhow::anyhow!("{error}"))?;
            (FeedFormat::Csv, FeedOptions { mapping: Some(mapping), ..FeedOptions::default() })
        }
    })
}

/// Builds the baseline database at `path` from the generated `feed` of `catalog` (replacing any file there).
pub async fn build(path: &Path, catalog: &SynthCatalog, feed: &Path) -> anyhow::Result<BaselineBuild> {
    let started = Instant::now();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut connection = SqliteConnection::connect_with(&build_options(path)).await?;
    for statement in [
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        "CREATE TABLE products(id INTEGER PRIMARY KEY, title_key TEXT NOT NULL, price REAL, item TEXT NOT NULL)",
        "CREATE TABLE terms(id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE)",
        "CREATE TABLE facets(term_id INTEGER NOT NULL, product_id INTEGER NOT NULL, PRIMARY KEY (term_id, product_id)) \
         WITHOUT ROWID",
        "CREATE VIRTUAL TABLE fts USING fts5(title, brand, product_type, tags, description, content='', \
         tokenize='porter unicode61 remove_diacritics 2')",
    ] {
        sqlx::query(statement).execute(&mut connection).await.with_context(|| statement.to_string())?;
    }

    // Parsing and rendering on a blocking thread, inserting here: the two overlap on 2 cores.
    let (sender, mut receiver) = mpsc::channel::<Vec<Row5>>(8);
    let (format, options) = feed_options(catalog.format)?;
    let catalog_key = catalog.key();
    let feed = feed.to_path_buf();
    let parser = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let file = std::fs::File::open(&feed).with_context(|| format!("cannot read {}", feed.display()))?;
        let input = std::io::BufReader::with_capacity(1 << 20, file);
        let now = Timestamp::now();
        let mut batch = Vec::with_capacity(BATCH);
        let mut closed = false;
        let summary = parse_feed(format, input, &options, |record| {
            if let Ok(product) = record {
                batch.push(to_row(&catalog_key, product, now));
                if batch.len() == BATCH && sender.blocking_send(std::mem::take(&mut batch)).is_err() {
                    closed = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        if !batch.is_empty() && !closed {
            let _ = sender.blocking_send(batch);
        }
        Ok(summary.accepted)
    });

    let mut term_ids: HashMap<String, i64> = HashMap::new();
    let mut next_id: i64 = 1;
    let mut inserted: u64 = 0;
    let mut facet_rows: u64 = 0;
    sqlx::query("BEGIN").execute(&mut connection).await?;
    while let Some(rows) = receiver.recv().await {
        let first_id = inserted as i64 + 1;
        let mut new_terms = Vec::new();
        let mut facet_pairs = Vec::new();
        for (offset, row) in rows.iter().enumerate() {
            for term in &row.terms {
                let id = match term_ids.get(term) {
                    Some(id) => *id,
                    None => {
                        let id = next_id;
                        next_id += 1;
                        term_ids.insert(term.clone(), id);
                        new_terms.push((id, term.clone()));
                        id
                    }
                };
                facet_pairs.push((id, first_id + offset as i64));
            }
        }
        if !new_terms.is_empty() {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO terms(id, term) ");
            insert.push_values(&new_terms, |mut values, (id, term)| {
                values.push_bind(*id).push_bind(term.as_str());
            });
            insert.build().execute(&mut connection).await?;
        }
        let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO products(id, title_key, price, item) ");
        insert.push_values(rows.iter().enumerate(), |mut values, (offset, row)| {
            values
                .push_bind(first_id + offset as i64)
                .push_bind(row.title_key.as_str())
                .push_bind(row.price)
                .push_bind(row.item.as_str());
        });
        insert.build().execute(&mut connection).await?;
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO fts(rowid, title, brand, product_type, tags, description) ");
        insert.push_values(rows.iter().enumerate(), |mut values, (offset, row)| {
            values.push_bind(first_id + offset as i64);
            for column in &row.fts {
                values.push_bind(column.as_str());
            }
        });
        insert.build().execute(&mut connection).await?;
        // SQLite takes at most 32,766 parameters per statement.
        for chunk in facet_pairs.chunks(10_000) {
            let mut insert = QueryBuilder::<Sqlite>::new("INSERT INTO facets(term_id, product_id) ");
            insert.push_values(chunk, |mut values, (term, product)| {
                values.push_bind(*term).push_bind(*product);
            });
            insert.build().execute(&mut connection).await?;
        }
        facet_rows += facet_pairs.len() as u64;
        let before = inserted;
        inserted += rows.len() as u64;
        if before / COMMIT_EVERY != inserted / COMMIT_EVERY {
            sqlx::query("COMMIT").execute(&mut connection).await?;
            sqlx::query("BEGIN").execute(&mut connection).await?;
            eprintln!("  baseline: {inserted} products loaded ({:.0} s)", started.elapsed().as_secs_f64());
        }
    }
    sqlx::query("COMMIT").execute(&mut connection).await?;
    let accepted = parser.await.context("the feed parser panicked")??;
    ensure!(accepted == inserted, "parsed {accepted} products but loaded {inserted}");
    ensure!(inserted == catalog.products, "the feed had {inserted} products, the catalog {}", catalog.products);
    eprintln!("  baseline: indexing, optimizing and analyzing…");
    for statement in [
        "CREATE INDEX products_title ON products(title_key, id)".to_string(),
        "CREATE INDEX products_price ON products(price)".to_string(),
        "INSERT INTO fts(fts) VALUES ('optimize')".to_string(),
        "ANALYZE".to_string(),
        format!("INSERT INTO meta(key, value) VALUES ('complete', '{}')", meta_value(catalog)),
        "PRAGMA journal_mode = WAL".to_string(),
    ] {
        sqlx::query(&statement).execute(&mut connection).await.with_context(|| statement.clone())?;
    }
    connection.close().await?;
    ensure!(facet_rows > 0, "no facet terms were loaded");
    describe(path, false, started.elapsed().as_secs_f64()).await
}

/// A running baseline server.
pub struct BaselineServer {
    addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pool: SqlitePool,
}

struct Engine {
    pool: SqlitePool,
    term_ids: HashMap<String, i64>,
    requests: AtomicU64,
}

impl BaselineServer {
    /// Serves `path` on 127.0.0.1 (an ephemeral port) with `connections` pooled SQLite connections.
    pub async fn start(path: &Path, connections: u32) -> anyhow::Result<BaselineServer> {
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(connections)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(read_options(path))
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let term_ids: HashMap<String, i64> = sqlx::query("SELECT term, id FROM terms")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect();
        let engine = Arc::new(Engine { pool: pool.clone(), term_ids, requests: AtomicU64::new(0) });
        let router = Router::new().route("/v1/products/search", post(search)).with_state(engine);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(BaselineServer { addr, shutdown: Some(shutdown), task, pool })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Keep-alive connections of the load generator may hold the server open; give it a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
        self.pool.close().await;
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct SearchBody {
    #[allow(dead_code)]
    catalog: Option<String>,
    q: Option<String>,
    facets: Option<Vec<FacetBody>>,
    price_min: Option<f64>,
    price_max: Option<f64>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct FacetBody {
    name: String,
    values: Vec<String>,
}

/// The baseline's cursor (opaque to clients, like octogen's).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m")]
enum Cursor {
    /// Ranked text results from this offset; `any` = the OR fallback.
    #[serde(rename = "t")]
    Text { any: bool, offset: i64 },
    /// Browse results after this position.
    #[serde(rename = "b")]
    Browse { key: String, id: i64 },
}

fn error(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({"detail": detail}))).into_response()
}

async fn search(State(engine): State<Arc<Engine>>, body: Bytes) -> Response {
    let request: SearchBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(problem) => return error(StatusCode::UNPROCESSABLE_ENTITY, &problem.to_string()),
    };
    match engine.search(&request).await {
        Ok(page) => ([(header::CONTENT_TYPE, "application/json")], page).into_response(),
        Err(problem) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{problem:#}")),
    }
}

/// The words of `q` as FTS5 strings (each quoted; FTS5 tokenizes and stems inside the quotes).
fn fts_words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .filter(|word| !STOP_WORDS.contains(&word.to_lowercase().as_str()))
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect()
}

impl Engine {
    async fn search(&self, request: &SearchBody) -> anyhow::Result<String> {
        let limit = request.limit.unwrap_or(50).clamp(1, 100);
        let cursor: Option<Cursor> = match &request.cursor {
            Some(text) => Some(serde_json::from_str(text).context("not a cursor of this server")?),
            None => None,
        };
        let words = request.q.as_deref().map(fts_words).unwrap_or_default();
        let (items, next) = if words.is_empty() {
            let after = match cursor {
                Some(Cursor::Browse { key, id }) => Some((key, id)),
                Some(Cursor::Text { .. }) => bail!("a text cursor sent with a browse query"),
                None => None,
            };
            self.browse(request, after, limit).await?
        } else {
            let (any, offset) = match cursor {
                Some(Cursor::Text { any, offset }) => (any, offset),
                Some(Cursor::Browse { .. }) => bail!("a browse cursor sent with a text query"),
                None => (false, 0),
            };
            let mut page = self.text(request, &words, any, offset, limit).await?;
            if page.0.is_empty() && offset == 0 && !any && words.len() > 1 {
                page = self.text(request, &words, true, 0, limit).await?;
            }
            page
        };
        let request_id = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(64 + items.iter().map(String::len).sum::<usize>());
        out.push_str("{\"items\":[");
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
        out.push_str("],\"nextCursor\":");
        match next {
            Some(cursor) => out.push_str(&serde_json::to_string(&serde_json::to_string(&cursor)?)?),
            None => out.push_str("null"),
        }
        // As long as octogen's (a UUID).
        out.push_str(&format!(",\"requestId\":\"{request_id:036x}\"}}"));
        Ok(out)
    }

    /// `AND <facet and price conditions>` on `p`.
    fn push_filters<'a>(&self, query: &mut QueryBuilder<'a, Sqlite>, request: &'a SearchBody) -> anyhow::Result<()> {
        for facet in request.facets.iter().flatten() {
            let key = FacetKey::parse(&facet.name).map_err(|problem| anyhow::anyhow!("{problem}"))?;
            let ids: Vec<i64> = facet
                .values
                .iter()
                .map(|value| self.term_ids.get(&facet_term(&key, value)).copied().unwrap_or(-1))
                .collect();
            query.push(" AND EXISTS (SELECT 1 FROM facets f WHERE f.product_id = p.id AND f.term_id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            query.push("))");
        }
        if let Some(min) = request.price_min {
            query.push(" AND p.price >= ").push_bind(min);
        }
        if let Some(max) = request.price_max {
            query.push(" AND p.price <= ").push_bind(max);
        }
        Ok(())
    }

    async fn text(
        &self,
        request: &SearchBody,
        words: &[String],
        any: bool,
        offset: i64,
        limit: i64,
    ) -> anyhow::Result<(Vec<String>, Option<Cursor>)> {
        let matched = words.join(if any { " OR " } else { " " });
        let mut query = QueryBuilder::<Sqlite>::new("SELECT p.item FROM fts CROSS JOIN products p ON p.id = fts.rowid");
        query.push(" WHERE fts MATCH ").push_bind(matched);
        self.push_filters(&mut query, request)?;
        query.push(format!(" ORDER BY bm25(fts, {BM25_WEIGHTS}), p.id LIMIT "));
        query.push_bind(limit + 1).push(" OFFSET ").push_bind(offset);
        let rows = query.build().fetch_all(&self.pool).await?;
        let mut items: Vec<String> = rows.iter().map(|row| row.get::<String, _>(0)).collect();
        let next = (items.len() as i64 > limit).then_some(Cursor::Text { any, offset: offset + limit });
        items.truncate(limit as usize);
        Ok((items, next))
    }

    async fn browse(
        &self,
        request: &SearchBody,
        after: Option<(String, i64)>,
        limit: i64,
    ) -> anyhow::Result<(Vec<String>, Option<Cursor>)> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT p.item, p.title_key, p.id FROM products p WHERE 1");
        if let Some((key, id)) = after {
            query.push(" AND (p.title_key, p.id) > (").push_bind(key).push(", ").push_bind(id).push(")");
        }
        self.push_filters(&mut query, request)?;
        query.push(" ORDER BY p.title_key, p.id LIMIT ").push_bind(limit + 1);
        let rows = query.build().fetch_all(&self.pool).await?;
        let next = (rows.len() as i64 > limit).then(|| {
            let last = &rows[limit as usize - 1];
            Cursor::Browse { key: last.get(1), id: last.get(2) }
        });
        let items = rows.iter().take(limit as usize).map(|row| row.get::<String, _>(0)).collect();
        Ok((items, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_words_are_quoted_fts5_strings_without_stop_words() {
        assert_eq!(
            fts_words("Blanket for  anxiety \"relief\" & more"),
            ["\"Blanket\"", "\"anxiety\"", "\"\"\"relief\"\"\"", "\"more\""]
        );
        assert!(fts_words("  - & ").is_empty());
    }

    #[test]
    fn title_keys_are_bounded_on_a_char_boundary() {
        assert_eq!(title_key("  Puma   Men BLACK "), "puma men black");
        let long = "é".repeat(40);
        let key = title_key(&long);
        assert!(key.len() <= 64 && key.chars().all(|c| c == 'é'));
    }

    #[tokio::test]
    async fn builds_and_answers_like_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SynthCatalog::new(300, 42, SynthFormat::Shopify);
        let feed = catalog.write_feed(dir.path()).unwrap();
        let db = dir.path().join("baseline.db");
        let built = build(&db, &catalog, &feed.path).await.unwrap();
        assert_eq!(built.products, 300);
        assert!(is_built(&db, &catalog).await);
        assert!(!is_built(&db, &SynthCatalog::new(301, 42, SynthFormat::Shopify)).await);
        let server = BaselineServer::start(&db, 2).await.unwrap();
        let client = reqwest::Client::new();
        let url = format!("http://{}/v1/products/search", server.addr());
        let page = |body: serde_json::Value| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client.post(&url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.json::<serde_json::Value>().await.unwrap()
            }
        };
        // Browse pages chain through keyset cursors without repeats.
        let mut seen = std::collections::BTreeSet::new();
        let mut body = json!({"limit": 40});
        loop {
            let result = page(body.clone()).await;
            for item in result["items"].as_array().unwrap() {
                assert!(seen.insert(item["uuid"].as_str().unwrap().to_string()), "repeated {item}");
            }
            match result["nextCursor"].as_str() {
                Some(cursor) => body["cursor"] = json!(cursor),
                None => break,
            }
        }
        assert_eq!(seen.len(), 300);
        // Text with a facet and a price bound.
        let result = page(json!({"q": "shirt", "facets": [{"name": "product_type", "values": ["CASUAL SHIRT"]}],
                                  "price_max": 1000}))
        .await;
        let items = result["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(items.iter().all(|item| item["title"].as_str().unwrap().contains("Shirt")));
        // No product has every word: the OR fallback still answers.
        let result = page(json!({"q": "shirt zzzunknownzzz"})).await;
        assert!(!result["items"].as_array().unwrap().is_empty());
        server.stop().await.unwrap();
    }
}
