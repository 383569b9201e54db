//! Pods on the node: the per-pod worker, its decisions, probes and status.

pub mod actions;
pub mod config;
pub mod env;
pub mod expansion;
pub mod fieldpath;
pub mod generate;
pub mod mounts;
pub mod prober;
pub mod status;
pub mod worker;
