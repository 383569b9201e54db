//! `NodePorts`: a pod's host ports must be free on the node.

use crate::cache::Snapshot;
use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin, Status,
};

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The plugin.
pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::AssignedPodDelete, ClusterEvent::NodeAdd]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(&self, _: &mut CycleState, pod: &PodInfo, _: &Snapshot) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if clash {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node_with_pods, pod};
    use serde_json::json;

    #[test]
    fn host_ports_clash_on_the_wildcard_address() {
        let web = |ip: &str| {
            pod(json!({"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": ip}]}]}))
        };
        let n = node_with_pods("n", json!({}), vec![web("10.0.0.1")]);
        assert!(NodePorts
            .filter(&CycleState::default(), &web("10.0.0.2"), &n)
            .is_success());
        assert_eq!(
            NodePorts.filter(&CycleState::default(), &web(""), &n),
            Status::unschedulable(ERR_REASON)
        );
    }
}
