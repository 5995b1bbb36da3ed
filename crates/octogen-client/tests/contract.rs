//! Runs every shared contract case (`sdks/contract/*.json`) against a real
//! server twice: as the raw HTTP request the case shows, and through this
//! crate's client (whose result, serialized back to JSON, must pass the same
//! checks). The Python and TypeScript suites run the same files.

mod common;

use common::contract::{check, check_error_body, load_cases, Case};
use common::{Keys, Server};
use futures_util::TryStreamExt;
use octogen_client::{ApiErrorKind, Client, Error};
use serde_json::{json, Value};

fn key_for(keys: &Keys, name: &str) -> Option<String> {
    match name {
        "partner" => Some(keys.partner.clone()),
        "empty" => Some(keys.empty.clone()),
        "merchant" => Some(keys.merchant.clone()),
        "wrong_secret" => Some(keys.wrong_secret()),
        "none" => None,
        other => panic!("unknown key {other}"),
    }
}

async fn raw(server: &Server, key: Option<&str>, case: &Case) -> Result<(), String> {
    let http = reqwest::Client::new();
    let method: reqwest::Method = case.request.method.parse().unwrap();
    let mut request = http.request(method, format!("{}{}", server.base, case.request.path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = &case.request.body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|error| format!("not JSON: {error}"))?;
    if status != case.expect.status {
        return Err(format!("raw: status {status}, expected {}: {body}", case.expect.status));
    }
    if case.expect.error.is_some() || status >= 400 {
        return check_error_body(&case.expect, &body).map_err(|error| format!("raw: {error}"));
    }
    if !case.call.all {
        for rule in &case.expect.checks {
            check(&body, rule).map_err(|error| format!("raw: {error}"))?;
        }
    }
    Ok(())
}

async fn through_client(client: Result<Client, Error>, case: &Case) -> Result<Value, Error> {
    let client = client?;
    let args = &case.call.args;
    let text = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_string);
    match case.call.op.as_str() {
        "listCatalogs" => Ok(serde_json::to_value(client.list_catalogs().await?).unwrap()),
        "lookupProduct" => Ok(serde_json::to_value(client.lookup_product(&text("url").unwrap()).await?).unwrap()),
        "searchProducts" => {
            let mut search = client.search_products();
            if let Some(q) = text("q") {
                search = search.q(q);
            }
            if let Some(catalog) = text("catalog") {
                search = search.catalog(catalog);
            }
            if let Some(catalogs) = args.get("catalogs").and_then(Value::as_array) {
                search = search.catalogs(catalogs.iter().map(|c| c.as_str().unwrap().to_string()));
            }
            for facet in args.get("facets").and_then(Value::as_array).into_iter().flatten() {
                let values = facet["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string());
                search = search.facet(facet["name"].as_str().unwrap(), values);
            }
            if let Some(min) = args.get("price_min").and_then(Value::as_f64) {
                search = search.price_min(min);
            }
            if let Some(max) = args.get("price_max").and_then(Value::as_f64) {
                search = search.price_max(max);
            }
            if let Some(limit) = args.get("limit").and_then(Value::as_u64) {
                search = search.limit(limit as u32);
            }
            if let Some(cursor) = text("cursor") {
                search = search.cursor(cursor);
            }
            if case.call.all {
                let pages: Vec<_> = search.into_pages().try_collect().await?;
                let items: Vec<_> = pages.iter().flat_map(|page| page.items.clone()).collect();
                Ok(json!({"items": items, "pages": pages.len()}))
            } else {
                Ok(serde_json::to_value(search.send().await?).unwrap())
            }
        }
        other => panic!("unknown op {other}"),
    }
}

fn error_class(error: &Error) -> String {
    match error {
        Error::MissingApiKey => "MissingApiKey".into(),
        Error::Connection { .. } => "Connection".into(),
        Error::Api(api) => match api.kind {
            ApiErrorKind::Authentication => "Authentication",
            ApiErrorKind::Forbidden => "Forbidden",
            ApiErrorKind::NotFound => "NotFound",
            ApiErrorKind::Validation => "Validation",
            ApiErrorKind::RateLimited => "RateLimited",
            ApiErrorKind::Server => "Server",
            _ => "Other",
        }
        .into(),
        other => format!("{other:?}"),
    }
}

async fn sdk(server: &Server, key: Option<&str>, case: &Case) -> Result<(), String> {
    // "No key" is an empty key here: the process environment is shared by
    // every test and may hold OCTO_API_KEY. The CLI tests cover a truly unset one.
    let client = Client::builder().api_key(key.unwrap_or("")).base_url(&server.base).build();
    let outcome = through_client(client, case).await;
    match (&case.expect.error, outcome) {
        (None, Ok(value)) => {
            for rule in &case.expect.checks {
                check(&value, rule).map_err(|error| format!("client: {error}"))?;
            }
            Ok(())
        }
        (None, Err(error)) => Err(format!("client: unexpected error {error}")),
        (Some(class), Ok(value)) => Err(format!("client: expected {class}, got {value}")),
        (Some(class), Err(error)) => {
            if &error_class(&error) != class {
                return Err(format!("client: expected {class}, got {error:?}"));
            }
            if let Error::Api(api) = &error {
                if api.status != case.expect.status {
                    return Err(format!("client: status {} != {}", api.status, case.expect.status));
                }
                let body: Value = serde_json::from_str(&api.raw).map_err(|e| format!("client: raw body: {e}"))?;
                check_error_body(&case.expect, &body).map_err(|e| format!("client: {e}"))?;
            }
            Ok(())
        }
    }
}

#[tokio::test]
async fn every_contract_case_holds_raw_and_through_the_client() {
    let server = Server::start().await;
    let keys = server.contract_fixture().await;
    let cases = load_cases();
    assert!(cases.len() >= 20, "the contract has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let key = key_for(&keys, &case.key);
        if let Err(error) = raw(&server, key.as_deref(), case).await {
            failures.push(format!("{}: {error}", case.name));
        }
        if let Err(error) = sdk(&server, key.as_deref(), case).await {
            failures.push(format!("{}: {error}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn the_checks_catch_what_they_should() {
    let page = json!({"items": [{"uuid": "a", "price": 5}, {"uuid": "b", "price": 7}], "nextCursor": null});
    assert!(check(&page, &json!({"path": "items", "length": 2})).is_ok());
    assert!(check(&page, &json!({"path": "items", "length": 3})).is_err());
    assert!(check(&page, &json!({"path": "items.*.price", "gte": 5, "lte": 7})).is_ok());
    assert!(check(&page, &json!({"path": "items.*.price", "gte": 6})).is_err());
    assert!(check(&page, &json!({"path": "items.*.uuid", "distinct": true, "containsAll": ["b"]})).is_ok());
    assert!(check(&page, &json!({"path": "items.*.uuid", "containsAll": ["c"]})).is_err());
    assert!(check(&page, &json!({"path": "nextCursor", "type": "null"})).is_ok());
    assert!(check(&page, &json!({"path": "missing", "type": "null"})).is_err(), "absent is not null");
    assert!(check(&page, &json!({"path": "items.0", "hasKeys": ["uuid", "price"]})).is_ok());
    assert!(check(&page, &json!({"path": "items.0", "hasKeys": ["title"]})).is_err());
    assert!(check(&json!({"items": []}), &json!({"path": "items.*.uuid", "equals": "a"})).is_err(), "vacuous");
    assert!(check(&page, &json!({"path": "items.0.price", "bogus": 1})).is_err(), "unknown rules fail");
}
