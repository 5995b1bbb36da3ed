use std::path::PathBuf;

/// Everything that can go wrong in the search index. The server maps
/// [`IndexError::InvalidQuery`] and [`IndexError::CursorMismatch`] to 422 and
/// everything else to 500; [`IndexError::Corrupt`] is also the signal to wipe
/// the directory and rebuild from the store (see `SearchIndex::open_or_recreate`).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The on-disk index cannot be used: unreadable, damaged, or written by an
    /// incompatible version of this crate. Safe to wipe and rebuild.
    #[error("search index is corrupt or incompatible: {0}")]
    Corrupt(String),
    /// Another process (or another `SearchIndex` in this one) holds the
    /// writer lock of this directory. Never wipe in this case.
    #[error("search index directory {0} is locked by another writer")]
    Locked(PathBuf),
    /// The directory holds files that are not a search index; it is left untouched.
    #[error("{0} is not empty and does not look like a search index; refusing to use or wipe it")]
    NotAnIndex(PathBuf),
    /// The query cannot be run as given (a bug or an unvalidated request).
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
    /// A sort position from a browse query was given to a text query or vice versa.
    #[error("the cursor was made by a different kind of query")]
    CursorMismatch,
    /// The search was cancelled (its request timed out or went away) before it finished.
    #[error("the search was cancelled")]
    Cancelled,
    /// A product record that cannot be indexed (never expected from the store).
    #[error("cannot index product {uuid}: {reason}")]
    InvalidRecord { uuid: String, reason: String },
    #[error("search index I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

impl IndexError {
    pub(crate) fn corrupt(context: &str, error: impl std::fmt::Display) -> IndexError {
        IndexError::Corrupt(format!("{context}: {error}"))
    }
}
