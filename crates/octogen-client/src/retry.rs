//! Which failures are retried and how long to wait: connection failures, 5xx
//! and 429 (SPEC §3), with exponential backoff and full jitter, `Retry-After`
//! honoured, and a bound on both the attempts and any single wait.

use std::time::Duration;

use crate::error::{ApiErrorKind, Error};

/// How failed attempts are retried. Every API call is read-only, so retrying
/// one can never apply an effect twice.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry). Default 3.
    pub max_attempts: u32,
    /// The backoff before the first retry; doubled each retry. Default 250 ms.
    pub initial_backoff: Duration,
    /// The longest backoff between attempts. Default 8 s.
    pub max_backoff: Duration,
    /// The longest `Retry-After` the client waits out. A 429 asking for longer
    /// is returned at once (as [`ApiErrorKind::RateLimited`], with its
    /// `retry_after`) rather than blocking the caller. Default 60 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The wait before attempt `attempt + 1` after `failure`, or `None` to give up.
    pub fn delay_before_retry(&self, attempt: u32, failure: &Error) -> Option<Duration> {
        if attempt >= self.max_attempts || !failure.is_retryable() {
            return None;
        }
        let server_asked = match failure {
            Error::Api(error) if matches!(error.kind, ApiErrorKind::RateLimited | ApiErrorKind::Server) => {
                error.retry_after
            }
            _ => None,
        };
        match server_asked {
            Some(wait) if wait > self.max_retry_after => None,
            // Retry-After is the earliest useful moment; a little jitter keeps
            // many clients of one organization from returning in lockstep.
            Some(wait) => Some(wait + jitter(self.initial_backoff.min(Duration::from_millis(250)))),
            None => Some(jitter(self.backoff(attempt))),
        }
    }

    /// The backoff ceiling after `attempt` failed attempts: initial × 2^(attempt−1), capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// A uniformly random duration in `[0, ceiling]` ("full jitter").
fn jitter(ceiling: Duration) -> Duration {
    let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = getrandom::u64().unwrap_or(nanos / 2);
    Duration::from_nanos(random % (nanos + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn api(status: u16, retry_after: Option<u64>) -> Error {
        Error::Api(ApiError::new(status, String::new(), None, retry_after.map(Duration::from_secs)))
    }

    fn connection() -> Error {
        Error::Connection { url: "http://127.0.0.1:9".into(), message: "refused".into(), source: None }
    }

    #[test]
    fn retries_only_what_may_succeed_later() {
        let policy = RetryPolicy::default();
        assert!(policy.delay_before_retry(1, &connection()).is_some());
        assert!(policy.delay_before_retry(1, &api(503, None)).is_some());
        assert!(policy.delay_before_retry(1, &api(429, Some(1))).is_some());
        for status in [400, 401, 403, 404, 422] {
            assert_eq!(policy.delay_before_retry(1, &api(status, None)), None, "{status}");
        }
        assert_eq!(policy.delay_before_retry(1, &Error::MissingApiKey), None);
        assert_eq!(policy.delay_before_retry(3, &connection()), None, "three attempts in all");
        assert_eq!(RetryPolicy::none().delay_before_retry(1, &connection()), None);
    }

    #[test]
    fn honours_retry_after_up_to_the_bound() {
        let policy = RetryPolicy::default();
        let wait = policy.delay_before_retry(1, &api(429, Some(2))).unwrap();
        assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_millis(2250), "{wait:?}");
        assert_eq!(policy.delay_before_retry(1, &api(429, Some(61))), None, "too long: returned to the caller");
        let wait = policy.delay_before_retry(1, &api(503, Some(1))).unwrap();
        assert!(wait >= Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(250));
        assert_eq!(policy.backoff(2), Duration::from_millis(500));
        assert_eq!(policy.backoff(3), Duration::from_secs(1));
        assert_eq!(policy.backoff(10), Duration::from_secs(8));
        assert_eq!(policy.backoff(100), Duration::from_secs(8));
        let waits: Vec<Duration> = (0..50).map(|_| policy.delay_before_retry(2, &connection()).unwrap()).collect();
        assert!(waits.iter().all(|wait| *wait <= Duration::from_millis(500)));
        assert!(waits.iter().any(|wait| *wait != waits[0]), "jittered");
    }
}
