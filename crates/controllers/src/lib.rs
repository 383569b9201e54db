//! `k8rs-controllers`: the controller manager.
//!
//! Each controller lives in its own module, like upstream's `pkg/controller/<name>/`:
//! it registers handlers on the shared informers that turn changes into work-queue keys,
//! and implements [`Controller::sync`] for one key. The loop machinery (queue, workers,
//! retries with back-off) is [`controller::run_workers`], shared by all.

pub mod controller;
pub mod controller_utils;
pub mod deployment;
pub mod discovery;
pub mod endpoint;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod replicaset;
pub mod serviceaccount;
pub mod tainteviction;

pub use controller::{Context, Controller};

use k8rs_client::Informers;

/// Runs every controller until the process ends. `root_ca` is the cluster CA bundle
/// (PEM) published as `kube-root-ca.crt` in every namespace.
pub async fn run(client: kube::Client, root_ca: Option<String>) -> anyhow::Result<()> {
    let ctx = Context {
        informers: Informers::new(client.clone()),
        client,
        root_ca,
    };
    // Each controller module adds one line here: `let _<name> = <module>::start(&ctx);`
    let _replicaset = replicaset::start(&ctx);
    let _replication = replicaset::replication_controller::start(&ctx);
    let _deployment = deployment::start(&ctx);
    let _garbagecollector = garbagecollector::start(&ctx);
    let _namespace = namespace::start(&ctx);
    let _serviceaccount = serviceaccount::start(&ctx);
    let _root_ca_publisher = serviceaccount::root_ca_publisher::start(&ctx);
    let _endpoint = endpoint::start(&ctx);
    let _endpointslice = endpointslice::start(&ctx);
    let _endpointslicemirroring = endpointslicemirroring::start(&ctx);
    let _nodeipam = nodeipam::start(&ctx);
    let _nodelifecycle = nodelifecycle::start(&ctx, nodelifecycle::Config::from_env());
    let _tainteviction = tainteviction::start(&ctx);
    std::future::pending::<()>().await;
    Ok(())
}
