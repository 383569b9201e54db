//! Components `k8rs server` runs beside the API server unless `--disable`d. Each is an
//! ordinary API client that connects with the admin kubeconfig once the server answers,
//! exactly as it would from another process (`k8rs controller-manager`, …).

use std::path::PathBuf;

use k8rs_apiserver::config::Component;
use k8rs_apiserver::ServerConfig;

/// Starts the enabled components in the background.
pub fn spawn(config: &ServerConfig, kubeconfig: PathBuf) {
    let controllers = config.runs(Component::Controllers);
    let scheduler = config.runs(Component::Scheduler);
    tokio::spawn(async move {
        let client = match k8rs_client::client_from_kubeconfig(&kubeconfig).await {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot start embedded components");
                return;
            }
        };
        if controllers {
            let root_ca = k8rs_client::root_ca_from_kubeconfig(&kubeconfig).unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "no cluster CA for kube-root-ca.crt");
                None
            });
            tokio::spawn(log_exit(
                "controller-manager",
                k8rs_controllers::run(client.clone(), root_ca),
            ));
        }
        if scheduler {
            tokio::spawn(log_exit(
                "scheduler",
                k8rs_scheduler::run(
                    client.clone(),
                    vec![k8rs_scheduler::Profile::default_profile()],
                ),
            ));
        }
    });
}

async fn log_exit(component: &str, run: impl std::future::Future<Output = anyhow::Result<()>>) {
    if let Err(e) = run.await {
        tracing::error!(component, error = %format!("{e:#}"), "embedded component stopped");
    }
}
