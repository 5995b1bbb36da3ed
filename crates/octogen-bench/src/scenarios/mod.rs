//! One module per benchmark; each has options, a `run` returning a
//! serializable report, and a `render` for people. Later benchmarks (search,
//! the mixed load test, PostgreSQL vs SQLite) go here the same way.

pub mod auth;
pub mod catalog;
pub mod fts5_baseline;
pub mod import;
pub mod loadtest;
pub mod search;
pub mod search_mix;
