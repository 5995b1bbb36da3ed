use std::fmt;

/// What a store operation can fail with. `NotFound` and `Conflict` carry a
/// message meant for people ("organization 1f2e… not found"); `Backend` wraps
/// the database error, which is logged but never shown to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(Entity),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    /// The products a run staged could not be read back for its publish.
    #[error("the run's staged products could not be read: {0}")]
    Staging(String),
}

/// The kinds of things a `NotFound` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Organization(String),
    Catalog(String),
    ApiKey(String),
    IndexRun(String),
    Grant { org: String, catalog: String },
    User(String),
    Membership { user: String, org: String },
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Organization(id) => write!(f, "organization {id}"),
            Entity::Catalog(key) => write!(f, "catalog {key}"),
            Entity::ApiKey(id) => write!(f, "API key {id}"),
            Entity::IndexRun(id) => write!(f, "index run {id}"),
            Entity::Grant { org, catalog } => write!(f, "grant of catalog {catalog} to organization {org}"),
            Entity::User(id) => write!(f, "user {id}"),
            Entity::Membership { user, org } => write!(f, "membership of user {user} in organization {org}"),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
