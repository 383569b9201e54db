//! `k8rs-scheduler`: assigns pods to nodes, shaped like upstream's kube-scheduler.
//!
//! - [`queue`]: active, backoff and unschedulable pods (`internal/queue`);
//! - [`cache`]: nodes with their pods, including *assumed* ones whose binding is still
//!   being written, and per-cycle snapshots (`internal/cache`);
//! - [`framework`]: extension points, statuses, cycle state, and the runtime that runs a
//!   profile's plugins (`framework/`);
//! - [`plugins`]: one module per plugin (`framework/plugins/<name>/`);
//! - [`scheduler`]: the loop — pop a pod, filter and score nodes on a snapshot, assume,
//!   bind in the background; failures go back to the queue with an event and the
//!   `PodScheduled=False` condition (`schedule_one.go`);
//! - [`config`]: `KubeSchedulerConfiguration` profiles.
//!
//! The scheduler is an ordinary API client: it sees the cluster through shared
//! informers and writes only bindings, pod status, events and (preemption) deletions.

pub mod cache;
pub mod config;
pub mod framework;
mod handlers;
pub mod plugins;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod selectors;

pub use config::Profile;
pub use scheduler::Scheduler;

/// Runs the scheduler with these profiles until the process ends.
pub async fn run(client: kube::Client, profiles: Vec<Profile>) -> anyhow::Result<()> {
    let scheduler = Scheduler::new(client, profiles)?;
    scheduler.run().await
}
