//! An async Rust client for the Octogen Platform Catalog API (SPEC §4): list the
//! catalogs granted to your organization, search products (one page, or a
//! stream that follows `nextCursor` to the end), and look a product up by URL.
//!
//! ```no_run
//! # async fn example() -> Result<(), octogen_client::Error> {
//! use futures_util::TryStreamExt;
//!
//! // The key comes from OCTO_API_KEY (or OCTOGEN_PLATFORM_API_KEY), the server
//! // from OCTO_BASE_URL (default http://127.0.0.1:8080) — or set them explicitly:
//! let client = octogen_client::Client::builder()
//!     .api_key(std::env::var("MY_KEY").unwrap_or_default())
//!     .base_url("https://catalog.example.com")
//!     .build()?;
//! let catalogs = client.list_catalogs().await?;
//! let hoodies: Vec<_> = client.search_products().q("hoodie").limit(100).into_stream().try_collect().await?;
//! match client.lookup_product("https://northwind.example/products/trail-hoodie").await {
//!     Ok(found) => println!("{:?}", found.product.item.title),
//!     Err(error) if error.status() == Some(404) => println!("not in your catalogs"),
//!     Err(error) => return Err(error),
//! }
//! # Ok(()) }
//! ```
//!
//! Errors follow the SDKs' model (SPEC §8): [`Error::MissingApiKey`],
//! [`Error::Connection`], and [`Error::Api`] with the status, its
//! [`ApiErrorKind`], the `detail` and the raw body. Connection failures, 5xx and
//! 429 are retried with bounded, jittered exponential backoff, honouring
//! `Retry-After` ([`RetryPolicy`]). The key is never part of `Debug` output or
//! of an error.

mod client;
mod error;
mod models;
mod retry;
mod search;

pub use client::{
    key_from_env, Client, ClientBuilder, API_KEY_ENV, API_VERSION, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_TIMEOUT,
    FALLBACK_API_KEY_ENV,
};
pub use error::{ApiError, ApiErrorKind, Detail, Error, LocPart, ValidationIssue};
pub use models::*;
pub use retry::RetryPolicy;
pub use search::SearchProducts;
