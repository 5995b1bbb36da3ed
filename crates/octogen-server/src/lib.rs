//! The Octogen server. `app::Application` wires the store, secrets and
//! routers together; `api` is the partner API, `admin` the operator API,
//! `service` the one layer of business rules both use.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod error;
pub mod extract;
pub mod indexing;
pub mod mcp;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod portal;
pub mod ratelimit;
pub mod secrets;
pub mod server;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod usage;
pub mod versions;

pub use app::Application;
pub use config::Config;
