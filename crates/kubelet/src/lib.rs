//! `k8rs-kubelet`: the node agent. Pod workers bring each pod bound to the node to its
//! spec through a [`runtime::Runtime`] — containerd over CRI on real nodes, an in-memory
//! simulation on hollow nodes — and report node and pod status to the API server.

pub mod runtime;
pub mod server;
pub mod streaming;
