//! `TestApp`: a real server on 127.0.0.1:0 with a fresh data directory, plus
//! one helper per operation so tests read like the flows they check.

use std::path::{Path, PathBuf};
use std::process::Output;

use octogen_core::api_key::random_token;
use octogen_server::{Application, Config};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    /// `http://…` of the metrics listener (tests set `metrics_listen`).
    pub metrics_base: Option<String>,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct MintedKey {
    pub id: String,
    pub key: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(data_dir.path());
        Self::spawn_with(config, data_dir).await
    }

    pub async fn spawn_with(config: Config, data_dir: tempfile::TempDir) -> TestApp {
        let admin_token = config.admin_token.as_ref().expect("tests set a token").expose_secret().to_string();
        let app = Application::build(config).await.expect("server builds");
        let base = format!("http://{}", app.local_addr());
        let metrics_base = app.metrics_addr().map(|address| format!("http://{address}"));
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = signal.await;
        }));
        TestApp {
            base,
            metrics_base,
            http: reqwest::Client::new(),
            admin_token,
            data_dir,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it. Returns the data directory,
    /// which lives on until the caller drops it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
        self.data_dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The metrics page, from the metrics listener.
    pub async fn metrics(&self) -> String {
        let base = self.metrics_base.as_ref().expect("the test config sets metrics_listen");
        let response = self.http.get(format!("{base}/metrics")).send().await.expect("metrics request");
        assert_eq!(response.status(), 200);
        response.text().await.expect("metrics text")
    }

    /// Calls the operator API and returns status and JSON body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request =
            self.http.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_org(&self, name: &str, org_type: &str) -> String {
        let (status, body) =
            self.admin(reqwest::Method::POST, "/orgs", Some(json!({"name": name, "type": org_type}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn partner(&self, name: &str) -> String {
        self.create_org(name, "catalog_partner").await
    }

    pub async fn create_catalog(&self, key: &str) {
        let body = json!({"key": key, "name": format!("{key} store"), "sourceUrl": format!("https://{key}.example")});
        let (status, body) = self.admin(reqwest::Method::POST, "/catalogs", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn grant(&self, org: &str, catalog: &str) {
        let (status, body) = self.admin(reqwest::Method::PUT, &format!("/orgs/{org}/grants/{catalog}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn ungrant(&self, org: &str, catalog: &str) {
        let (status, body) = self.admin(reqwest::Method::DELETE, &format!("/orgs/{org}/grants/{catalog}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn mint_key(&self, org: &str) -> MintedKey {
        let (status, body) =
            self.admin(reqwest::Method::POST, &format!("/orgs/{org}/keys"), Some(json!({"name": "test key"}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        MintedKey { id: body["id"].as_str().unwrap().into(), key: body["key"].as_str().unwrap().into() }
    }

    pub async fn revoke(&self, key_id: &str) {
        let (status, body) =
            self.admin(reqwest::Method::POST, &format!("/keys/{key_id}/revoke"), Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn suspend(&self, org: &str) {
        let (status, body) = self.admin(reqwest::Method::POST, &format!("/orgs/{org}/suspend"), Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// `GET /v1/catalogs` with an optional raw Authorization header value.
    pub async fn catalogs_with(&self, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url("/v1/catalogs"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.expect("request")
    }

    pub async fn catalogs(&self, key: &str) -> reqwest::Response {
        self.catalogs_with(Some(&format!("Bearer {key}"))).await
    }

    /// Runs the real `octogen` binary against this server (asynchronously: the
    /// server shares this test's runtime).
    pub async fn cli(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(args)
            .env("OCTOGEN_SERVER", &self.base)
            .env("OCTOGEN_ADMIN_TOKEN", &self.admin_token)
            .env_remove("OCTOGEN_DATA_DIR")
            .current_dir(self.data_dir.path())
            .output()
            .await
            .expect("octogen runs")
    }
}

/// A config for tests: ephemeral port, the given data dir, explicit random
/// secrets, and budgets high enough that only the rate-limit tests (which set
/// their own) ever meet them.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        key_pepper: Some(random_token(32)),
        admin_token: Some(SecretString::from(format!("octo_admin_{}", random_token(32).expose_secret()))),
        default_rate_limit_per_minute: 1_000_000,
        auth_failure_limit_per_minute: 1_000_000,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a response is the contract's error: status, `{"detail": detail}`.
pub async fn assert_detail(response: reqwest::Response, status: u16, detail: &str) {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers().contains_key("x-request-id"), "every response carries X-Request-Id");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body, json!({"detail": detail}));
}

/// An `octogen serve` child process with its logs captured to a file.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    pub log_path: PathBuf,
    pub admin_token: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    /// Kept alive for the process's lifetime (and across restarts).
    data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `octogen serve` on an ephemeral port with the given extra arguments.
    pub fn start(extra_args: &[&str]) -> ServerProcess {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let admin_token = format!("octo_admin_{}", random_token(32).expose_secret());
        let extra_args = extra_args.iter().map(|arg| arg.to_string()).collect();
        Self::spawn(data_dir, admin_token, extra_args, Vec::new())
    }

    /// Like `start`, with extra `OCTOGEN_*` environment settings.
    pub fn start_with_env(env: &[(&str, &str)]) -> ServerProcess {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let admin_token = format!("octo_admin_{}", random_token(32).expose_secret());
        let env = env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        Self::spawn(data_dir, admin_token, Vec::new(), env)
    }

    /// A catalog partner with the sample catalog granted; returns its API key.
    pub fn partner_key(&self) -> String {
        let json = |output: Output| -> Value { serde_json::from_slice(&output.stdout).expect("JSON output") };
        let org = json(self.cli(&[
            "admin",
            "org",
            "create",
            "--name",
            "Process Partner",
            "--type",
            "catalog_partner",
            "--json",
        ]));
        let org = org["id"].as_str().expect("org id").to_string();
        self.cli(&[
            "admin",
            "catalog",
            "create",
            "--key",
            "northwind",
            "--name",
            "Northwind",
            "--source-url",
            "https://northwind.example",
        ]);
        self.cli(&["admin", "grant", "--org", &org, "--catalog", "northwind"]);
        let feed = self.data_dir().join("northwind-feed.json");
        std::fs::write(&feed, NORTHWIND).expect("feed file");
        let run = self.cli(&[
            "catalog",
            "import",
            "--catalog",
            "northwind",
            "--format",
            "shopify",
            "--json",
            feed.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let key = json(self.cli(&["keys", "create", "--org", &org, "--name", "process", "--json"]));
        key["key"].as_str().expect("key").to_string()
    }

    fn spawn(
        data_dir: tempfile::TempDir,
        admin_token: String,
        extra_args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> ServerProcess {
        let log_path = data_dir.path().join(format!(
            "server-{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(&extra_args)
            // `serve` refuses unknown OCTOGEN_* variables; CI exports this one for the test suites.
            .env_remove("OCTOGEN_TEST_DATABASE_URL")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .env("OCTOGEN_ADMIN_TOKEN", &admin_token)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("octogen serve starts");
        let base = wait_for_address(&log_path);
        ServerProcess { child, base, log_path, admin_token, extra_args, env, data_dir }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new server process on the same data directory (after `kill` or `terminate`).
    pub fn restart(mut self) -> ServerProcess {
        self.kill();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        Self::spawn(data_dir, self.admin_token.clone(), self.extra_args.clone(), self.env.clone())
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().expect("server exits")
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_octogen"))
            .args(args)
            .env("OCTOGEN_SERVER", &self.base)
            .env("OCTOGEN_ADMIN_TOKEN", &self.admin_token)
            .output()
            .expect("octogen runs")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's log until it reports its listening address.
pub fn wait_for_address(log_path: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let logs = std::fs::read_to_string(log_path).unwrap_or_default();
        for line in logs.lines() {
            if let Ok(event) = serde_json::from_str::<Value>(line) {
                if event["message"] == "octogen is listening" {
                    return format!("http://{}", event["address"].as_str().expect("address field"));
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the server did not start; its log:\n{}", std::fs::read_to_string(log_path).unwrap_or_default());
}

/// The project's sample catalog (24 products, Shopify storefront JSON).
pub const NORTHWIND: &[u8] = include_bytes!("../../../octogen-server/demo/northwind-products.json");

impl TestApp {
    /// Uploads `feed` and imports it into `catalog`; waits until the run has
    /// finished and (when it succeeded) is searchable. Returns the run.
    pub async fn import(&self, catalog: &str, format: &str, feed: &[u8], options: Value) -> Value {
        let upload = self.upload(feed).await;
        let mut request = json!({"format": format, "upload": upload["upload"], "name": "feed"});
        if let (Some(request), Some(options)) = (request.as_object_mut(), options.as_object()) {
            request.extend(options.clone());
        }
        let (status, run) =
            self.admin(reqwest::Method::POST, &format!("/catalogs/{catalog}/imports"), Some(request)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        self.wait_for_run(run["id"].as_str().unwrap()).await
    }

    /// `POST /admin/v1/uploads` of `feed`; returns the answer (`{"upload": id, ...}`).
    pub async fn upload(&self, feed: &[u8]) -> Value {
        let upload = self
            .http
            .post(self.url("/admin/v1/uploads?name=feed"))
            .bearer_auth(&self.admin_token)
            .body(feed.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(upload.status(), 201);
        upload.json().await.unwrap()
    }

    pub async fn wait_for_run(&self, run_id: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (_, run) = self.admin(reqwest::Method::GET, &format!("/runs/{run_id}"), None).await;
            let finished = matches!(run["status"].as_str(), Some("failed" | "interrupted"))
                || (run["status"] == "succeeded" && run["searchable"] == true);
            if finished {
                return run;
            }
            assert!(std::time::Instant::now() < deadline, "the run did not finish: {run}");
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// A catalog-partner organization with `catalog` created, filled with the
    /// sample feed and granted; returns (org id, API key).
    pub async fn partner_with_northwind(&self, catalog: &str) -> (String, String) {
        let org = self.partner(&format!("Partner of {catalog}")).await;
        self.create_catalog(catalog).await;
        let run = self.import(catalog, "shopify", NORTHWIND, json!({"currency": "USD"})).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        self.grant(&org, catalog).await;
        let key = self.mint_key(&org).await;
        (org, key.key)
    }

    pub async fn post_v1(&self, key: &str, path: &str, body: Value) -> (u16, Value, reqwest::header::HeaderMap) {
        let response = self.http.post(self.url(path)).bearer_auth(key).json(&body).send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap_or(Value::Null), headers)
    }

    pub async fn search(&self, key: &str, body: Value) -> (u16, Value) {
        let (status, body, _) = self.post_v1(key, "/v1/products/search", body).await;
        (status, body)
    }

    pub async fn lookup(&self, key: &str, body: Value) -> (u16, Value) {
        let (status, body, _) = self.post_v1(key, "/v1/products/lookup", body).await;
        (status, body)
    }
}

/// Titles of a search response's items, in order.
pub fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `../shared` next to the checkout, or `None` (with a message) when absent outside CI.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(file);
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is required in CI", path.display());
    eprintln!("skipping: {} is absent", path.display());
    None
}
