//! One error type for every HTTP surface, turned into a response in exactly
//! one place. Bodies always have a top-level `detail` (SPEC §3).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use octogen_core::{ErrorCode, ValidationIssue};
use octogen_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// A code from the contract's table; its detail is fixed.
    Code(ErrorCode),
    /// 422 with an array of issues.
    Validation(Vec<ValidationIssue>),
    /// Operator-facing errors (admin API): a status and a sentence naming the problem.
    Message(StatusCode, String),
    /// Anything unexpected. Logged with its cause chain; clients see a generic 500.
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Message(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::Message(StatusCode::NOT_FOUND, message.into())
    }

    pub fn validation(issue: ValidationIssue) -> Self {
        ApiError::Validation(vec![issue])
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::Code(code)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(entity) => ApiError::Message(StatusCode::NOT_FOUND, format!("{entity} not found")),
            StoreError::Conflict(message) => ApiError::Message(StatusCode::CONFLICT, message),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match self {
            ApiError::Code(code) => code_response(code),
            ApiError::Validation(issues) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": issues }))).into_response()
            }
            ApiError::Message(status, message) => (status, Json(json!({ "detail": message }))).into_response(),
            ApiError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                code_response(ErrorCode::Internal)
            }
        };
        if response.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The response for a contract error code, with the headers the contract requires.
pub fn code_response(code: ErrorCode) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(json!({ "detail": code.detail() }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
