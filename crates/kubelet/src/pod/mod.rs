//! Pods on the node: the per-pod worker, its decisions, probes and status.

pub mod actions;
pub mod config;
pub mod env;
pub mod expansion;
pub mod fieldpath;
pub mod generate;
pub mod images;
pub mod mounts;
pub mod pleg;
pub mod prober;
pub mod resources;
pub mod status;
pub mod worker;
