//! A small client for the operator API (`/admin/v1`) of a running server.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::cli_error::{CliError, CliResult, ExitClass};

pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: SecretString,
    /// Where the token came from, for the error when the server refuses it.
    token_source: TokenSource,
}

/// Where the CLI took the operator token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Env,
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Flag => f.write_str("--admin-token"),
            TokenSource::Env => f.write_str(ADMIN_TOKEN_ENV),
            TokenSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

pub const ADMIN_TOKEN_ENV: &str = "OCTOGEN_ADMIN_TOKEN";

impl AdminClient {
    /// The operator token comes from `--admin-token`, else `OCTOGEN_ADMIN_TOKEN`,
    /// else the file a local server generated in its data directory.
    pub fn new(server: &str, flag: Option<SecretString>, data_dir: &Path) -> CliResult<Self> {
        let env = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|token| !token.trim().is_empty());
        let (token, token_source) = match (flag, env) {
            (Some(token), _) => (token, TokenSource::Flag),
            (None, Some(token)) => (SecretString::from(token.trim().to_string()), TokenSource::Env),
            (None, None) => {
                let path = data_dir.join("admin-token");
                (read_token_file(&path)?, TokenSource::File(path))
            }
        };
        let server = server.trim_end_matches('/').to_string();
        Ok(AdminClient { http: reqwest::Client::new(), server, token, token_source })
    }

    /// The server's base URL, as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub async fn get(&self, path: &str) -> CliResult<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> CliResult<Value> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str) -> CliResult<Value> {
        self.send(Method::PUT, path, None).await
    }

    pub async fn put_json(&self, path: &str, body: Value) -> CliResult<Value> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> CliResult<Value> {
        self.send(Method::DELETE, path, None).await
    }

    /// Streams a file to `POST /uploads`, calling `progress` with the bytes sent so far.
    pub async fn upload(&self, path: &Path, progress: impl Fn(u64) + Send + Sync + 'static) -> CliResult<Value> {
        use futures_util::StreamExt;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|error| CliError::new(ExitClass::Invalid, format!("cannot read {}: {error}", path.display())))?;
        let mut sent = 0u64;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                progress(sent);
            }
            chunk
        });
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let request = self
            .http
            .post(format!("{}/admin/v1/uploads", self.server))
            .query(&[("name", name)])
            .bearer_auth(self.token.expose_secret())
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        self.finish(request).await
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> CliResult<Value> {
        let url = format!("{}/admin/v1{path}", self.server);
        let mut request = self.http.request(method, &url).bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> CliResult<Value> {
        let response = request.send().await.map_err(|error| {
            CliError::new(
                ExitClass::Unreachable,
                format!(
                    "cannot reach the octogen server at {} ({}); is it running? Set OCTOGEN_SERVER to its URL",
                    self.server,
                    root_cause(&error)
                ),
            )
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(CliError::new(ExitClass::Auth, self.token_refused()));
        }
        Err(CliError::from_status(status.as_u16(), describe_error(status.as_u16(), &body)))
    }

    /// The server refused a token the CLI did find: say so, where it came from,
    /// and what usually went wrong.
    fn token_refused(&self) -> String {
        let hint = match &self.token_source {
            TokenSource::Flag => String::new(),
            TokenSource::Env => format!("; set {ADMIN_TOKEN_ENV} to the token of the server at {}", self.server),
            TokenSource::File(_) => format!(
                "; it belongs to the server that wrote that file: is that the one at {}? \
                 Set OCTOGEN_SERVER to its URL, or {ADMIN_TOKEN_ENV} to this server's token",
                self.server
            ),
        };
        format!("the operator token was not accepted by {} (from {}){hint}", self.server, self.token_source)
    }
}

/// One line from an error body: the string detail, or the first validation issue.
pub fn describe_error(status: u16, body: &Value) -> String {
    match body.get("detail") {
        Some(Value::String(detail)) => detail.clone(),
        Some(Value::Array(issues)) if !issues.is_empty() => {
            let issue = &issues[0];
            let field =
                issue["loc"].as_array().and_then(|loc| loc.last()).map(|part| part.to_string().replace('"', ""));
            format!(
                "invalid {}: {}",
                field.unwrap_or_else(|| "request".into()),
                issue["msg"].as_str().unwrap_or("invalid value")
            )
        }
        _ => format!("the server answered HTTP {status}"),
    }
}

fn read_token_file(path: &PathBuf) -> CliResult<SecretString> {
    std::fs::read_to_string(path).map(|text| SecretString::from(text.trim().to_string())).map_err(|_| {
        CliError::new(
            ExitClass::Auth,
            format!(
                "no operator token: set {ADMIN_TOKEN_ENV} (or run next to the server's data directory, {})",
                path.display()
            ),
        )
    })
}

pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
