//! `NodeAffinity`: `spec.nodeSelector` and required node affinity filter nodes; preferred
//! node affinity terms add their weights to the nodes they match.

use std::sync::Arc;

use crate::cache::Snapshot;
use crate::framework::{
    default_normalize, ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreScorePlugin, ScorePlugin, Status,
};
use crate::selectors::{NodeSelectorMatcher, Selector};

/// Upstream's reason.
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

const PRE_FILTER_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_KEY: &str = "PreScoreNodeAffinity";

/// The pod's node requirements: `nodeSelector` and required affinity, both must hold.
#[derive(Clone)]
pub struct RequiredNodeAffinity {
    selector: Option<Selector>,
    affinity: Option<NodeSelectorMatcher>,
}

impl RequiredNodeAffinity {
    /// Compiles the pod's requirements (upstream's `GetRequiredNodeAffinity`).
    pub fn of(pod: &PodInfo) -> RequiredNodeAffinity {
        let spec = pod.pod.spec.as_ref();
        RequiredNodeAffinity {
            selector: spec
                .and_then(|s| s.node_selector.as_ref())
                .filter(|m| !m.is_empty())
                .map(|m| Selector::from_map(Some(m))),
            affinity: spec
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(NodeSelectorMatcher::new),
        }
    }

    /// Whether the pod has any requirement.
    pub fn is_empty(&self) -> bool {
        self.selector.is_none() && self.affinity.is_none()
    }

    /// Whether `node` satisfies the requirements.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.matches(node.labels()))
            && self
                .affinity
                .as_ref()
                .is_none_or(|a| a.matches(node.node()))
    }
}

#[derive(Clone)]
struct Preferred(Vec<(NodeSelectorMatcher, i64)>);

/// The plugin.
pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeLabelChange]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, _: &Snapshot) -> Status {
        let required = RequiredNodeAffinity::of(pod);
        if required.is_empty() {
            return Status::skip();
        }
        state.write(PRE_FILTER_KEY, required);
        Status::success()
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let fits = match state.read::<RequiredNodeAffinity>(PRE_FILTER_KEY) {
            Some(r) => r.matches(node),
            None => RequiredNodeAffinity::of(pod).matches(node),
        };
        if fits {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let terms: Vec<(NodeSelectorMatcher, i64)> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0)
            .filter_map(|t| NodeSelectorMatcher::term(&t.preference).map(|m| (m, t.weight as i64)))
            .collect();
        if terms.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_KEY, Preferred(terms));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        state
            .read::<Preferred>(PRE_SCORE_KEY)
            .map(|p| {
                p.0.iter()
                    .filter(|(m, _)| m.matches(node.node()))
                    .map(|(_, w)| w)
                    .sum()
            })
            .unwrap_or(0)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, score_all};
    use serde_json::json;

    #[test]
    fn node_selector_and_required_affinity_both_apply() {
        let p = pod(json!({"containers": [], "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}}));
        let mut state = CycleState::default();
        assert!(NodeAffinity
            .pre_filter(&mut state, &p, &Snapshot::default())
            .is_success());
        let n = |labels| node("n", json!({"metadata": {"labels": labels}}));
        assert!(NodeAffinity
            .filter(&state, &p, &n(json!({"disk": "ssd", "zone": "a"})))
            .is_success());
        assert_eq!(
            NodeAffinity.filter(&state, &p, &n(json!({"disk": "hdd", "zone": "a"}))),
            Status::unresolvable(ERR_REASON)
        );
        assert!(!NodeAffinity
            .filter(&state, &p, &n(json!({"disk": "ssd", "zone": "c"})))
            .is_success());
    }

    #[test]
    fn preferred_terms_score_by_weight() {
        let p = pod(
            json!({"containers": [], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 80, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 20, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}}),
        );
        let nodes = vec![
            node("a", json!({"metadata": {"labels": {"zone": "a"}}})),
            node(
                "b",
                json!({"metadata": {"labels": {"zone": "b", "disk": "ssd"}}}),
            ),
            node("c", json!({})),
        ];
        assert_eq!(score_all(&NodeAffinity, &p, &nodes), vec![100, 25, 0]);
    }
}
