//! `InterPodAffinity`: required pod affinity and anti-affinity of the incoming pod, the
//! required anti-affinity of pods already running (a pod may not land where an existing
//! pod refuses it), and preferred terms of both sides for scoring. Counts are kept per
//! topology pair (`zone=a`), computed once per cycle in PreFilter/PreScore.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::types::{AffinityTerm, WeightedAffinityTerm};
use crate::framework::{
    ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};
use crate::selectors::Labels;

/// Upstream's reasons.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// The incoming pod's anti-affinity.
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Existing pods' anti-affinity.
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

const PRE_FILTER_KEY: &str = "PreFilterInterPodAffinity";
const PRE_SCORE_KEY: &str = "PreScoreInterPodAffinity";

type Pair = (String, String);
type Counts = HashMap<Pair, i64>;

#[derive(Clone, Default)]
struct FilterState {
    existing_anti_affinity: Counts,
    affinity: Counts,
    anti_affinity: Counts,
    namespaces: Arc<HashMap<String, Labels>>,
}

fn bump(counts: &mut Counts, pair: Pair, by: i64) {
    let e = counts.entry(pair.clone()).or_default();
    *e += by;
    if *e == 0 {
        counts.remove(&pair);
    }
}

fn pair_of(node: &NodeInfo, key: &str) -> Option<Pair> {
    node.labels()
        .and_then(|l| l.get(key))
        .map(|v| (key.to_string(), v.clone()))
}

fn matches_all(terms: &[AffinityTerm], pod: &PodInfo, ns: &HashMap<String, Labels>) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(&pod.pod, ns))
}

impl FilterState {
    /// Accounts for `existing` on `node` (`by` = 1) or its removal (`by` = -1).
    fn update(&mut self, pod: &PodInfo, existing: &PodInfo, node: &NodeInfo, by: i64) {
        let ns = self.namespaces.clone();
        for term in &existing.required_anti_affinity {
            if term.matches(&pod.pod, &ns) {
                if let Some(pair) = pair_of(node, &term.topology_key) {
                    bump(&mut self.existing_anti_affinity, pair, by);
                }
            }
        }
        if matches_all(&pod.required_affinity, existing, &ns) {
            for term in &pod.required_affinity {
                if let Some(pair) = pair_of(node, &term.topology_key) {
                    bump(&mut self.affinity, pair, by);
                }
            }
        }
        for term in &pod.required_anti_affinity {
            if term.matches(&existing.pod, &ns) {
                if let Some(pair) = pair_of(node, &term.topology_key) {
                    bump(&mut self.anti_affinity, pair, by);
                }
            }
        }
    }
}

#[derive(Clone, Default)]
struct ScoreState {
    topology_score: HashMap<String, HashMap<String, i64>>,
}

impl ScoreState {
    fn process(
        &mut self,
        terms: &[WeightedAffinityTerm],
        pod: &PodInfo,
        ns: &HashMap<String, Labels>,
        node: &NodeInfo,
        sign: i64,
    ) {
        for t in terms {
            self.process_term(&t.term, t.weight * sign, pod, ns, node);
        }
    }

    fn process_term(
        &mut self,
        term: &AffinityTerm,
        weight: i64,
        pod: &PodInfo,
        ns: &HashMap<String, Labels>,
        node: &NodeInfo,
    ) {
        if term.matches(&pod.pod, ns) {
            if let Some((k, v)) = pair_of(node, &term.topology_key) {
                *self
                    .topology_score
                    .entry(k)
                    .or_default()
                    .entry(v)
                    .or_default() += weight;
            }
        }
    }
}

/// The plugin.
pub struct InterPodAffinity {
    hard_pod_affinity_weight: i64,
    ignore_preferred_terms_of_existing_pods: bool,
}

impl InterPodAffinity {
    /// From `InterPodAffinityArgs`.
    pub fn new(args: Option<&Value>) -> InterPodAffinity {
        InterPodAffinity {
            hard_pod_affinity_weight: args
                .and_then(|a| a.get("hardPodAffinityWeight"))
                .and_then(Value::as_i64)
                .unwrap_or(1),
            ignore_preferred_terms_of_existing_pods: args
                .and_then(|a| a.get("ignorePreferredTermsOfExistingPods"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn events(&self) -> &'static [ClusterEvent] {
        &[
            ClusterEvent::AssignedPodAdd,
            ClusterEvent::AssignedPodUpdate,
            ClusterEvent::AssignedPodDelete,
            ClusterEvent::NodeAdd,
            ClusterEvent::NodeLabelChange,
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

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let own_terms = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        if !own_terms && snapshot.have_pods_with_required_anti_affinity.is_empty() {
            return Status::skip();
        }
        let mut s = FilterState {
            namespaces: snapshot.namespaces.clone(),
            ..Default::default()
        };
        let ns = snapshot.namespaces.clone();
        for node in &snapshot.have_pods_with_required_anti_affinity {
            for existing in &node.pods_with_required_anti_affinity {
                for term in &existing.required_anti_affinity {
                    if term.matches(&pod.pod, &ns) {
                        if let Some(pair) = pair_of(node, &term.topology_key) {
                            bump(&mut s.existing_anti_affinity, pair, 1);
                        }
                    }
                }
            }
        }
        if own_terms {
            for node in &snapshot.nodes {
                for existing in &node.pods {
                    if matches_all(&pod.required_affinity, existing, &ns) {
                        for term in &pod.required_affinity {
                            if let Some(pair) = pair_of(node, &term.topology_key) {
                                bump(&mut s.affinity, pair, 1);
                            }
                        }
                    }
                    for term in &pod.required_anti_affinity {
                        if term.matches(&existing.pod, &ns) {
                            if let Some(pair) = pair_of(node, &term.topology_key) {
                                bump(&mut s.anti_affinity, pair, 1);
                            }
                        }
                    }
                }
            }
        }
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

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(PRE_FILTER_KEY) else {
            return Status::success();
        };
        // Affinity: every term's topology must exist on the node and hold a matching pod,
        // unless no pod matches anywhere and the pod matches its own terms (the first
        // pod of a group that wants to be together).
        let mut pods_exist = true;
        for term in &pod.required_affinity {
            match pair_of(node, &term.topology_key) {
                None => return Status::unresolvable(ERR_AFFINITY),
                Some(pair) => {
                    if s.affinity.get(&pair).copied().unwrap_or(0) <= 0 {
                        pods_exist = false;
                    }
                }
            }
        }
        let first_of_group =
            s.affinity.is_empty() && matches_all(&pod.required_affinity, pod, &s.namespaces);
        if !(pods_exist || first_of_group) {
            return Status::unresolvable(ERR_AFFINITY);
        }
        for term in &pod.required_anti_affinity {
            if let Some(pair) = pair_of(node, &term.topology_key) {
                if s.anti_affinity.get(&pair).copied().unwrap_or(0) > 0 {
                    return Status::unschedulable(ERR_ANTI_AFFINITY);
                }
            }
        }
        if !s.existing_anti_affinity.is_empty() {
            for (k, v) in node.labels().into_iter().flatten() {
                if s.existing_anti_affinity
                    .get(&(k.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
                {
                    return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
                }
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if self.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        let nodes = if has_constraints {
            &snapshot.nodes
        } else {
            &snapshot.have_pods_with_affinity
        };
        if nodes.is_empty() {
            return Status::skip();
        }
        let ns = snapshot.namespaces.clone();
        let mut s = ScoreState::default();
        for node in nodes {
            if node.labels().is_none_or(|l| l.is_empty()) {
                continue;
            }
            let pods = if has_constraints {
                &node.pods
            } else {
                &node.pods_with_affinity
            };
            for existing in pods {
                s.process(&pod.preferred_affinity, existing, &ns, node, 1);
                s.process(&pod.preferred_anti_affinity, existing, &ns, node, -1);
                if self.hard_pod_affinity_weight > 0 {
                    for term in &existing.required_affinity {
                        s.process_term(term, self.hard_pod_affinity_weight, pod, &ns, node);
                    }
                }
                if !self.ignore_preferred_terms_of_existing_pods {
                    s.process(&existing.preferred_affinity, pod, &ns, node, 1);
                    s.process(&existing.preferred_anti_affinity, pod, &ns, node, -1);
                }
            }
        }
        state.write(PRE_SCORE_KEY, s);
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<ScoreState>(PRE_SCORE_KEY) else {
            return 0;
        };
        let labels = node.labels();
        s.topology_score
            .iter()
            .filter_map(|(k, vals)| labels.and_then(|l| l.get(k)).and_then(|v| vals.get(v)))
            .sum()
    }

    fn normalize(&self, state: &CycleState, _: &PodInfo, scores: &mut [i64]) {
        if state
            .read::<ScoreState>(PRE_SCORE_KEY)
            .is_none_or(|s| s.topology_score.is_empty())
        {
            return;
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max > min {
                (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / (max - min) as f64)) as i64
            } else {
                0
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

    fn anti_web(key: &str) -> PodInfo {
        named_pod(
            "new",
            json!({"app": "web"}),
            json!({"containers": [], "affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": key}]}}}),
        )
    }

    fn zone(name: &str, z: &str, pods: Vec<PodInfo>) -> NodeInfo {
        node_with_pods(name, json!({"metadata": {"labels": {"zone": z}}}), pods)
    }

    fn filter(pod: &PodInfo, nodes: &[NodeInfo]) -> Vec<Status> {
        let snapshot = Snapshot::from_nodes(nodes.to_vec());
        let p = InterPodAffinity::new(None);
        let mut state = CycleState::default();
        p.pre_filter(&mut state, pod, &snapshot);
        snapshot
            .nodes
            .iter()
            .map(|n| p.filter(&state, pod, n))
            .collect()
    }

    #[test]
    fn anti_affinity_keeps_one_per_topology() {
        let nodes = [
            zone("n1", "a", vec![web("w1")]),
            zone("n2", "a", vec![]),
            zone("n3", "b", vec![]),
        ];
        let by_host = filter(&anti_web("kubernetes.io/hostname"), &nodes);
        assert_eq!(by_host[0], Status::unschedulable(ERR_ANTI_AFFINITY));
        assert!(by_host[1].is_success() && by_host[2].is_success());
        let by_zone = filter(&anti_web("zone"), &nodes);
        assert!(!by_zone[1].is_success());
        assert!(by_zone[2].is_success());
    }

    #[test]
    fn existing_pods_anti_affinity_is_respected() {
        let mut hermit = anti_web("kubernetes.io/hostname");
        hermit = named_pod(
            "hermit",
            json!({"app": "hermit"}),
            serde_json::to_value(hermit.pod.spec.clone()).unwrap(),
        );
        let nodes = [zone("n1", "a", vec![hermit]), zone("n2", "a", vec![])];
        let s = filter(&web("new"), &nodes);
        assert_eq!(s[0], Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY));
        assert!(s[1].is_success());
    }

    #[test]
    fn affinity_needs_a_matching_pod_unless_it_is_the_first() {
        let with_db = named_pod(
            "app",
            json!({"app": "web"}),
            json!({"containers": [], "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}]}}}),
        );
        let db = named_pod("db", json!({"app": "db"}), json!({"containers": []}));
        let nodes = [
            zone("n1", "a", vec![db]),
            zone("n2", "a", vec![]),
            zone("n3", "b", vec![]),
        ];
        let s = filter(&with_db, &nodes);
        assert!(s[0].is_success() && s[1].is_success());
        assert_eq!(s[2], Status::unresolvable(ERR_AFFINITY));
        // No db anywhere and the pod does not match its own term: nowhere.
        let empty = [zone("n1", "a", vec![])];
        assert!(!filter(&with_db, &empty)[0].is_success());
        // A pod that matches its own term may start the group.
        let selfish = named_pod(
            "s",
            json!({"app": "db"}),
            serde_json::to_value(with_db.pod.spec.clone()).unwrap(),
        );
        assert!(filter(&selfish, &empty)[0].is_success());
    }

    #[test]
    fn preferred_terms_score_topologies() {
        let p = named_pod(
            "new",
            json!({}),
            json!({"containers": [], "affinity": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm":
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}]}}}),
        );
        let nodes = vec![
            zone("n1", "a", vec![web("w")]),
            zone("n2", "a", vec![]),
            zone("n3", "b", vec![]),
        ];
        assert_eq!(
            score_all(&InterPodAffinity::new(None), &p, &nodes),
            vec![100, 100, 0]
        );
    }
}
