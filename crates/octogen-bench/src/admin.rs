//! Benchmark fixtures made through the operator API (`/admin/v1`), the same
//! way an operator would, so they work against any server: in-process, a
//! child process or an external one.

use anyhow::{bail, Context};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

/// A client of the operator API.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
}

/// An API key as minted: its public id and the full key (shown once).
#[derive(Debug, Clone)]
pub struct MintedKey {
    pub id: String,
    pub key: String,
}

/// A catalog-partner organization with one key and some granted catalogs.
#[derive(Debug, Clone)]
pub struct PartnerFixture {
    pub org_id: String,
    pub key: MintedKey,
    pub catalogs: Vec<String>,
}

impl Admin {
    pub fn new(base_url: &str, token: SecretString) -> Self {
        Admin { http: reqwest::Client::new(), base_url: base_url.trim_end_matches('/').to_string(), token }
    }

    /// Calls `/admin/v1{path}`; any non-2xx status is an error carrying the body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/admin/v1{path}", self.base_url);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_org(&self, name: &str, org_type: &str) -> anyhow::Result<String> {
        let body = self.call(Method::POST, "/orgs", Some(json!({"name": name, "type": org_type}))).await?;
        body["id"].as_str().map(str::to_string).context("the created organization has no id")
    }

    pub async fn create_catalog(&self, key: &str, name: &str, source_url: Option<&str>) -> anyhow::Result<()> {
        let body = json!({"key": key, "name": name, "sourceUrl": source_url});
        self.call(Method::POST, "/catalogs", Some(body)).await.map(drop)
    }

    pub async fn grant(&self, org_id: &str, catalog: &str) -> anyhow::Result<()> {
        self.call(Method::PUT, &format!("/orgs/{org_id}/grants/{catalog}"), None).await.map(drop)
    }

    pub async fn create_key(&self, org_id: &str, name: &str) -> anyhow::Result<MintedKey> {
        let body = self.call(Method::POST, &format!("/orgs/{org_id}/keys"), Some(json!({"name": name}))).await?;
        let field = |name: &str| body[name].as_str().map(str::to_string).context("the minted key lacks a field");
        Ok(MintedKey { id: field("id")?, key: field("key")? })
    }

    pub async fn revoke_key(&self, key_id: &str) -> anyhow::Result<()> {
        self.call(Method::POST, &format!("/keys/{key_id}/revoke"), Some(json!({}))).await.map(drop)
    }

    /// An organization's requests per minute (`None`: the server's default).
    pub async fn set_rate_limit(&self, org_id: &str, per_minute: Option<u32>) -> anyhow::Result<()> {
        let body = json!({"perMinute": per_minute});
        self.call(Method::PUT, &format!("/orgs/{org_id}/rate-limit"), Some(body)).await.map(drop)
    }

    pub async fn suspend_org(&self, org_id: &str) -> anyhow::Result<()> {
        self.call(Method::POST, &format!("/orgs/{org_id}/suspend"), Some(json!({}))).await.map(drop)
    }

    /// Uploads a feed file (streamed, never held in memory); returns the upload id.
    pub async fn upload(&self, path: &std::path::Path) -> anyhow::Result<String> {
        let file = tokio::fs::File::open(path).await.with_context(|| format!("cannot read {}", path.display()))?;
        let url = format!("{}/admin/v1/uploads", self.base_url);
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let response = self
            .http
            .post(&url)
            .query(&[("name", name)])
            .bearer_auth(self.token.expose_secret())
            .header("content-type", "application/octet-stream")
            // As `octogen catalog import` sends it (reqwest's own file body reads 8 KiB at a time).
            .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {url}: {status}: {text}");
        }
        let body: Value = serde_json::from_str(&text)?;
        body["upload"].as_str().map(str::to_string).context("the upload has no id")
    }

    /// Starts an index run of `catalog` from an upload (`POST /catalogs/{key}/imports`); returns the run.
    pub async fn start_import(&self, catalog: &str, request: Value) -> anyhow::Result<Value> {
        self.call(Method::POST, &format!("/catalogs/{catalog}/imports"), Some(request)).await
    }

    /// An index run, with `searchable` (whether this node's index reflects it).
    pub async fn run(&self, run_id: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, &format!("/runs/{run_id}"), None).await
    }

    /// Every catalog, as the operator API lists them.
    pub async fn catalogs(&self) -> anyhow::Result<Vec<Value>> {
        let body = self.call(Method::GET, "/catalogs", None).await?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }

    /// A catalog-partner organization granted `catalogs` (existing ones), with one key.
    pub async fn partner_for(&self, name: &str, catalogs: &[&str]) -> anyhow::Result<PartnerFixture> {
        let org_id = self.create_org(&format!("{name} {}", unique_suffix()), "catalog_partner").await?;
        for catalog in catalogs {
            self.grant(&org_id, catalog).await?;
        }
        let key = self.create_key(&org_id, "benchmark").await?;
        Ok(PartnerFixture { org_id, key, catalogs: catalogs.iter().map(|key| key.to_string()).collect() })
    }

    /// A catalog partner with `catalogs` new catalogs granted and one key.
    /// Names carry a unique suffix so repeated runs against one external
    /// server do not collide.
    pub async fn partner_fixture(&self, name: &str, catalogs: usize) -> anyhow::Result<PartnerFixture> {
        let suffix = unique_suffix();
        let org_id = self.create_org(&format!("{name} {suffix}"), "catalog_partner").await?;
        let mut keys = Vec::with_capacity(catalogs);
        for index in 0..catalogs {
            let key = format!("bench-{suffix}-{index}");
            let source = format!("https://{key}.example");
            self.create_catalog(&key, &format!("Benchmark catalog {index}"), Some(&source)).await?;
            self.grant(&org_id, &key).await?;
            keys.push(key);
        }
        let key = self.create_key(&org_id, "benchmark").await?;
        Ok(PartnerFixture { org_id, key, catalogs: keys })
    }
}

/// Lowercase hex from the clock and the process id: unique enough across runs.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", (nanos as u64) & 0xffff_ffff, std::process::id() & 0xffff)
}
