//! `k8rs-kubelet`: the node agent. Pod workers bring each pod bound to the node to its
//! spec through a [`runtime::Runtime`] — containerd over CRI on real nodes, an in-memory
//! simulation on hollow nodes — and report node and pod status to the API server.

// The CRI client is generated for tonic 0.14, which the workspace names `tonic14` (the etcd
// client is still on 0.12); generated code refers to `tonic::`.
extern crate tonic14 as tonic;

pub mod containerd;
pub mod cri;
pub mod runtime;
