//! `k8rs controller-manager`: the controllers as their own process, an API client of any
//! server (the same controllers `k8rs server` embeds unless `--disable controllers`).

use crate::cli::ControllerManagerArgs;
use crate::shutdown;

/// Run `k8rs controller-manager` until a signal.
pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal();
    let client = k8rs_client::client_from_kubeconfig(&args.kubeconfig).await?;
    let root_ca = k8rs_client::root_ca_from_kubeconfig(&args.kubeconfig)?;
    tokio::select! {
        result = k8rs_controllers::run(client, root_ca) => result,
        _ = shutdown => Ok(()),
    }
}
