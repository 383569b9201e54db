//! `k8rs-client`: the client-side machinery every k8rs component shares.
//!
//! Controllers, the scheduler, the kubelet, the proxy and DNS are ordinary API clients
//! (as upstream's are). They all need the same few mechanisms, which live here once:
//! - [`kubeconfig`]: a `kube::Client` from a kubeconfig file;
//! - [`informer`]: one watch + cache per resource type, shared by every consumer in the
//!   process, with change handlers (client-go's shared informers);
//! - [`workqueue`]: a de-duplicating work queue with per-item exponential retry
//!   (client-go's rate-limited queue);
//! - [`events`]: an event recorder writing core/v1 Events with upstream's aggregation;
//! - [`leaderelection`]: Lease-based leader election (client-go's `leaderelection`).

pub mod events;
pub mod informer;
pub mod kubeconfig;
pub mod leaderelection;
pub mod workqueue;

pub use events::{EventRecorder, EventType};
pub use informer::{Change, Informer, Informers, ObjectKey};
pub use kubeconfig::{client_from_kubeconfig, root_ca_from_kubeconfig};
pub use workqueue::WorkQueue;
