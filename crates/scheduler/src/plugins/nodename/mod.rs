//! `NodeName`: a pod that names its node fits only that node.

use crate::framework::{ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// The plugin.
pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(name) if !name.is_empty() && name != node.name() => {
                Status::unresolvable(ERR_REASON)
            }
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn only_the_named_node_fits() {
        let p = pod(json!({"nodeName": "n1", "containers": []}));
        assert!(NodeName
            .filter(&CycleState::default(), &p, &node("n1", json!({})))
            .is_success());
        let s = NodeName.filter(&CycleState::default(), &p, &node("n2", json!({})));
        assert_eq!(s, Status::unresolvable(ERR_REASON));
        let any = pod(json!({"containers": []}));
        assert!(NodeName
            .filter(&CycleState::default(), &any, &node("n2", json!({})))
            .is_success());
    }
}
