//! `k8rs scheduler`: the scheduler as its own process, an API client of any server.
//! With `--leader-elect` (the default) it schedules only while it holds the Lease
//! `kube-system/kube-scheduler`, and exits when it loses it, as kube-scheduler does.

use crate::cli::SchedulerArgs;
use crate::shutdown;

/// Run `k8rs scheduler` until a signal.
pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let profiles = match &args.config {
        Some(path) => k8rs_scheduler::config::load(path)?,
        None => vec![k8rs_scheduler::Profile::default_profile()],
    };
    let shutdown = shutdown::on_signal();
    let client = k8rs_client::client_from_kubeconfig(&args.kubeconfig).await?;
    let scheduler = k8rs_scheduler::run(client, profiles);
    args.leader_election
        .run(&args.kubeconfig, "kube-scheduler", scheduler, shutdown)
        .await
}
