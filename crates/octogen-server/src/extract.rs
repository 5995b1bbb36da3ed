//! Request extractors whose failures come back in the contract's 422 shape
//! (SPEC §3) instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use octogen_core::error::{LocPart, ValidationIssue};
use octogen_core::loc;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON request body deserialized into `T`; `T` should use
/// `#[serde(deny_unknown_fields)]` so unknown fields are refused.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let value = json_value(request, state).await?;
        let mut track = serde_path_to_error::Track::new();
        let deserializer = serde_path_to_error::Deserializer::new(&value, &mut track);
        T::deserialize(deserializer).map(JsonBody).map_err(|error| {
            let path = track.path();
            ApiError::validation(issue_from_serde(&path, &error.to_string(), &value))
        })
    }
}

/// Reads a body that must be a JSON document (of any shape).
pub async fn json_value<S: Send + Sync>(request: Request, state: &S) -> Result<Value, ApiError> {
    if !is_json_content_type(request.headers().get(CONTENT_TYPE)) {
        return Err(ApiError::validation(
            ValidationIssue::new(
                loc!["body"],
                "model_attributes_type",
                "Input should be a valid JSON object; send Content-Type: application/json",
            )
            .with_input(Value::Null),
        ));
    }
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::Code(octogen_core::ErrorCode::PayloadTooLarge)
        } else {
            ApiError::bad_request("could not read the request body")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|error| {
        ApiError::validation(
            ValidationIssue::new(
                loc!["body", error.column()],
                "json_invalid",
                format!("JSON decode error: {}", json_error_reason(&error)),
            )
            .with_ctx(serde_json::json!({ "error": json_error_reason(&error) })),
        )
    })
}

fn json_error_reason(error: &serde_json::Error) -> String {
    // serde_json appends " at line L column C"; the location is in `loc`.
    let text = error.to_string();
    text.split(" at line ").next().unwrap_or(&text).to_string()
}

fn is_json_content_type(value: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|value| value.to_str().ok()) else { return false };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Translates a serde error at `path` into the pydantic-style issue clients expect.
fn issue_from_serde(path: &serde_path_to_error::Path, message: &str, body: &Value) -> ValidationIssue {
    let mut loc: Vec<LocPart> = vec!["body".into()];
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => loc.push((*index).into()),
            serde_path_to_error::Segment::Map { key } => loc.push(key.clone().into()),
            serde_path_to_error::Segment::Enum { variant } => loc.push(variant.clone().into()),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        loc.push(field.to_string().into());
        let input = lookup(body, &loc[1..]).cloned().unwrap_or(Value::Null);
        return ValidationIssue::new(loc, "extra_forbidden", "Extra inputs are not permitted").with_input(input);
    }
    if let Some(field) = between(message, "missing field `", "`") {
        loc.push(field.to_string().into());
        let input = lookup(body, &loc[1..loc.len() - 1]).cloned().unwrap_or(Value::Null);
        return ValidationIssue::new(loc, "missing", "Field required").with_input(input);
    }
    let input = lookup(body, &loc[1..]).cloned().unwrap_or(Value::Null);
    let (kind, msg) = type_error(message);
    ValidationIssue::new(loc, kind, msg).with_input(input)
}

fn type_error(message: &str) -> (&'static str, String) {
    let expected = message.split("expected ").nth(1).unwrap_or("").to_string();
    let (kind, text) = if expected.starts_with("a string") || expected.contains("string") {
        ("string_type", "Input should be a valid string")
    } else if expected.starts_with("u") || expected.starts_with("i") || expected.contains("integer") {
        ("int_type", "Input should be a valid integer")
    } else if expected.starts_with("f") || expected.contains("float") {
        ("float_type", "Input should be a valid number")
    } else if expected.contains("bool") {
        ("bool_type", "Input should be a valid boolean")
    } else if expected.contains("sequence") {
        ("list_type", "Input should be a valid list")
    } else if expected.contains("map") || expected.contains("struct") {
        ("model_attributes_type", "Input should be a valid dictionary or object")
    } else if message.contains("unknown variant") {
        ("enum", "Input should be one of the allowed values")
    } else {
        ("value_error", "Input is not valid")
    };
    let detail = message.split(" at line ").next().unwrap_or(message);
    (kind, format!("{text} ({detail})"))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn lookup<'a>(value: &'a Value, path: &[LocPart]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, part| match part {
        LocPart::Field(name) => value.get(name),
        LocPart::Index(index) => value.get(index),
    })
}
