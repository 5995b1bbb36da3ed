//! Helpers for tests that read the real catalogs in `<workspace>/../shared/data`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `<workspace>/../shared/data/<name>`, or `None` (with a printed reason) when
/// the shared directory is absent. Under `CI=true` a missing file fails the test:
/// CI always has the data, so its absence there is a broken setup, not a skip.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ci = std::env::var("CI").is_ok_and(|value| value == "true");
    data_file(&workspace.join("../shared/data"), name, ci)
}

/// The decision behind `shared_data`, with the directory and CI flag given.
pub fn data_file(directory: &Path, name: &str, ci: bool) -> Option<PathBuf> {
    let path = directory.join(name);
    if path.is_file() {
        return Some(path);
    }
    assert!(!ci, "CI=true but the real data file {} is missing", path.display());
    eprintln!("skipping: real data file {} is absent", path.display());
    None
}

pub fn workspace_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}
