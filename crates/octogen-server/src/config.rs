//! Server configuration: one struct, layered as defaults < file < `OCTOGEN_*`
//! environment < command-line flags. Unknown keys are refused with their name,
//! so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use octogen_fetch::AllowPrivate;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use crate::net::TrustedProxies;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database, the search index and generated secrets live.
    pub data_dir: PathBuf,
    /// `postgres://…` for a multi-node deployment; SQLite under `data_dir` when unset.
    pub database_url: Option<String>,
    /// HMAC key for credential hashes (hex or base64url, ≥ 32 bytes). Generated
    /// into `data_dir/key-pepper` on first start when unset.
    pub key_pepper: Option<SecretString>,
    /// Operator token for the admin API. Generated into `data_dir/admin-token`
    /// on first start when unset.
    pub admin_token: Option<SecretString>,
    /// `info`, `debug`, `trace`, or a full `tracing` filter such as `octogen=debug,info`.
    pub log_level: String,
    /// `json` (default for `serve`) or `pretty`.
    pub log_format: LogFormat,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR
    /// ranges. Empty (the default): the connection's peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// The URL people reach this server at, e.g. `https://octogen.example.com`.
    /// With an `https` URL the portal's cookies are `Secure` and `__Host-`
    /// prefixed; its origin is the one browser form posts must come from.
    pub public_url: Option<String>,
    /// Requests per minute of an organization without its own limit (SPEC §6).
    pub default_rate_limit_per_minute: u32,
    /// Failed authentications a client address may make per minute before it gets 429.
    pub auth_failure_limit_per_minute: u32,
    /// Anonymous OAuth requests (authorization requests and client registrations)
    /// a client address may make per minute before it gets 429.
    pub oauth_limit_per_minute: u32,
    /// Largest JSON request body, in bytes (feed uploads have their own cap).
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Longest a request may take before it is answered 503 (uploads and imports are exempt).
    pub request_timeout_secs: u64,
    /// Requests handled at once; more are refused with 503 rather than queued without bound.
    pub max_concurrent_requests: usize,
    /// Open client connections; beyond it new connections are closed unread.
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed (HTTP/1
    /// connections also close after 30 s without a new request head).
    pub idle_timeout_secs: u64,
    /// Where `/metrics` is served (its own listener; off when unset). Internal networks only.
    pub metrics_listen: Option<SocketAddr>,
    /// On shutdown, how long in-flight requests get to finish.
    pub shutdown_grace_secs: u64,
    /// The API version new organizations are pinned to (see docs/VERSIONS.md).
    pub default_api_version: String,
    /// Test and development hooks, never for production: a controllable clock
    /// for OAuth token expiry (`POST /_test/clock`, operator token).
    pub insecure_test_hooks: bool,
    /// Non-public `host:port` targets that fetches (feeds, scheduled sources,
    /// client metadata documents) may reach, e.g. an intranet feed server.
    /// Empty (the default): only public addresses are fetched.
    #[serde(deserialize_with = "allow_private")]
    pub fetch_allow_private: AllowPrivate,
}

/// `fetch_allow_private`: a TOML array of `host:port` strings, or (from the
/// environment) one comma-separated string.
fn allow_private<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AllowPrivate, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let text = match Raw::deserialize(deserializer)? {
        Raw::List(items) => items.join(","),
        Raw::Text(text) => text,
    };
    text.parse().map_err(|error: String| serde::de::Error::custom(format!("fetch_allow_private: {error}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("octogen-data"),
            database_url: None,
            key_pepper: None,
            admin_token: None,
            log_level: "info".into(),
            log_format: LogFormat::Json,
            trusted_proxies: TrustedProxies::default(),
            public_url: None,
            default_rate_limit_per_minute: 600,
            auth_failure_limit_per_minute: 60,
            oauth_limit_per_minute: 30,
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024 + 16 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 1024,
            max_connections: 10_000,
            // Longer than the 60 s idle timeout of common load balancers, so
            // they close an idle HTTP/2 connection first and never send on one
            // we are closing.
            idle_timeout_secs: 75,
            metrics_listen: None,
            shutdown_grace_secs: 30,
            default_api_version: "2026-05-28".into(),
            insecure_test_hooks: false,
            fetch_allow_private: AllowPrivate::default(),
        }
    }
}

/// Environment variables that belong to the command-line client, not the server.
/// Variables named `OCTOGEN_*` that are not server settings: the CLI's own,
/// the public SDK's key variable, and the test suites'. (`OCTOGEN_CONFIG`
/// names the settings file rather than being a setting.)
const CLIENT_ENV: &[&str] = &["OCTOGEN_SERVER", "OCTOGEN_CONFIG", "OCTOGEN_PLATFORM_API_KEY", "OCTOGEN_BIN"];
const TEST_ENV_PREFIX: &str = "OCTOGEN_TEST_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Builds the configuration from its layers. `overrides` are flag values
/// (key → TOML-compatible value), applied last.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: BTreeMap<String, toml::Value>,
) -> Result<Config, ConfigError> {
    let mut table = toml::Table::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let from_file: toml::Table = toml::from_str(&text)
            .map_err(|error| ConfigError::File { path: path.into(), message: error.message().to_string() })?;
        check_keys(from_file.keys(), |key| format!("config file {}: unknown setting `{key}`", path.display()))?;
        table.extend(from_file);
    }
    for (name, value) in env {
        let Some(key) = name.strip_prefix("OCTOGEN_") else { continue };
        if CLIENT_ENV.contains(&name.as_str()) || name.starts_with(TEST_ENV_PREFIX) {
            continue;
        }
        let key = key.to_ascii_lowercase();
        check_keys([&key], |_| format!("environment variable {name} is not an octogen setting"))?;
        table.insert(key, env_value(&value));
    }
    table.extend(overrides);
    // The path names the setting a bad value belongs to (`metrics_listen: invalid socket address syntax`).
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let message = error.inner().message();
        ConfigError::Invalid(match error.path().to_string().as_str() {
            "." => format!("invalid configuration: {message}"),
            setting => format!("invalid configuration: {setting}: {message}"),
        })
    })?;
    config.validate()?;
    Ok(config)
}

impl Config {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid(
                    "database_url must be a postgres:// URL (SQLite is the default and needs no URL)".into(),
                ));
            }
        }
        if let Some(url) = &self.public_url {
            public_origin(url).map_err(ConfigError::Invalid)?;
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(ConfigError::Invalid(format!("log_level {:?} is not a valid log filter", self.log_level)));
        }
        let in_range = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} must be between {min} and {max} (got {value})")))
            }
        };
        in_range("default_rate_limit_per_minute", self.default_rate_limit_per_minute.into(), 1, 10_000_000)?;
        in_range("auth_failure_limit_per_minute", self.auth_failure_limit_per_minute.into(), 1, 10_000_000)?;
        in_range("oauth_limit_per_minute", self.oauth_limit_per_minute.into(), 1, 10_000_000)?;
        in_range("max_body_bytes", self.max_body_bytes as u64, 1024, 1 << 30)?;
        // A 64 KB Authorization header must still reach authentication (and get its 401).
        in_range("max_header_bytes", self.max_header_bytes as u64, 8 * 1024, 1 << 24)?;
        in_range("request_timeout_secs", self.request_timeout_secs, 1, 3600)?;
        in_range("max_concurrent_requests", self.max_concurrent_requests as u64, 1, 1_000_000)?;
        in_range("max_connections", self.max_connections as u64, 1, 1_000_000)?;
        in_range("idle_timeout_secs", self.idle_timeout_secs, 1, 3600)?;
        if self.metrics_listen.is_some_and(|metrics| metrics == self.listen && metrics.port() != 0) {
            return Err(ConfigError::Invalid(
                "metrics_listen must differ from listen: metrics are never served on the public listener".into(),
            ));
        }
        in_range("shutdown_grace_secs", self.shutdown_grace_secs, 0, 3600)?;
        if crate::versions::ApiVersion::named(&self.default_api_version).is_none() {
            return Err(ConfigError::Invalid(format!(
                "default_api_version {:?} is not a known API version ({})",
                self.default_api_version,
                crate::versions::ApiVersion::known_names().join(", ")
            )));
        }
        Ok(())
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("octogen.db")
    }

    /// Whether people reach the server over https (decided by `public_url`).
    pub fn serves_https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|url| url.starts_with("https://"))
    }

    /// `scheme://host[:port]` of `public_url`, when set.
    pub fn public_origin(&self) -> Option<String> {
        self.public_url.as_deref().and_then(|url| public_origin(url).ok())
    }
}

fn public_origin(url: &str) -> Result<String, String> {
    let invalid = || format!("public_url {url:?} must be an absolute http(s) URL such as https://octogen.example.com");
    let parsed = url::Url::parse(url).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid());
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Every setting name, for naming the offender when a file or environment
/// variable uses an unknown one. A test keeps this in step with `Config`.
const SETTINGS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "key_pepper",
    "admin_token",
    "log_level",
    "log_format",
    "trusted_proxies",
    "public_url",
    "default_rate_limit_per_minute",
    "auth_failure_limit_per_minute",
    "oauth_limit_per_minute",
    "max_body_bytes",
    "max_header_bytes",
    "request_timeout_secs",
    "max_concurrent_requests",
    "max_connections",
    "idle_timeout_secs",
    "metrics_listen",
    "shutdown_grace_secs",
    "default_api_version",
    "insecure_test_hooks",
    "fetch_allow_private",
];

fn check_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    message: impl Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for key in keys {
        if !SETTINGS.contains(&key.as_str()) {
            return Err(ConfigError::Invalid(format!("{} (known settings: {})", message(key), SETTINGS.join(", "))));
        }
    }
    Ok(())
}

/// Environment values are TOML scalars when they parse as one (`8080`, `true`), else strings.
fn env_value(raw: &str) -> toml::Value {
    let parsed: Result<toml::Table, _> = toml::from_str(&format!("v = {raw}"));
    match parsed.ok().and_then(|mut table| table.remove("v")) {
        Some(value @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => value,
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn settings_list_matches_the_struct() {
        for name in SETTINGS {
            let mut table = toml::Table::new();
            table.insert(name.to_string(), toml::Value::Integer(1));
            let error = toml::Value::Table(table).try_into::<Config>().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!error.contains("unknown field"), "{name}: {error}");
        }
        let mut table = toml::Table::new();
        table.insert("not_a_setting".into(), toml::Value::Integer(1));
        let error = toml::Value::Table(table).try_into::<Config>().unwrap_err().to_string();
        // serde lists every field it knows in the message: each must be in SETTINGS.
        let expected = error.split("expected one of").nth(1).expect("serde names the known fields");
        let fields: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        assert_eq!(fields.len(), SETTINGS.len(), "{error}");
        assert!(fields.iter().all(|field| SETTINGS.contains(field)), "{error}");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("octogen-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("octogen.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n").unwrap();
        let mut flags = BTreeMap::new();
        flags.insert("log_level".to_string(), toml::Value::String("warn".into()));
        let config = load(
            Some(&file),
            env(&[
                ("OCTOGEN_LISTEN", "127.0.0.1:9100"),
                ("OCTOGEN_SERVER", "x"),
                ("OCTOGEN_PLATFORM_API_KEY", "x"),
                ("OCTOGEN_TEST_DATABASE_URL", "x"),
            ]),
            flags,
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap(), "env beats file");
        assert_eq!(config.log_level, "warn", "flags beat env and file");
        assert_eq!(config.data_dir, PathBuf::from("octogen-data"), "defaults fill the rest");
    }

    #[test]
    fn out_of_range_settings_are_named() {
        for (name, value) in [
            ("OCTOGEN_DEFAULT_RATE_LIMIT_PER_MINUTE", "0"),
            ("OCTOGEN_OAUTH_LIMIT_PER_MINUTE", "0"),
            ("OCTOGEN_MAX_BODY_BYTES", "10"),
            ("OCTOGEN_MAX_HEADER_BYTES", "100"),
            ("OCTOGEN_REQUEST_TIMEOUT_SECS", "0"),
            ("OCTOGEN_MAX_CONCURRENT_REQUESTS", "0"),
            ("OCTOGEN_MAX_CONNECTIONS", "0"),
            ("OCTOGEN_IDLE_TIMEOUT_SECS", "0"),
        ] {
            let error = load(None, env(&[(name, value)]), BTreeMap::new()).unwrap_err().to_string();
            let setting = name.trim_start_matches("OCTOGEN_").to_lowercase();
            assert!(error.contains(&setting), "{name}: {error}");
        }
        let error = load(None, env(&[("OCTOGEN_MAX_BODY_BYTES", "lots")]), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("invalid configuration"), "{error}");
    }

    #[test]
    fn unknown_and_invalid_settings_are_named() {
        let error = load(None, env(&[("OCTOGEN_LISTN", "x")]), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("OCTOGEN_LISTN"), "{error}");
        let error = load(None, env(&[("OCTOGEN_LISTEN", "nowhere")]), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("invalid configuration"), "{error}");
        let error = load(None, env(&[("OCTOGEN_DATABASE_URL", "mysql://x")]), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("database_url"), "{error}");
        let dir = std::env::temp_dir().join(format!("octogen-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let error = load(Some(&file), Vec::new(), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("listen_port") && error.contains("bad.toml"), "{error}");
        let error = load(None, env(&[("OCTOGEN_PUBLIC_URL", "ftp://x")]), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("public_url"), "{error}");
        let error = load(None, env(&[("OCTOGEN_TRUSTED_PROXIES", "10.0.0.0/99")]), BTreeMap::new()).unwrap_err();
        assert!(error.to_string().contains("trusted_proxies"), "{error}");
        let error = load(None, env(&[("OCTOGEN_METRICS_LISTEN", "metrics")]), BTreeMap::new()).unwrap_err();
        assert!(error.to_string().starts_with("invalid configuration: metrics_listen: "), "{error}");
        let same = [("OCTOGEN_LISTEN", "127.0.0.1:9000"), ("OCTOGEN_METRICS_LISTEN", "127.0.0.1:9000")];
        let error = load(None, env(&same), BTreeMap::new()).unwrap_err().to_string();
        assert!(error.contains("metrics_listen"), "{error}");
        let config = load(None, env(&[("OCTOGEN_METRICS_LISTEN", "127.0.0.1:9090")]), BTreeMap::new()).unwrap();
        assert_eq!(config.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
    }

    #[test]
    fn fetch_allow_private_lists_host_port_targets() {
        let url = |text: &str| url::Url::parse(text).unwrap();
        let config =
            load(None, env(&[("OCTOGEN_FETCH_ALLOW_PRIVATE", "feeds.intranet:8080, 10.0.0.5:443")]), BTreeMap::new())
                .unwrap();
        assert!(config.fetch_allow_private.allows(&url("http://feeds.intranet:8080/feed.xml")));
        assert!(config.fetch_allow_private.allows(&url("https://10.0.0.5/feed")));
        assert!(!config.fetch_allow_private.allows(&url("http://feeds.intranet/feed.xml")));
        assert!(Config::default().fetch_allow_private.is_empty(), "nothing private by default");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("octogen.toml");
        std::fs::write(&file, "fetch_allow_private = [\"127.0.0.1:9000\", \"[::1]:9001\"]\n").unwrap();
        let config = load(Some(&file), Vec::new(), BTreeMap::new()).unwrap();
        assert!(config.fetch_allow_private.allows(&url("http://[::1]:9001/")));

        for bad in ["feeds.intranet", "127.0.0.1:http", "http://x:1/"] {
            let error = load(None, env(&[("OCTOGEN_FETCH_ALLOW_PRIVATE", bad)]), BTreeMap::new()).unwrap_err();
            assert!(
                error.to_string().contains("fetch_allow_private") && error.to_string().contains("host:port"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn portal_settings_come_from_the_environment() {
        let config = load(
            None,
            env(&[
                ("OCTOGEN_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8"),
                ("OCTOGEN_PUBLIC_URL", "https://Octo.example/"),
            ]),
            BTreeMap::new(),
        )
        .unwrap();
        assert!(config.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert!(config.serves_https());
        assert_eq!(config.public_origin().as_deref(), Some("https://octo.example"));
        assert!(!Config::default().serves_https());
    }
}
