//! `k8rs-controllers`: the controller manager.
//!
//! Each controller lives in its own module, like upstream's `pkg/controller/<name>/`:
//! it registers handlers on the shared informers that turn changes into work-queue keys,
//! and implements [`Controller::sync`] for one key. The loop machinery (queue, workers,
//! retries with back-off) is [`controller::run_workers`], shared by all.

pub mod controller;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod tainteviction;

pub use controller::{Context, Controller};

use k8rs_client::Informers;

/// Runs every controller until the process ends.
pub async fn run(client: kube::Client) -> anyhow::Result<()> {
    let ctx = Context {
        informers: Informers::new(client.clone()),
        client,
    };
    // Each controller module adds one line here: `let _<name> = <module>::start(&ctx);`
    let _nodeipam = nodeipam::start(&ctx);
    let _nodelifecycle = nodelifecycle::start(&ctx, nodelifecycle::Config::from_env());
    let _tainteviction = tainteviction::start(&ctx);
    std::future::pending::<()>().await;
    Ok(())
}
