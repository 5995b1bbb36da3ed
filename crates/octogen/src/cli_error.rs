//! Failures of a command: a one-line reason for people and an exit code by class.

use std::fmt;
use std::process::ExitCode;

/// Exit codes, by class of failure (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// Anything else.
    Failure = 1,
    /// The server could not be reached.
    Unreachable = 3,
    /// 401/403: missing, invalid or insufficient credentials.
    Auth = 4,
    /// 404.
    NotFound = 5,
    /// 400/409/413/422: the request needs to change.
    Invalid = 6,
    /// 429.
    RateLimited = 7,
    /// 5xx.
    Server = 8,
}

#[derive(Debug)]
pub struct CliError {
    pub class: ExitClass,
    pub message: String,
}

impl CliError {
    pub fn new(class: ExitClass, message: impl Into<String>) -> Self {
        CliError { class, message: message.into() }
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(ExitClass::Failure, message)
    }

    /// Classifies an HTTP error status.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let class = match status {
            401 | 403 => ExitClass::Auth,
            404 => ExitClass::NotFound,
            400 | 405 | 409 | 413 | 422 => ExitClass::Invalid,
            429 => ExitClass::RateLimited,
            500..=599 => ExitClass::Server,
            _ => ExitClass::Failure,
        };
        Self::new(class, message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.class as u8)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::failure(format!("{error:#}"))
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
