//! `k8rs hollow`: N simulated nodes in one process (upstream's kubemark hollow nodes).
//! Every node runs the real kubelet node agent — registration, status, Lease, pod
//! workers — over the in-memory hollow runtime; all share one client and one informer
//! per type.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use k8rs_kubelet::hollow::{HollowOptions, HollowRuntime};
use k8rs_kubelet::runtime::Runtime;
use k8rs_kubelet::{NodeConfig, Timings};

use crate::cli::HollowArgs;
use crate::shutdown;

/// Run `k8rs hollow`.
pub async fn run(args: HollowArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let shutdown = shutdown::on_signal();
    let client = k8rs_client::client_from_kubeconfig(&args.kubeconfig).await?;
    client.apiserver_version().await.with_context(|| {
        format!(
            "cannot reach the API server of {}",
            args.kubeconfig.display()
        )
    })?;
    let options = HollowOptions {
        start_delay: args.start_delay,
        stop_delay: args.stop_delay,
    };
    let mut labels = BTreeMap::new();
    for label in &args.node_labels {
        let Some((k, v)) = label.split_once('=') else {
            bail!("--node-labels takes key=value pairs, got {label:?}");
        };
        labels.insert(k.to_string(), v.to_string());
    }
    let nodes: Vec<(NodeConfig, Arc<dyn Runtime>)> = (0..args.nodes)
        .map(|i| {
            let name = format!("{}{i}", args.prefix);
            let mut config = NodeConfig::hollow(&name, &node_address(&name).to_string());
            config.labels = labels.clone();
            let runtime: Arc<dyn Runtime> = Arc::new(HollowRuntime::new(options));
            (config, runtime)
        })
        .collect();
    tracing::info!(nodes = args.nodes, prefix = %args.prefix, "starting hollow nodes");
    let _nodes = k8rs_kubelet::start_nodes(client, nodes, Timings::default());
    shutdown.await;
    Ok(())
}

/// A stable address per node name in 172.16.0.0/12 (the nodes' InternalIP and their
/// pods' hostIP; nothing listens there).
fn node_address(name: &str) -> Ipv4Addr {
    let hash = name.bytes().fold(0x811c9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x01000193)
    });
    let host = 1 + hash % ((1 << 20) - 2);
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + host)
}

/// Parses `500ms`, `2s`, `1m` (Go's duration units people use on flags).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{s:?} needs a unit (ms, s, m, h)"))?;
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_addresses() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert_ne!(node_address("hollow-0"), node_address("hollow-1"));
        assert_eq!(node_address("hollow-0").octets()[0], 172);
    }
}
