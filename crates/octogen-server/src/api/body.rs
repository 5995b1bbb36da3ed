//! Field-by-field validation of JSON request bodies, reporting every problem
//! at once in the pydantic-style shape of SPEC §3 (`loc`, `msg`, `type`,
//! `input`, `ctx`), which is what clients of the hosted API parse.

use octogen_core::error::{LocPart, ValidationIssue};
use serde_json::{json, Map, Value};

/// A JSON object being validated. Each accessor records an issue instead of failing,
/// so one response names every bad field.
pub struct ObjectBody<'a> {
    object: &'a Map<String, Value>,
    path: Vec<LocPart>,
    issues: Vec<ValidationIssue>,
}

impl<'a> ObjectBody<'a> {
    /// Checks that `value` is an object whose keys are all in `allowed`.
    pub fn new(value: &'a Value, path: Vec<LocPart>, allowed: &[&str]) -> Result<Self, Vec<ValidationIssue>> {
        let Some(object) = value.as_object() else {
            return Err(vec![ValidationIssue::new(
                path,
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )
            .with_input(value.clone())]);
        };
        let mut body = ObjectBody { object, path, issues: Vec::new() };
        for (key, field) in object {
            if !allowed.contains(&key.as_str()) {
                let issue = ValidationIssue::new(body.loc(key), "extra_forbidden", "Extra inputs are not permitted")
                    .with_input(field.clone());
                body.issues.push(issue);
            }
        }
        Ok(body)
    }

    pub fn loc(&self, field: &str) -> Vec<LocPart> {
        let mut loc = self.path.clone();
        loc.push(field.into());
        loc
    }

    pub fn issue(&mut self, issue: ValidationIssue) {
        self.issues.push(issue);
    }

    /// The raw value, or `None` when absent or null.
    pub fn present(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|value| !value.is_null())
    }

    pub fn required_string(&mut self, field: &str, min_length: usize) -> Option<String> {
        if self.present(field).is_none() {
            let input = Value::Object(self.object.clone());
            self.issues.push(ValidationIssue::new(self.loc(field), "missing", "Field required").with_input(input));
            return None;
        }
        self.optional_string(field, min_length)
    }

    pub fn optional_string(&mut self, field: &str, min_length: usize) -> Option<String> {
        let value = self.present(field)?;
        let loc = self.loc(field);
        string(value, loc, min_length, &mut self.issues)
    }

    /// A string of at most `max_length` characters (pydantic's `string_too_long` beyond).
    pub fn optional_string_at_most(&mut self, field: &str, max_length: usize) -> Option<String> {
        let text = self.optional_string(field, 0)?;
        if text.chars().count() <= max_length {
            return Some(text);
        }
        let loc = self.loc(field);
        self.issues.push(
            ValidationIssue::new(loc, "string_too_long", format!("String should have at most {max_length} characters"))
                .with_input(json!(text))
                .with_ctx(json!({"max_length": max_length})),
        );
        None
    }

    /// An integer in `min..=max` (a float with no fractional part is accepted, as pydantic does).
    pub fn optional_int(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.present(field)?;
        let loc = self.loc(field);
        let number = match value {
            Value::Number(number) => number,
            other => {
                self.issues.push(
                    ValidationIssue::new(loc, "int_type", "Input should be a valid integer").with_input(other.clone()),
                );
                return None;
            }
        };
        let integer = match (number.as_i64(), number.as_f64()) {
            (Some(integer), _) => integer,
            (None, Some(float)) if float.fract() == 0.0 && float.abs() < 9.0e15 => float as i64,
            (None, Some(_)) => {
                self.issues.push(
                    ValidationIssue::new(
                        loc,
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part",
                    )
                    .with_input(value.clone()),
                );
                return None;
            }
            (None, None) => {
                self.issues.push(
                    ValidationIssue::new(loc, "int_parsing", "Input should be a valid integer")
                        .with_input(value.clone()),
                );
                return None;
            }
        };
        if integer < min {
            self.issues.push(
                ValidationIssue::new(
                    loc,
                    "greater_than_equal",
                    format!("Input should be greater than or equal to {min}"),
                )
                .with_input(value.clone())
                .with_ctx(json!({"ge": min})),
            );
            return None;
        }
        if integer > max {
            self.issues.push(
                ValidationIssue::new(loc, "less_than_equal", format!("Input should be less than or equal to {max}"))
                    .with_input(value.clone())
                    .with_ctx(json!({"le": max})),
            );
            return None;
        }
        Some(integer)
    }

    /// A finite number.
    pub fn optional_number(&mut self, field: &str) -> Option<f64> {
        let value = self.present(field)?;
        let loc = self.loc(field);
        match value.as_f64() {
            Some(number) if value.is_number() && number.is_finite() => Some(number),
            _ => {
                self.issues.push(
                    ValidationIssue::new(loc, "float_type", "Input should be a valid number").with_input(value.clone()),
                );
                None
            }
        }
    }

    /// A list of non-empty strings with `min_items..=max_items` entries.
    pub fn optional_string_list(&mut self, field: &str, min_items: usize, max_items: usize) -> Option<Vec<String>> {
        let value = self.present(field)?;
        let loc = self.loc(field);
        string_list(value, loc, min_items, max_items, &mut self.issues)
    }

    pub fn optional_array(&mut self, field: &str) -> Option<&'a Vec<Value>> {
        let value = self.present(field)?;
        match value.as_array() {
            Some(items) => Some(items),
            None => {
                let loc = self.loc(field);
                self.issues.push(
                    ValidationIssue::new(loc, "list_type", "Input should be a valid list").with_input(value.clone()),
                );
                None
            }
        }
    }

    /// One of the allowed literal strings.
    pub fn optional_choice(&mut self, field: &str, choices: &[&str]) -> Option<String> {
        let text = self.optional_string(field, 0)?;
        if choices.contains(&text.as_str()) {
            return Some(text);
        }
        let expected = choices.iter().map(|choice| format!("'{choice}'")).collect::<Vec<_>>().join(", ");
        let loc = self.loc(field);
        self.issues.push(
            ValidationIssue::new(loc, "literal_error", format!("Input should be {expected}"))
                .with_input(json!(text))
                .with_ctx(json!({"expected": expected})),
        );
        None
    }

    pub fn take_issues(&mut self) -> Vec<ValidationIssue> {
        std::mem::take(&mut self.issues)
    }

    pub fn finish(self) -> Result<(), Vec<ValidationIssue>> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(self.issues)
        }
    }
}

pub fn string(
    value: &Value,
    loc: Vec<LocPart>,
    min_length: usize,
    issues: &mut Vec<ValidationIssue>,
) -> Option<String> {
    let Some(text) = value.as_str() else {
        issues
            .push(ValidationIssue::new(loc, "string_type", "Input should be a valid string").with_input(value.clone()));
        return None;
    };
    if text.chars().count() < min_length {
        let plural = if min_length == 1 { "character" } else { "characters" };
        issues.push(
            ValidationIssue::new(loc, "string_too_short", format!("String should have at least {min_length} {plural}"))
                .with_input(value.clone())
                .with_ctx(json!({"min_length": min_length})),
        );
        return None;
    }
    Some(text.to_string())
}

pub fn string_list(
    value: &Value,
    loc: Vec<LocPart>,
    min_items: usize,
    max_items: usize,
    issues: &mut Vec<ValidationIssue>,
) -> Option<Vec<String>> {
    let Some(items) = value.as_array() else {
        issues.push(ValidationIssue::new(loc, "list_type", "Input should be a valid list").with_input(value.clone()));
        return None;
    };
    if items.len() < min_items {
        let plural = if min_items == 1 { "item" } else { "items" };
        issues.push(
            ValidationIssue::new(
                loc,
                "too_short",
                format!("List should have at least {min_items} {plural} after validation, not {}", items.len()),
            )
            .with_input(value.clone())
            .with_ctx(json!({"field_type": "List", "min_length": min_items, "actual_length": items.len()})),
        );
        return None;
    }
    if items.len() > max_items {
        issues.push(
            ValidationIssue::new(
                loc,
                "too_long",
                format!("List should have at most {max_items} items after validation, not {}", items.len()),
            )
            .with_input(value.clone())
            .with_ctx(json!({"field_type": "List", "max_length": max_items, "actual_length": items.len()})),
        );
        return None;
    }
    let before = issues.len();
    let strings: Vec<String> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let mut item_loc = loc.clone();
            item_loc.push(index.into());
            string(item, item_loc, 1, issues)
        })
        .collect();
    (issues.len() == before).then_some(strings)
}
