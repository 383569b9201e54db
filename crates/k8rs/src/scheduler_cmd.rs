//! `k8rs scheduler`: the scheduler as its own process, an API client of any server.
//! With `--leader-elect` (the default) it schedules only while it holds the Lease
//! `kube-system/kube-scheduler`, and exits when it loses it, as kube-scheduler does.

use k8rs_client::leaderelection::{self, LeaderElectionConfig};

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
    let scheduler = k8rs_scheduler::run(client.clone(), profiles);
    if !args.leader_elect {
        return tokio::select! {
            result = scheduler => result,
            _ = shutdown => Ok(()),
        };
    }
    let mut config = LeaderElectionConfig::new("kube-scheduler");
    config.lease_duration = args.leader_elect_lease_duration;
    config.renew_deadline = args.leader_elect_renew_deadline;
    config.retry_period = args.leader_elect_retry_period;
    // Its own connection, as upstream's separate leader-election client: renewals do
    // not queue behind the scheduler's bindings.
    let election = k8rs_client::client_from_kubeconfig(&args.kubeconfig).await?;
    leaderelection::run_or_exit(election, config, scheduler, shutdown).await
}
