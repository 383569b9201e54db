//! The Kubernetes API server.
//!
//! A request flows: [`tls`] (client certificate) → [`authn`] → [`http`] (request info,
//! routing, content negotiation) → [`registry`] (generic store driven by each resource's
//! `k8rs_api::Strategy`) → `k8rs_store::Store`. Reads (LIST, WATCH) are served by the
//! [`watch_cache`], which follows the store's watch.

pub mod authn;
pub mod compactor;
pub mod config;
pub mod discovery;
pub mod http;
pub mod metered_store;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod satoken;
pub mod server;
pub mod status;
pub mod table;
pub mod tls;
pub mod watch_cache;

pub use config::ServerConfig;
pub use server::{run, run_notifying};
