//! The integration suite: one test binary that boots the real server on an
//! ephemeral loopback port and speaks HTTP to it, and runs the real `octogen`
//! binary for CLI tests.

mod helpers;

mod auth;
mod catalogs;
mod cli;
mod client_cli;
mod hardening;
mod ingestion;
mod lookup;
mod mcp;
mod multinode;
mod oauth;
mod operability;
mod portal;
mod readme;
mod search;
mod secrets;
mod versions;
