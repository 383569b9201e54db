//! `TaintToleration`: nodes with `NoSchedule`/`NoExecute` taints the pod does not tolerate
//! are filtered out; `PreferNoSchedule` taints it does not tolerate lower a node's score.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Toleration;

use crate::cache::Snapshot;
use crate::framework::{
    default_normalize, ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreScorePlugin, ScorePlugin, Status,
};
use crate::selectors::{find_untolerated, tolerates};

const PRE_SCORE_KEY: &str = "PreScoreTaintToleration";

#[derive(Clone)]
struct PreferTolerations(Vec<Toleration>);

/// The plugin.
pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[ClusterEvent::NodeAdd, ClusterEvent::NodeTaintChange]
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

fn tolerations(pod: &PodInfo) -> &[Toleration] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match find_untolerated(node.taints(), tolerations(pod), |t| {
            t.effect == "NoSchedule" || t.effect == "NoExecute"
        }) {
            None => Status::success(),
            Some(taint) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            )),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let prefer = tolerations(pod)
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        state.write(PRE_SCORE_KEY, PreferTolerations(prefer));
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let empty = PreferTolerations(Vec::new());
        let tolerations = state
            .read::<PreferTolerations>(PRE_SCORE_KEY)
            .unwrap_or(&empty);
        node.taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|taint| !tolerations.0.iter().any(|t| tolerates(t, taint)))
            .count() as i64
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, score_all};
    use serde_json::json;

    #[test]
    fn untolerated_hard_taints_filter_with_upstream_message() {
        let n = node(
            "n",
            json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        );
        let p = pod(json!({"containers": []}));
        assert_eq!(
            TaintToleration.filter(&CycleState::default(), &p, &n),
            Status::unresolvable(
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
            )
        );
        let tolerant = pod(json!({"containers": [], "tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}));
        assert!(TaintToleration
            .filter(&CycleState::default(), &tolerant, &n)
            .is_success());
    }

    #[test]
    fn prefer_no_schedule_lowers_the_score() {
        let p = pod(json!({"containers": []}));
        let nodes = vec![
            node("clean", json!({})),
            node(
                "one",
                json!({"spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"}]}}),
            ),
            node(
                "two",
                json!({"spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"},
                {"key": "b", "effect": "PreferNoSchedule"}]}}),
            ),
        ];
        assert_eq!(score_all(&TaintToleration, &p, &nodes), vec![100, 50, 0]);
    }
}
