//! The clock OAuth expiry is judged by: the system clock, plus an offset that
//! only the test hook can move (`insecure_test_hooks = true`), so tests can let codes
//! and access tokens expire without sleeping through their lifetimes.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use octogen_core::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::auth::bearer_token;
use crate::state::AppState;

#[derive(Debug, Default)]
pub struct Clock {
    offset_millis: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        Timestamp::now().plus_millis(self.offset_millis.load(Ordering::Relaxed))
    }

    /// Moves this clock forward (never backward).
    pub fn advance(&self, millis: i64) {
        self.offset_millis.fetch_add(millis.max(0), Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    seconds: i64,
}

/// `POST /_test/clock {"seconds": N}` (operator token; only with `insecure_test_hooks`):
/// moves the OAuth clock N seconds forward. Without `insecure_test_hooks` the route does not exist (404).
pub async fn advance(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !state.config.insecure_test_hooks {
        return crate::error::code_response(octogen_core::ErrorCode::RouteNotFound);
    }
    if !bearer_token(&headers).is_some_and(|token| state.secrets.is_admin_token(token)) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"detail": "Operator token required"}))).into_response();
    }
    let Ok(Advance { seconds }) = serde_json::from_slice(&body) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"detail": "send {\"seconds\": N}"}))).into_response();
    };
    state.oauth.clock.advance(seconds.clamp(0, 366 * 24 * 3600) * 1000);
    Json(json!({"now": state.oauth.clock.now().to_rfc3339()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_only_moves_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(600_000);
        assert!(clock.now().millis() >= before.millis() + 600_000);
        clock.advance(-1_000_000);
        assert!(clock.now().millis() >= before.millis() + 600_000);
    }
}
