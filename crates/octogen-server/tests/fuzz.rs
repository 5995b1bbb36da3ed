//! Fuzz campaigns (proptest) over everything that parses untrusted input:
//! API keys, product URL normalization, request bodies (JSON bytes, then the
//! search and lookup parsers of every API version). Each asserts no panic and
//! the parser's invariants: a parsed key spells itself, normalization is
//! idempotent, a refused body is a well-formed 422 (SPEC §3).
//!
//! cargo-fuzz needs a nightly toolchain; these run on stable, as ordinary
//! tests. By default each campaign runs one round of cases (seconds, for
//! local runs); with `OCTOGEN_FUZZ_SECS=N` each keeps drawing fresh rounds for
//! N seconds (CI runs them for a minute and more, see `.ci/run`).

use std::time::{Duration, Instant};

use axum::body::Body;
use octogen_core::api_key::{ApiKey, KeyId};
use octogen_core::url_norm::{is_tracking_param, normalize_product_url};
use octogen_core::ValidationIssue;
use octogen_server::error::ApiError;
use octogen_server::extract::json_value;
use octogen_server::versions::ApiVersion;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use secrecy::ExposeSecret;
use serde_json::Value;

/// Cases per round; a round is also the whole campaign without `OCTOGEN_FUZZ_SECS`.
const CASES_PER_ROUND: u32 = 256;

/// Runs `property` over `strategy` for one round, or for `OCTOGEN_FUZZ_SECS` seconds.
fn campaign<S: Strategy>(name: &str, strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let budget = std::env::var("OCTOGEN_FUZZ_SECS").ok().map(|secs| {
        let secs: u64 = secs.parse().unwrap_or_else(|_| panic!("OCTOGEN_FUZZ_SECS={secs:?} is not a number"));
        Instant::now() + Duration::from_secs(secs)
    });
    let mut cases = 0u64;
    loop {
        // A fresh random seed per round; failures are shrunk and printed, not persisted.
        let config = Config { cases: CASES_PER_ROUND, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        if let Err(failure) = runner.run(&strategy, &property) {
            panic!("fuzz campaign {name} failed after {cases} cases: {failure}");
        }
        cases += u64::from(CASES_PER_ROUND);
        if budget.is_none_or(|deadline| Instant::now() >= deadline) {
            break;
        }
    }
    eprintln!("fuzz campaign {name}: {cases} cases");
}

/// Key-shaped text: right or nearly right layouts, and anything at all.
fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "octo_live_[0-9a-f]{32}_[A-Za-z0-9_-]{43}",
        "(octo_live_|octo_test_|OCTO_LIVE_)?[0-9a-fA-F]{30,34}[_-]?[A-Za-z0-9_+/=-]{40,46}",
    ]
}

#[test]
fn api_key_parsing() {
    campaign("api keys", key_text(), |text| {
        if let Some(key) = ApiKey::parse(&text) {
            // One spelling per key: what parses is exactly what the key prints as.
            let spelled = key.reveal();
            prop_assert_eq!(spelled.expose_secret(), text.as_str());
            prop_assert_eq!(KeyId::parse(&key.id().to_string()), Some(key.id()));
        }
        Ok(())
    });
    campaign("minted api keys", Just(()), |()| {
        let minted = ApiKey::generate();
        let parsed = ApiKey::parse(minted.reveal().expose_secret()).ok_or(TestCaseError::fail("unparsable"))?;
        prop_assert_eq!(parsed.id(), minted.id());
        Ok(())
    });
}

/// URL-shaped text (schemes, hosts with `www.`, ports, encoded paths,
/// tracking and other parameters, fragments), and anything at all.
fn url_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        concat!(
            " ?(https?|HTTPS?|ftp|javascript)://(www\\.){0,3}[a-zA-Z0-9.-]{0,12}(\\.[a-z]{2,3})?(:[0-9]{1,5})?",
            "(/[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,8}){0,4}/{0,2}",
            "(\\?((utm_[a-z]{1,6}|gclid|fbclid|[a-zA-Z_]{1,6})=[a-zA-Z0-9%+ ]{0,6}&?){0,4})?(#[^ ]{0,8})? ?"
        ),
    ]
}

#[test]
fn product_url_normalization() {
    campaign("product urls", url_text(), |text| {
        let Ok(normalized) = normalize_product_url(&text) else { return Ok(()) };
        prop_assert!(normalized.starts_with("https://"), "{normalized}");
        prop_assert!(!normalized.contains('#'), "{normalized}");
        let parsed = url::Url::parse(&normalized).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert!(parsed.query_pairs().all(|(name, _)| !is_tracking_param(&name)), "{normalized}");
        prop_assert_eq!(normalize_product_url(&normalized), Ok(normalized.clone()), "not idempotent for {}", text);
        Ok(())
    });
}

/// Every field name a search or lookup body of any version knows, and others.
const FIELD_NAMES: &[&str] = &[
    "catalog",
    "catalogs",
    "q",
    "facets",
    "exclude_facets",
    "price_min",
    "price_max",
    "cursor",
    "limit",
    "text_search_query",
    "text",
    "query",
    "exclusion_facets",
    "name",
    "values",
    "understand",
    "relax",
    "diversity",
    "debug",
    "omit_generated_facets",
    "similar_to_brands",
    "fallback_category",
    "brand_quality_min",
    "brand_quality_max",
    "url",
    "format",
    "matchMode",
    "resolutionMode",
    "onDemandCachePolicy",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(FIELD_NAMES).prop_map(str::to_string), 1 => "[a-zA-Z_]{0,12}"]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-200i64..300).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |number| serde_json::Number::from_f64(number).map(Value::Number)),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![Just("color_family"), Just("brand_name"), Just("category_path.depth_0"), Just("Black")]
            .prop_map(Value::from),
        "(https?://)?[a-z.]{0,12}/[a-z/?=&]{0,12}".prop_map(Value::from),
        (990usize..1010).prop_map(|length| Value::from("é".repeat(length))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Mostly objects of known fields (what a client sends), sometimes anything.
fn body() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::collection::vec((field_name(), json()), 0..10)
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        1 => json(),
    ]
}

/// A refused body: at least one issue, each `{loc: ["body", …], msg, type}`.
fn check_issues(issues: &[ValidationIssue]) -> Result<(), TestCaseError> {
    prop_assert!(!issues.is_empty());
    for issue in issues {
        let shaped = serde_json::to_value(issue).map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&shaped["loc"][0], "body", "{}", shaped);
        prop_assert!(shaped["msg"].as_str().is_some_and(|msg| !msg.is_empty()), "{}", shaped);
        prop_assert!(shaped["type"].as_str().is_some_and(|kind| !kind.is_empty()), "{}", shaped);
    }
    Ok(())
}

#[test]
fn search_and_lookup_bodies() {
    let versions: Vec<ApiVersion> =
        ApiVersion::known_names().iter().map(|name| ApiVersion::named(name).expect("a known version")).collect();
    campaign("search and lookup bodies", body(), |body| {
        for version in &versions {
            match version.shape().parse_search(&body) {
                Ok(search) => {
                    prop_assert!((1..=100).contains(&search.limit));
                    prop_assert!(search.text.as_ref().is_none_or(|text| text.chars().count() <= 1000));
                    if let (Some(min), Some(max)) = (search.price_min, search.price_max) {
                        prop_assert!(min <= max);
                    }
                }
                Err(issues) => check_issues(&issues)?,
            }
            if let Err(issues) = version.shape().parse_lookup(&body) {
                check_issues(&issues)?;
            }
        }
        Ok(())
    });
}

/// Bytes that are almost JSON, and anything at all.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        body()
            .prop_flat_map(|value| {
                let text = value.to_string().into_bytes();
                let length = text.len();
                (Just(text), 0..=length, any::<u8>())
            })
            .prop_map(|(mut text, at, byte)| {
                // One byte replaced (or appended): mostly broken JSON, sometimes still valid.
                if at < text.len() {
                    text[at] = byte;
                } else {
                    text.push(byte);
                }
                text
            }),
    ]
}

#[test]
fn json_request_bodies() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    campaign("json bodies", body_bytes(), |bytes| {
        let request = axum::http::Request::builder()
            .header("content-type", "application/json")
            .body(Body::from(bytes.clone()))
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        match runtime.block_on(json_value(request, &())) {
            Ok(value) => prop_assert_eq!(Some(value), serde_json::from_slice::<Value>(&bytes).ok()),
            Err(ApiError::Validation(issues)) => {
                check_issues(&issues)?;
                prop_assert_eq!(issues[0].kind.as_str(), "json_invalid");
            }
            Err(other) => return Err(TestCaseError::fail(format!("not a 422: {other:?}"))),
        }
        Ok(())
    });
}
