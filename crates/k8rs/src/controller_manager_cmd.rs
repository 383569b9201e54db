//! `k8rs controller-manager`: the controllers as their own process, an API client of any
//! server (the same controllers `k8rs server` embeds unless `--disable controllers`).
//! With `--leader-elect` (the default) it acts only while it holds the Lease
//! `kube-system/kube-controller-manager`, and exits when it loses it, as upstream does.

use crate::cli::ControllerManagerArgs;
use crate::shutdown;

/// Run `k8rs controller-manager` until a signal.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal();
    let client = k8rs_client::client_from_kubeconfig(&args.kubeconfig).await?;
    let root_ca = k8rs_client::root_ca_from_kubeconfig(&args.kubeconfig)?;
    let controllers = k8rs_controllers::run(client, root_ca);
    args.leader_election
        .run(
            &args.kubeconfig,
            "kube-controller-manager",
            controllers,
            shutdown,
        )
        .await
}
