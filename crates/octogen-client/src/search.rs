//! `POST /v1/products/search`: a builder for one page, and streams that follow
//! `nextCursor` to the last page.

use futures_util::stream::{self, Stream, TryStreamExt};
use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::models::{Facet, MerchantProductListItem, SearchPage, SearchRequest};

/// A search being built. Every filter is optional; without `q` it browses.
///
/// ```no_run
/// # async fn example(client: octogen_client::Client) -> Result<(), octogen_client::Error> {
/// use futures_util::TryStreamExt;
/// use octogen_client::facet;
///
/// let search = client
///     .search_products()
///     .q("black hoodie")
///     .facet(facet::COLOR_FAMILY, ["Black"])
///     .facet(facet::GENDER, ["male"])
///     .price_range(50.0, 300.0)
///     .limit(10);
/// let first_page = search.clone().send().await?;
/// let everything: Vec<_> = search.into_stream().try_collect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SearchProducts {
    client: Client,
    request: SearchRequest,
}

impl SearchProducts {
    pub(crate) fn new(client: Client) -> Self {
        SearchProducts { client, request: SearchRequest::default() }
    }

    /// Free text.
    pub fn q(mut self, q: impl Into<String>) -> Self {
        self.request.q = Some(q.into());
        self
    }

    /// Restrict to one granted catalog (404 `catalog_not_found` otherwise).
    pub fn catalog(mut self, catalog: impl Into<String>) -> Self {
        self.request.catalog = Some(catalog.into());
        self
    }

    /// Restrict to these granted catalogs (every one must be granted).
    pub fn catalogs<I, S>(mut self, catalogs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.request.catalogs = Some(catalogs.into_iter().map(Into::into).collect());
        self
    }

    /// Adds values to a facet: values of one facet are ORed, facets are ANDed.
    /// Calling it again with the same name adds to that facet's values.
    pub fn facet<I, S>(mut self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = name.into();
        let values = values.into_iter().map(Into::into);
        match self.request.facets.iter_mut().find(|facet| facet.name == name) {
            Some(facet) => facet.values.extend(values),
            None => self.request.facets.push(Facet { name, values: values.collect() }),
        }
        self
    }

    /// Inclusive lower bound on `currentPrice`.
    pub fn price_min(mut self, price: f64) -> Self {
        self.request.price_min = Some(price);
        self
    }

    /// Inclusive upper bound on `currentPrice`.
    pub fn price_max(mut self, price: f64) -> Self {
        self.request.price_max = Some(price);
        self
    }

    /// Both price bounds, inclusive.
    pub fn price_range(self, min: f64, max: f64) -> Self {
        self.price_min(min).price_max(max)
    }

    /// Page size, 1..=100 (the server's default is 50).
    pub fn limit(mut self, limit: u32) -> Self {
        self.request.limit = Some(limit);
        self
    }

    /// Continue from a previous page's `nextCursor` (send the same filters).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.request.cursor = Some(cursor.into());
        self
    }

    /// The request body as it will be sent.
    pub fn request(&self) -> &SearchRequest {
        &self.request
    }

    /// Fetches one page.
    pub async fn send(self) -> Result<SearchPage, Error> {
        self.client.request(Method::POST, "/v1/products/search", Some(&self.request)).await
    }

    /// Every page from this one to the last, following `nextCursor`. The stream
    /// ends after the first error.
    pub fn into_pages(self) -> impl Stream<Item = Result<SearchPage, Error>> + Send + 'static {
        let SearchProducts { client, request } = self;
        stream::try_unfold(Some((client, request)), |state| async move {
            let Some((client, request)) = state else { return Ok(None) };
            let page: SearchPage = client.request(Method::POST, "/v1/products/search", Some(&request)).await?;
            let next =
                page.next_cursor.clone().map(|cursor| (client, SearchRequest { cursor: Some(cursor), ..request }));
            Ok(Some((page, next)))
        })
    }

    /// Every matching product, page after page, to the last one.
    pub fn into_stream(self) -> impl Stream<Item = Result<MerchantProductListItem, Error>> + Send + 'static {
        self.into_pages().map_ok(|page| stream::iter(page.items.into_iter().map(Ok))).try_flatten()
    }
}
