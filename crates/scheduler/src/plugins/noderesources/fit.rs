//! `NodeResourcesFit`.

use anyhow::bail;
use serde_json::Value;

use super::{allocatable_and_requested, default_resources, ResourceSpec};
use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, ScorePlugin, Status,
    MAX_NODE_SCORE,
};

/// How fitting nodes are ranked (`scoringStrategy.type`).
#[derive(Clone, Debug, PartialEq)]
pub enum ScoringStrategy {
    /// Prefer the emptiest nodes (spreads pods; the default).
    LeastAllocated,
    /// Prefer the fullest nodes (packs pods).
    MostAllocated,
    /// A piecewise-linear function of utilisation: `(utilization, score 0–10)` points.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// The plugin.
pub struct Fit {
    strategy: ScoringStrategy,
    resources: Vec<ResourceSpec>,
}

impl Fit {
    /// From `NodeResourcesFitArgs` (absent: LeastAllocated over CPU and memory).
    pub fn new(args: Option<&Value>) -> anyhow::Result<Fit> {
        let strategy = args.and_then(|a| a.get("scoringStrategy"));
        let resources = strategy
            .and_then(|s| s.get("resources"))
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .map(|r| ResourceSpec {
                        name: r
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        weight: r.get("weight").and_then(Value::as_i64).unwrap_or(1),
                    })
                    .collect()
            })
            .unwrap_or_else(default_resources);
        let kind = strategy
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("LeastAllocated");
        let strategy = match kind {
            "LeastAllocated" => ScoringStrategy::LeastAllocated,
            "MostAllocated" => ScoringStrategy::MostAllocated,
            "RequestedToCapacityRatio" => {
                let shape = strategy
                    .and_then(|s| s.pointer("/requestedToCapacityRatio/shape"))
                    .and_then(Value::as_array)
                    .map(|pts| {
                        pts.iter()
                            .map(|p| {
                                (
                                    p.get("utilization").and_then(Value::as_i64).unwrap_or(0),
                                    p.get("score").and_then(Value::as_i64).unwrap_or(0),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if shape.is_empty() {
                    bail!("scoringStrategy.requestedToCapacityRatio.shape: Required value");
                }
                ScoringStrategy::RequestedToCapacityRatio(shape)
            }
            other => bail!(
                "scoringStrategy.type: Unsupported value: {other:?}: supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
            ),
        };
        Ok(Fit {
            strategy,
            resources,
        })
    }

    fn resource_score(&self, requested: i64, allocatable: i64) -> i64 {
        match &self.strategy {
            ScoringStrategy::LeastAllocated => {
                if requested > allocatable {
                    0
                } else {
                    (allocatable - requested) * MAX_NODE_SCORE / allocatable
                }
            }
            ScoringStrategy::MostAllocated => {
                requested.min(allocatable) * MAX_NODE_SCORE / allocatable
            }
            ScoringStrategy::RequestedToCapacityRatio(shape) => {
                let utilization = requested.min(allocatable) * 100 / allocatable;
                broken_linear(shape, utilization) * (MAX_NODE_SCORE / 10)
            }
        }
    }
}

/// Upstream's `helper.BuildBrokenLinearFunction` over `(utilization, score)` points.
fn broken_linear(shape: &[(i64, i64)], x: i64) -> i64 {
    for (i, &(px, py)) in shape.iter().enumerate() {
        if x <= px {
            if i == 0 {
                return shape[0].1;
            }
            let (qx, qy) = shape[i - 1];
            return qy + (py - qy) * (x - qx) / (px - qx);
        }
    }
    shape.last().map(|p| p.1).unwrap_or(0)
}

/// Upstream's `fitsRequest`: every resource the pod asks for must be free; all
/// shortfalls are reported.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
        reasons.push("Too many pods".to_string());
    }
    let want = &pod.requests;
    if want.is_zero() {
        return reasons;
    }
    let free = |name: &str| node.allocatable.get(name) - node.requested.get(name);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let w = want.get(name);
        if w > 0 && w > free(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    for (name, w) in &want.scalar {
        if *w > 0 && *w > free(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeAllocatableChange,
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status::new(crate::framework::Code::Unschedulable, reasons)
        }
    }
}

impl ScorePlugin for Fit {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0, 0);
        for r in &self.resources {
            let (allocatable, requested) = allocatable_and_requested(node, pod, &r.name, true);
            if allocatable == 0 {
                continue;
            }
            total += self.resource_score(requested, allocatable) * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            0
        } else {
            total / weights
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, node_with_pods, pod, score_all};
    use serde_json::json;

    fn req(cpu: &str, mem: &str) -> PodInfo {
        pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}))
    }

    fn sized(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        let _ = name;
        json!({"status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}})
    }

    #[test]
    fn reports_every_shortfall() {
        let fit = Fit::new(None).unwrap();
        let n = node_with_pods("n", sized("n", "2", "4Gi"), vec![req("1500m", "1Gi")]);
        assert!(fit
            .filter(&CycleState::default(), &req("500m", "3Gi"), &n)
            .is_success());
        let s = fit.filter(&CycleState::default(), &req("600m", "4Gi"), &n);
        assert_eq!(s.reasons, ["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(s.code, crate::framework::Code::Unschedulable);
    }

    #[test]
    fn extended_resources_and_pod_count_fit_like_cpu() {
        let fit = Fit::new(None).unwrap();
        let n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "1", "example.com/gpu": "1"}}}),
        );
        let gpu = |count: &str| {
            pod(json!({"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"example.com/gpu": count}}}]}))
        };
        assert!(fit
            .filter(&CycleState::default(), &gpu("1"), &n)
            .is_success());
        assert_eq!(
            fit.filter(&CycleState::default(), &gpu("2"), &n).reasons,
            ["Insufficient example.com/gpu"]
        );
        let full = node_with_pods(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "1"}}}),
            vec![req("1", "1Gi")],
        );
        assert_eq!(
            fit.filter(&CycleState::default(), &req("1", "1Gi"), &full)
                .reasons,
            ["Too many pods"]
        );
    }

    #[test]
    fn least_and_most_allocated_rank_oppositely() {
        let nodes = vec![
            node_with_pods("busy", sized("busy", "4", "8Gi"), vec![req("3", "6Gi")]),
            node("idle", sized("idle", "4", "8Gi")),
        ];
        let p = req("1", "2Gi");
        let least = Fit::new(None).unwrap();
        // busy: cpu 0%, mem 0% free → 0; idle: 75% free each → 75.
        assert_eq!(score_all(&least, &p, &nodes), vec![0, 75]);
        let most = Fit::new(Some(&json!({"scoringStrategy": {"type": "MostAllocated"}}))).unwrap();
        assert_eq!(score_all(&most, &p, &nodes), vec![100, 25]);
        let ratio = Fit::new(Some(&json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}})))
        .unwrap();
        assert_eq!(score_all(&ratio, &p, &nodes), vec![100, 20]);
        assert!(Fit::new(Some(&json!({"scoringStrategy": {"type": "Random"}}))).is_err());
    }
}
