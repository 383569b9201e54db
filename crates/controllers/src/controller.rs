//! What every controller shares: the [`Controller`] trait and the worker loop.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use k8rs_client::{Informers, ObjectKey, WorkQueue};

/// What a controller gets to work with.
#[derive(Clone)]
pub struct Context {
    /// For writes.
    pub client: kube::Client,
    /// The shared caches for reads.
    pub informers: Arc<Informers>,
    /// The cluster CA bundle (PEM) that `kube-root-ca.crt` publishes in every namespace
    /// (upstream `--root-ca-file`); `None` leaves the publisher off.
    pub root_ca: Option<String>,
}

/// One controller: brings the object named by a key towards its desired state.
#[async_trait::async_trait]
pub trait Controller: Send + Sync + 'static {
    /// The name upstream gives it (`replicaset-controller`); used in logs and events.
    fn name(&self) -> &'static str;

    /// Reconciles one object. An error re-queues the key with back-off.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()>;
}

/// Runs `workers` loops taking keys from `queue` into `controller.sync`, retrying failed
/// keys with the queue's back-off (and giving up after 15 tries, as upstream's
/// controllers do, until the next change re-queues the key).
pub fn run_workers<C: Controller>(
    controller: Arc<C>,
    queue: WorkQueue<ObjectKey>,
    workers: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let loops = (0..workers.max(1)).map(|_| {
            let controller = controller.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                while let Some(key) = queue.get().await {
                    // A panicking sync must not take the worker (and the key, which would
                    // stay "processing" forever) with it: it counts as a failed sync.
                    let result = AssertUnwindSafe(controller.sync(&key))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("sync panicked")));
                    match result {
                        Ok(()) => queue.forget(&key),
                        Err(e) if queue.retries(&key) < MAX_RETRIES => {
                            tracing::debug!(controller = controller.name(), key = %key, error = %format!("{e:#}"), "sync failed; retrying");
                            queue.add_rate_limited(key.clone());
                        }
                        Err(e) => {
                            tracing::warn!(controller = controller.name(), key = %key, error = %format!("{e:#}"), "sync failed; dropping key");
                            queue.forget(&key);
                        }
                    }
                    queue.done(&key);
                }
            })
        });
        futures::future::join_all(loops).await;
    })
}

/// Retries before a key is dropped (upstream's `maxRetries`).
const MAX_RETRIES: u32 = 15;
