//! The shared contract cases (`sdks/contract/*.json`, described in its README):
//! loading them and evaluating their checks against a JSON value.

#![allow(dead_code)]

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub name: String,
    /// `partner`, `empty`, `merchant`, `wrong_secret` or `none`.
    pub key: String,
    pub call: Call,
    pub request: RawRequest,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    /// `listCatalogs`, `searchProducts` or `lookupProduct`.
    pub op: String,
    #[serde(default)]
    pub args: serde_json::Map<String, Value>,
    /// Follow `nextCursor` to the last page; the result is `{items, pages}`.
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    pub status: u16,
    /// The SDK error class; absent for success.
    pub error: Option<String>,
    /// The string `detail` of an error body.
    pub detail: Option<String>,
    /// The `loc` of every entry of a 422 list, in order.
    pub detail_locs: Option<Vec<Vec<Value>>>,
    #[serde(default)]
    pub checks: Vec<Value>,
}

pub fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sdks/contract")
}

/// Every case of every file, in file-name order.
pub fn load_cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(contract_dir())
        .expect("sdks/contract exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let file: CaseFile =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            file.cases
        })
        .collect()
}

/// The values a path names: `a.0.b` is one value; `*` fans out over an array's
/// elements (or an object's values). `""` is the root. A missing step yields `None`.
pub fn resolve<'a>(root: &'a Value, path: &str) -> Vec<Option<&'a Value>> {
    let mut current = vec![Some(root)];
    if path.is_empty() {
        return current;
    }
    for step in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            match (value, step) {
                (Some(Value::Array(items)), "*") => next.extend(items.iter().map(Some)),
                (Some(Value::Object(map)), "*") => next.extend(map.values().map(Some)),
                (Some(Value::Array(items)), index) => next.push(index.parse::<usize>().ok().and_then(|i| items.get(i))),
                (Some(Value::Object(map)), key) => next.push(map.get(key)),
                _ => next.push(None),
            }
        }
        current = next;
    }
    current
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Evaluates one check; `Err` says what failed.
pub fn check(root: &Value, check: &Value) -> Result<(), String> {
    let path = check["path"].as_str().ok_or("a check needs a path")?;
    let values = resolve(root, path);
    if path.contains('*') && values.is_empty() {
        return Err(format!("{path}: matched nothing"));
    }
    let present: Vec<&Value> =
        values.iter().map(|value| value.ok_or(format!("{path}: missing"))).collect::<Result<_, _>>()?;
    let rules = check.as_object().ok_or("a check is an object")?;
    for (rule, expected) in rules {
        let fail = |actual: &dyn std::fmt::Display| Err(format!("{path}: {rule} {expected} failed on {actual}"));
        match rule.as_str() {
            "path" => {}
            "distinct" => {
                let texts: Vec<String> = present.iter().map(|value| value.to_string()).collect();
                let unique: std::collections::HashSet<&String> = texts.iter().collect();
                if unique.len() != texts.len() {
                    return fail(&format!("{} values, {} distinct", texts.len(), unique.len()));
                }
            }
            "containsAll" => {
                let wanted = expected.as_array().ok_or("containsAll takes a list")?;
                // Over the resolved values, or over the one array the path names.
                let pool: Vec<&Value> = match present.as_slice() {
                    [Value::Array(items)] if !path.contains('*') => items.iter().collect(),
                    _ => present.clone(),
                };
                if let Some(missing) = wanted.iter().find(|want| !pool.iter().any(|have| json_equal(have, want))) {
                    return fail(&format!("values without {missing}"));
                }
            }
            _ => {
                for value in &present {
                    let ok = match rule.as_str() {
                        "equals" => json_equal(value, expected),
                        "type" => type_name(value) == expected.as_str().unwrap_or_default(),
                        "gte" => value.as_f64().zip(expected.as_f64()).is_some_and(|(v, e)| v >= e),
                        "lte" => value.as_f64().zip(expected.as_f64()).is_some_and(|(v, e)| v <= e),
                        "length" => length(value) == expected.as_u64().map(|n| n as usize),
                        "minLength" => length(value).zip(expected.as_u64()).is_some_and(|(n, min)| n as u64 >= min),
                        "hasKeys" => {
                            let keys = expected.as_array().ok_or("hasKeys takes a list")?;
                            value.as_object().is_some_and(|map| {
                                keys.iter().all(|key| key.as_str().is_some_and(|key| map.contains_key(key)))
                            })
                        }
                        other => return Err(format!("{path}: unknown rule {other}")),
                    };
                    if !ok {
                        return fail(&short(value));
                    }
                }
            }
        }
    }
    Ok(())
}

fn length(value: &Value) -> Option<usize> {
    match value {
        Value::Array(items) => Some(items.len()),
        Value::String(text) => Some(text.chars().count()),
        Value::Object(map) => Some(map.len()),
        _ => None,
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// Checks an error body against `detail` / `detailLocs`.
pub fn check_error_body(expect: &Expect, body: &Value) -> Result<(), String> {
    if let Some(detail) = &expect.detail {
        if body["detail"] != Value::String(detail.clone()) {
            return Err(format!("detail: expected {detail:?}, got {body}"));
        }
    }
    if let Some(locs) = &expect.detail_locs {
        let actual: Vec<Value> = body["detail"]
            .as_array()
            .ok_or(format!("detail is not a list: {body}"))?
            .iter()
            .map(|i| i["loc"].clone())
            .collect();
        let wanted: Vec<Value> = locs.iter().map(|loc| Value::Array(loc.clone())).collect();
        if actual != wanted {
            return Err(format!("detail locs: expected {wanted:?}, got {actual:?}"));
        }
    }
    Ok(())
}
