//! A real octogen server for the client's tests: `Application::build` on
//! 127.0.0.1:0 with a fresh data directory (exactly what `octogen serve` runs),
//! set up through its operator API with the sample catalog, the organizations
//! and the keys the shared contract cases name (`sdks/contract/README.md`).

#![allow(dead_code)]

pub mod contract;

use octogen_core::api_key::random_token;
use octogen_server::{Application, Config};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The project's sample catalog (24 products, Shopify storefront JSON).
pub const NORTHWIND: &[u8] = include_bytes!("../../../octogen-server/demo/northwind-products.json");

pub struct Server {
    pub base: String,
    admin_token: String,
    http: reqwest::Client,
    _data_dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

/// The keys of the contract fixture (minted at run time, never stored).
pub struct Keys {
    /// A catalog partner granted `northwind`.
    pub partner: String,
    pub partner_id: String,
    /// A catalog partner with no grants.
    pub empty: String,
    /// A merchant organization's key (403 api_key_org_type_forbidden).
    pub merchant: String,
}

impl Keys {
    /// The partner key with its secret altered: well-formed, but wrong.
    pub fn wrong_secret(&self) -> String {
        let mut key = self.partner.clone();
        let last = key.pop().unwrap();
        key.push(if last == 'A' { 'B' } else { 'A' });
        key
    }
}

impl Server {
    pub async fn start() -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let admin_token = format!("octo_admin_{}", random_token(32).expose_secret());
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            key_pepper: Some(random_token(32)),
            admin_token: Some(SecretString::from(admin_token.clone())),
            ..Config::default()
        };
        let app = Application::build(config).await.expect("server builds");
        let base = format!("http://{}", app.local_addr());
        let (shutdown, signal) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = signal.await;
        }));
        Server { base, admin_token, http: reqwest::Client::new(), _data_dir: data_dir, _shutdown: shutdown }
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request =
            self.http.request(method, format!("{}/admin/v1{path}", self.base)).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "admin {path}: {status} {body}");
        body
    }

    pub async fn org(&self, name: &str, org_type: &str) -> String {
        let org = self.admin(reqwest::Method::POST, "/orgs", Some(json!({"name": name, "type": org_type}))).await;
        org["id"].as_str().unwrap().to_string()
    }

    pub async fn mint_key(&self, org: &str) -> String {
        let key = self.admin(reqwest::Method::POST, &format!("/orgs/{org}/keys"), Some(json!({"name": "test"}))).await;
        key["key"].as_str().unwrap().to_string()
    }

    /// Creates catalog `key` ("Northwind Outfitters") and imports the sample feed into it.
    pub async fn northwind(&self, key: &str) {
        self.admin(
            reqwest::Method::POST,
            "/catalogs",
            Some(json!({"key": key, "name": "Northwind Outfitters", "sourceUrl": "https://northwind.example"})),
        )
        .await;
        let upload = self
            .http
            .post(format!("{}/admin/v1/uploads?name=feed", self.base))
            .bearer_auth(&self.admin_token)
            .body(NORTHWIND.to_vec())
            .send()
            .await
            .expect("upload");
        let upload: Value = upload.json().await.unwrap();
        let run = self
            .admin(
                reqwest::Method::POST,
                &format!("/catalogs/{key}/imports"),
                Some(json!({"format": "shopify", "upload": upload["upload"], "name": "feed", "currency": "USD"})),
            )
            .await;
        let run_id = run["id"].as_str().unwrap().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let run = self.admin(reqwest::Method::GET, &format!("/runs/{run_id}"), None).await;
            if run["status"] == "succeeded" && run["searchable"] == true {
                return;
            }
            assert!(!matches!(run["status"].as_str(), Some("failed" | "interrupted")), "{run}");
            assert!(std::time::Instant::now() < deadline, "the import did not finish: {run}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The contract fixture: catalog `northwind` and the partner, empty and merchant keys.
    pub async fn contract_fixture(&self) -> Keys {
        self.northwind("northwind").await;
        let partner_id = self.org("Contract Partner", "catalog_partner").await;
        self.admin(reqwest::Method::PUT, &format!("/orgs/{partner_id}/grants/northwind"), None).await;
        let empty = self.org("Contract Empty", "catalog_partner").await;
        let merchant = self.org("Contract Merchant", "merchant").await;
        Keys {
            partner: self.mint_key(&partner_id).await,
            partner_id,
            empty: self.mint_key(&empty).await,
            merchant: self.mint_key(&merchant).await,
        }
    }

    pub fn client(&self, key: &str) -> octogen_client::Client {
        octogen_client::Client::builder().api_key(key).base_url(&self.base).build().expect("client")
    }
}
