//! `NodeResourcesBalancedAllocation`: the closer a node's CPU and memory fractions are to
//! each other with the pod placed, the higher its score.

use std::sync::Arc;

use super::{allocatable_and_requested, default_resources, ResourceSpec};
use crate::cache::Snapshot;
use crate::framework::{
    ClusterEvent, CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Status,
    MAX_NODE_SCORE,
};

/// The plugin.
pub struct BalancedAllocation {
    resources: Vec<ResourceSpec>,
}

impl Default for BalancedAllocation {
    fn default() -> Self {
        BalancedAllocation {
            resources: default_resources(),
        }
    }
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[]
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        // A pod that requests nothing changes no node's balance.
        if pod.requests.is_zero() {
            Status::skip()
        } else {
            Status::success()
        }
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut fractions = Vec::with_capacity(self.resources.len());
        for r in &self.resources {
            let (allocatable, requested) = allocatable_and_requested(node, pod, &r.name, false);
            if allocatable == 0 {
                continue;
            }
            fractions.push((requested as f64 / allocatable as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                (fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n as f64).sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, score_all};
    use serde_json::json;

    #[test]
    fn even_use_scores_higher() {
        let p = pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}));
        let nodes = vec![
            node(
                "even",
                json!({"status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "10"}}}),
            ),
            node(
                "skewed",
                json!({"status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "10"}}}),
            ),
        ];
        // skewed: cpu 0.5, memory 0.125 → std 0.1875 → 81.
        assert_eq!(
            score_all(&BalancedAllocation::default(), &p, &nodes),
            vec![100, 81]
        );
    }
}
