//! `octogen-bench`: a loopback HTTP load generator and the project's
//! benchmarks (results in BENCHMARKS.md at the repository root).
//!
//! The pieces, for writing a new benchmark:
//! - [`server::BenchServer`] boots the server under test (a child process by
//!   default, or in-process) on 127.0.0.1:0 with a temporary data directory,
//!   or wraps an external one; [`admin::Admin`] makes fixtures through the
//!   operator API (e.g. [`admin::Admin::partner_fixture`]).
//! - [`mix::RequestMix`] is a weighted list of [`mix::RequestTemplate`]s.
//! - [`load::run_load`] drives N keep-alive connections for a duration or a
//!   request count after a warm-up and returns a [`report::LoadReport`]:
//!   requests/s, HDR latency percentiles, status counts, CPU of both sides,
//!   per label and optionally per interval.
//! - [`micro::time_calls`] times a server function called directly.
//! - [`access_log`] reads the server-side latency back from a child server's log.
//! - [`machine::Machine`] describes where and when it ran.

pub mod access_log;
pub mod admin;
pub mod cpu;
pub mod load;
pub mod machine;
pub mod micro;
pub mod mix;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod stats;

pub use load::{run_load, LoadConfig, Stop};
pub use mix::{RequestMix, RequestTemplate};
pub use report::LoadReport;
pub use server::{BenchServer, ServerMode, ServerOptions};
