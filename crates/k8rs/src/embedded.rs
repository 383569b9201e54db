//! Components `k8rs server` runs beside the API server unless `--disable`d. Each is an
//! ordinary API client that connects with the admin kubeconfig once the server answers,
//! exactly as it would from another process (`k8rs scheduler`, …).
//!
//! With `--leader-elect` (the default, as upstream) each component first wins its Lease
//! in `kube-system` (`kube-controller-manager`, `kube-scheduler`), so several servers
//! on one store, or a standalone `k8rs scheduler`, never act twice; losing the lease ends
//! the process as upstream's components do. On a clean stop the leases are handed back
//! so the next start (or a standby) takes over at once.

use std::path::PathBuf;
use std::time::Duration;

use k8rs_apiserver::config::Component;
use k8rs_apiserver::ServerConfig;
use k8rs_client::leaderelection::{self, LeaderElectionConfig};
use tokio::sync::{mpsc, watch};

/// How long a stopping server waits for its components to hand back their leases.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Tells embedded components to stop, and waits until they have.
pub struct Stop {
    signal: watch::Sender<bool>,
    watch: watch::Receiver<bool>,
    running: mpsc::Sender<()>,
    stopped: mpsc::Receiver<()>,
}

impl Default for Stop {
    fn default() -> Stop {
        let (signal, watch) = watch::channel(false);
        let (running, stopped) = mpsc::channel(1);
        Stop {
            signal,
            watch,
            running,
            stopped,
        }
    }
}

/// What a component task holds: the stop signal, and a guard whose drop says "stopped".
#[derive(Clone)]
pub struct StopHandle {
    watch: watch::Receiver<bool>,
    _running: mpsc::Sender<()>,
}

impl StopHandle {
    async fn stopped(mut self) {
        let _ = self.watch.wait_for(|stop| *stop).await;
    }
}

impl Stop {
    /// A handle for [`spawn`].
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            watch: self.watch.clone(),
            _running: self.running.clone(),
        }
    }

    /// Signals every component and waits (a few seconds at most) until they are done.
    pub async fn stop(self) {
        let Stop {
            signal,
            running,
            mut stopped,
            ..
        } = self;
        let _ = signal.send(true);
        drop(running);
        let _ = tokio::time::timeout(RELEASE_TIMEOUT, stopped.recv()).await;
    }
}

/// Starts the enabled components in the background.
pub fn spawn(config: &ServerConfig, kubeconfig: PathBuf, stop: StopHandle) {
    let controllers = config.runs(Component::Controllers);
    let scheduler = config.runs(Component::Scheduler);
    let leader_elect = config.leader_elect;
    tokio::spawn(async move {
        let client = match k8rs_client::client_from_kubeconfig(&kubeconfig).await {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot start embedded components");
                return;
            }
        };
        // Leases are renewed on their own connection (upstream: a separate
        // "leader-election" client), so a component's burst of requests never queues the
        // renewal behind it past the renew deadline.
        let election = if leader_elect {
            match k8rs_client::client_from_kubeconfig(&kubeconfig).await {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot start embedded components");
                    return;
                }
            }
        } else {
            client.clone()
        };
        if controllers {
            let root_ca = k8rs_client::root_ca_from_kubeconfig(&kubeconfig).unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "no cluster CA for kube-root-ca.crt");
                None
            });
            tokio::spawn(log_exit(
                "controller-manager",
                elected(
                    leader_elect,
                    election.clone(),
                    "kube-controller-manager",
                    k8rs_controllers::run(client.clone(), root_ca),
                    stop.clone(),
                ),
            ));
        }
        if scheduler {
            tokio::spawn(log_exit(
                "scheduler",
                elected(
                    leader_elect,
                    election,
                    "kube-scheduler",
                    k8rs_scheduler::run(
                        client.clone(),
                        vec![k8rs_scheduler::Profile::default_profile()],
                    ),
                    stop,
                ),
            ));
        }
    });
}

/// Runs `component` under the Lease `kube-system/<lease>` (or directly without leader
/// election) until it ends or `stop` is signalled.
async fn elected(
    leader_elect: bool,
    client: kube::Client,
    lease: &str,
    component: impl std::future::Future<Output = anyhow::Result<()>>,
    stop: StopHandle,
) -> anyhow::Result<()> {
    if leader_elect {
        let config = LeaderElectionConfig::new(lease);
        leaderelection::run_or_exit(client, config, component, stop.stopped()).await
    } else {
        tokio::select! {
            r = component => r,
            () = stop.stopped() => Ok(()),
        }
    }
}

async fn log_exit(component: &str, run: impl std::future::Future<Output = anyhow::Result<()>>) {
    if let Err(e) = run.await {
        tracing::error!(component, error = %format!("{e:#}"), "embedded component stopped");
    }
}
