//! `PodTopologySpread`: `DoNotSchedule` constraints filter nodes whose domain would
//! exceed `maxSkew` over the least loaded domain; `ScheduleAnyway` constraints (and, for
//! pods without constraints, the cluster defaults with a selector derived from the
//! pod's Services, ReplicaSets and StatefulSets) prefer the emptier domains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8rs_client::Informer;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Service, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::nodeaffinity::RequiredNodeAffinity;
use super::Handle;
use crate::cache::Snapshot;
use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};
use crate::selectors::{find_untolerated, Selector};

/// Upstream's reasons.
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
/// A node without one of the constraints' topology keys.
pub const ERR_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";
const PRE_FILTER_KEY: &str = "PreFilterPodTopologySpread";
const PRE_SCORE_KEY: &str = "PreScorePodTopologySpread";
/// Marks nodes that scoring ignores (they lack a topology key).
const IGNORED: i64 = i64::MIN;

/// One constraint, compiled.
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    selector: Selector,
    min_domains: i64,
    honor_node_affinity: bool,
    honor_node_taints: bool,
}

impl Constraint {
    fn new(
        c: &TopologySpreadConstraint,
        pod: &PodInfo,
        selector_override: Option<&Selector>,
    ) -> Constraint {
        let mut selector = match selector_override {
            Some(s) => s.clone(),
            None => Selector::from_label_selector(c.label_selector.as_ref()),
        };
        for key in c.match_label_keys.iter().flatten() {
            if let Some(v) = pod.labels().and_then(|l| l.get(key)) {
                selector.require(key, v);
            }
        }
        Constraint {
            max_skew: c.max_skew as i64,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1) as i64,
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_node_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    /// Upstream's `matchNodeInclusionPolicies`.
    fn includes(&self, pod: &PodInfo, node: &NodeInfo, required: &RequiredNodeAffinity) -> bool {
        if self.honor_node_affinity && !required.matches(node) {
            return false;
        }
        if self.honor_node_taints {
            let tolerations = pod
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or(&[]);
            if find_untolerated(node.taints(), tolerations, |t| {
                t.effect == "NoSchedule" || t.effect == "NoExecute"
            })
            .is_some()
            {
                return false;
            }
        }
        true
    }
}

fn has_all_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    let labels = node.labels();
    constraints
        .iter()
        .all(|c| labels.is_some_and(|l| l.contains_key(&c.topology_key)))
}

/// Pods on the node in `namespace`, not terminating, that `selector` selects.
fn count_matching(pods: &[Arc<PodInfo>], selector: &Selector, namespace: &str) -> i64 {
    pods.iter()
        .filter(|p| {
            !p.is_terminating() && p.namespace() == namespace && selector.matches(p.labels())
        })
        .count() as i64
}

#[derive(Clone)]
struct FilterState {
    constraints: Vec<Constraint>,
    pair_counts: HashMap<(String, String), i64>,
    domains: HashMap<String, i64>,
    /// The smallest count per constraint (`i32::MAX` when no domain exists).
    min_counts: Vec<i64>,
}

impl FilterState {
    fn recompute_min(&mut self) {
        for (i, c) in self.constraints.iter().enumerate() {
            self.min_counts[i] = self
                .pair_counts
                .iter()
                .filter(|((k, _), _)| *k == c.topology_key)
                .map(|(_, n)| *n)
                .min()
                .unwrap_or(i32::MAX as i64);
        }
    }

    fn update(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, by: i64) {
        if other.namespace() != pod.namespace() || !has_all_keys(node, &self.constraints) {
            return;
        }
        let required = RequiredNodeAffinity::of(pod);
        let mut changed = false;
        for c in &self.constraints {
            if !c.includes(pod, node, &required) || !c.selector.matches(other.labels()) {
                continue;
            }
            let value = node.labels().unwrap()[&c.topology_key].clone();
            *self
                .pair_counts
                .entry((c.topology_key.clone(), value))
                .or_default() += by;
            changed = true;
        }
        if changed {
            self.recompute_min();
        }
    }
}

#[derive(Clone)]
struct ScoreState {
    constraints: Vec<Constraint>,
    ignored: HashSet<String>,
    pair_counts: HashMap<(String, String), i64>,
    weights: Vec<f64>,
}

/// The plugin.
pub struct PodTopologySpread {
    default_constraints: Vec<TopologySpreadConstraint>,
    system_defaulted: bool,
    services: Option<Informer<Service>>,
    replica_sets: Option<Informer<ReplicaSet>>,
    stateful_sets: Option<Informer<StatefulSet>>,
}

/// Upstream's system defaults: spread over hosts (skew 3) and zones (skew 5), softly.
fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    [(HOSTNAME, 3), ("topology.kubernetes.io/zone", 5)]
        .iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            topology_key: key.to_string(),
            max_skew: *skew,
            when_unsatisfiable: "ScheduleAnyway".into(),
            ..Default::default()
        })
        .collect()
}

impl PodTopologySpread {
    /// From `PodTopologySpreadArgs` (`defaultingType: System` by default, or `List` with
    /// `defaultConstraints`).
    pub fn new(args: Option<&Value>, handle: &Handle) -> anyhow::Result<PodTopologySpread> {
        let list = args
            .and_then(|a| a.get("defaultingType"))
            .and_then(Value::as_str)
            == Some("List");
        let (default_constraints, system_defaulted) = if list {
            let given = args
                .and_then(|a| a.get("defaultConstraints"))
                .cloned()
                .unwrap_or(Value::Array(Vec::new()));
            (serde_json::from_value(given)?, false)
        } else {
            (system_default_constraints(), true)
        };
        let informers = handle.informers.as_ref();
        Ok(PodTopologySpread {
            default_constraints,
            system_defaulted,
            services: informers.map(|i| i.get::<Service>()),
            replica_sets: informers.map(|i| i.get::<ReplicaSet>()),
            stateful_sets: informers.map(|i| i.get::<StatefulSet>()),
        })
    }

    /// Upstream's `DefaultSelector`: the union of the selectors of the Services,
    /// ReplicaSets and StatefulSets that select the pod.
    fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        let labels = pod.labels();
        let ns = pod.namespace();
        let mut merged = LabelSelector::default();
        let mut found = false;
        if let Some(services) = &self.services {
            for svc in services.list_namespace(ns) {
                let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
                    continue;
                };
                if !sel.is_empty() && Selector::from_map(Some(sel)).matches(labels) {
                    merged
                        .match_labels
                        .get_or_insert_with(Default::default)
                        .extend(sel.clone());
                    found = true;
                }
            }
        }
        let mut add = |sel: &LabelSelector| {
            if Selector::from_label_selector(Some(sel)).matches(labels)
                && sel != &LabelSelector::default()
            {
                if let Some(m) = &sel.match_labels {
                    merged
                        .match_labels
                        .get_or_insert_with(Default::default)
                        .extend(m.clone());
                }
                if let Some(e) = &sel.match_expressions {
                    merged
                        .match_expressions
                        .get_or_insert_with(Vec::new)
                        .extend(e.clone());
                }
                found = true;
            }
        };
        if let Some(rss) = &self.replica_sets {
            for rs in rss.list_namespace(ns) {
                if let Some(spec) = &rs.spec {
                    add(&spec.selector);
                }
            }
        }
        if let Some(sss) = &self.stateful_sets {
            for ss in sss.list_namespace(ns) {
                if let Some(spec) = &ss.spec {
                    add(&spec.selector);
                }
            }
        }
        found.then(|| Selector::from_label_selector(Some(&merged)))
    }

    /// The pod's constraints with `when` (`DoNotSchedule`/`ScheduleAnyway`), or the
    /// defaults when the pod has none at all.
    fn constraints(&self, pod: &PodInfo, when: &str) -> Vec<Constraint> {
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or(&[]);
        if !own.is_empty() {
            return own
                .iter()
                .filter(|c| c.when_unsatisfiable == when)
                .map(|c| Constraint::new(c, pod, None))
                .collect();
        }
        let defaults: Vec<&TopologySpreadConstraint> = self
            .default_constraints
            .iter()
            .filter(|c| c.when_unsatisfiable == when)
            .collect();
        if defaults.is_empty() {
            return Vec::new();
        }
        let Some(selector) = self.default_selector(pod) else {
            return Vec::new();
        };
        defaults
            .into_iter()
            .map(|c| Constraint::new(c, pod, Some(&selector)))
            .collect()
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeLabelChange,
            ClusterEvent::NodeTaintChange,
        ]
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

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let constraints = self.constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Status::skip();
        }
        let required = RequiredNodeAffinity::of(pod);
        let mut pair_counts: HashMap<(String, String), i64> = HashMap::new();
        for node in &snapshot.nodes {
            if !has_all_keys(node, &constraints) {
                continue;
            }
            for c in &constraints {
                if !c.includes(pod, node, &required) {
                    continue;
                }
                let value = node.labels().unwrap()[&c.topology_key].clone();
                let count = count_matching(&node.pods, &c.selector, pod.namespace());
                *pair_counts
                    .entry((c.topology_key.clone(), value))
                    .or_default() += count;
            }
        }
        let mut domains: HashMap<String, i64> = HashMap::new();
        for (k, _) in pair_counts.keys() {
            *domains.entry(k.clone()).or_default() += 1;
        }
        let n = constraints.len();
        let mut s = FilterState {
            constraints,
            pair_counts,
            domains,
            min_counts: vec![0; n],
        };
        s.recompute_min();
        state.write(PRE_FILTER_KEY, s);
        Status::success()
    }

    fn add_pod(&self, state: &mut CycleState, pod: &PodInfo, added: &PodInfo, node: &NodeInfo) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            s.update(pod, added, node, 1);
        }
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) {
        if let Some(s) = state.read_mut::<FilterState>(PRE_FILTER_KEY) {
            s.update(pod, removed, node, -1);
        }
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = node.labels().and_then(|l| l.get(&c.topology_key)) else {
                return Status::unresolvable(ERR_MISSING_LABEL);
            };
            // With fewer domains than minDomains, the global minimum counts as 0.
            let min = if s.domains.get(&c.topology_key).copied().unwrap_or(0) < c.min_domains {
                0
            } else {
                s.min_counts[i]
            };
            let self_match = c.selector.matches(pod.labels()) as i64;
            let count = s
                .pair_counts
                .get(&(c.topology_key.clone(), value.clone()))
                .copied()
                .unwrap_or(0);
            if count + self_match - min > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Status {
        let constraints = self.constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        let own = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let require_all = own || !self.system_defaulted;
        let mut ignored = HashSet::new();
        let mut pair_counts: HashMap<(String, String), i64> = HashMap::new();
        let mut sizes = vec![0usize; constraints.len()];
        for node in nodes {
            if require_all && !has_all_keys(node, &constraints) {
                ignored.insert(node.name().to_string());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                if let Some(v) = node.labels().and_then(|l| l.get(&c.topology_key)) {
                    let pair = (c.topology_key.clone(), v.clone());
                    if let std::collections::hash_map::Entry::Vacant(e) = pair_counts.entry(pair) {
                        e.insert(0);
                        sizes[i] += 1;
                    }
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&mut sizes)
            .map(|(c, size)| {
                if c.topology_key == HOSTNAME {
                    *size = nodes.len() - ignored.len();
                }
                ((*size + 2) as f64).ln()
            })
            .collect();
        let required = RequiredNodeAffinity::of(pod);
        for node in &snapshot.nodes {
            if require_all && !has_all_keys(node, &constraints) {
                continue;
            }
            for c in &constraints {
                if c.topology_key == HOSTNAME || !c.includes(pod, node, &required) {
                    continue;
                }
                let Some(v) = node.labels().and_then(|l| l.get(&c.topology_key)) else {
                    continue;
                };
                if let Some(n) = pair_counts.get_mut(&(c.topology_key.clone(), v.clone())) {
                    *n += count_matching(&node.pods, &c.selector, pod.namespace());
                }
            }
        }
        state.write(
            PRE_SCORE_KEY,
            ScoreState {
                constraints,
                ignored,
                pair_counts,
                weights,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return 0;
        };
        if s.ignored.contains(node.name()) {
            return IGNORED;
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.labels().and_then(|l| l.get(&c.topology_key)) else {
                continue;
            };
            let count = if c.topology_key == HOSTNAME {
                count_matching(&node.pods, &c.selector, pod.namespace())
            } else {
                s.pair_counts
                    .get(&(c.topology_key.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        if state.read::<ScoreState>(PRE_SCORE_KEY).is_none() {
            return;
        }
        let valid = scores.iter().copied().filter(|s| *s != IGNORED);
        let min = valid.clone().min().unwrap_or(0);
        let max = valid.max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if *s == IGNORED {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{named_pod, node_with_pods, score_all};
    use serde_json::json;

    fn web(name: &str) -> PodInfo {
        named_pod(name, json!({"app": "web"}), json!({"containers": []}))
    }

    fn spread(when: &str) -> PodInfo {
        named_pod(
            "new",
            json!({"app": "web"}),
            json!({"containers": [], "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        )
    }

    fn zone(name: &str, z: Option<&str>, pods: Vec<PodInfo>) -> NodeInfo {
        let labels = match z {
            Some(z) => json!({"zone": z}),
            None => json!({}),
        };
        node_with_pods(name, json!({"metadata": {"labels": labels}}), pods)
    }

    #[test]
    fn do_not_schedule_keeps_the_skew() {
        let nodes = vec![
            zone("a1", Some("a"), vec![web("w1")]),
            zone("b1", Some("b"), vec![]),
            zone("x", None, vec![]),
        ];
        let snapshot = Snapshot::from_nodes(nodes);
        let p = PodTopologySpread::new(None, &Handle::default()).unwrap();
        let pod = spread("DoNotSchedule");
        let mut state = CycleState::default();
        assert!(p.pre_filter(&mut state, &pod, &snapshot).is_success());
        let r: Vec<Status> = snapshot
            .nodes
            .iter()
            .map(|n| p.filter(&state, &pod, n))
            .collect();
        assert_eq!(r[0], Status::unschedulable(ERR_CONSTRAINTS));
        assert!(r[1].is_success());
        assert_eq!(r[2], Status::unresolvable(ERR_MISSING_LABEL));

        // Preemption's what-if: with w1 gone, zone a is fine again.
        let a1 = snapshot.get("a1").unwrap().clone();
        p.remove_pod(&mut state, &pod, &a1.pods[0], &a1);
        assert!(p.filter(&state, &pod, &a1).is_success());
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let nodes = vec![
            zone("a1", Some("a"), vec![web("w1"), web("w2")]),
            zone("b1", Some("b"), vec![]),
            zone("x", None, vec![]),
        ];
        let p = PodTopologySpread::new(None, &Handle::default()).unwrap();
        let scores = score_all(&p, &spread("ScheduleAnyway"), &nodes);
        assert_eq!(scores[2], 0);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert_eq!(scores[1], 100);
    }

    #[test]
    fn pods_without_constraints_or_owners_are_not_spread() {
        let p = PodTopologySpread::new(None, &Handle::default()).unwrap();
        let mut state = CycleState::default();
        let snapshot = Snapshot::from_nodes(vec![zone("a1", Some("a"), vec![])]);
        assert_eq!(
            p.pre_filter(&mut state, &web("x"), &snapshot).code,
            crate::framework::Code::Skip
        );
        let nodes: Vec<Arc<NodeInfo>> = snapshot.nodes.clone();
        assert_eq!(
            p.pre_score(&mut state, &web("x"), &snapshot, &nodes).code,
            crate::framework::Code::Skip
        );
    }
}
