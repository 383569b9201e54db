//! `DefaultPreemption` (PostFilter): when no node fits a pod, find nodes where evicting
//! lower-priority pods would make it fit, pick the node whose victims matter least, evict
//! them gracefully and nominate the node (upstream's `defaultpreemption` and
//! `framework/preemption`).
//!
//! Victims are chosen as upstream does: all lower-priority pods are removed from a copy
//! of the node, then added back most important first, keeping each one the pod still
//! fits beside; pods whose eviction would violate a PodDisruptionBudget are reprieved
//! first. Nodes are compared by PDB violations, then the highest victim priority, the sum
//! of victim priorities, the number of victims, and the latest start time.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8rs_client::{EventRecorder, EventType, Informer, ObjectKey};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::Handle;
use crate::framework::{
    Code, CycleState, FitError, NodeInfo, NodeToStatus, Plugin, PodInfo, PostFilterContext,
    PostFilterPlugin, PostFilterResult, Status,
};
use crate::selectors::Selector;

/// Reason for nodes where evicting pods cannot help.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Reason for nodes without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// At least this share of nodes is tried as candidates…
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
/// …and at least this many.
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

/// A node where preemption would work, with its victims.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// Pods to evict, most important first.
    pub victims: Vec<Arc<PodInfo>>,
    /// How many of them are protected by a PodDisruptionBudget.
    pub pdb_violations: usize,
}

/// How long a victim counts as terminating after its deletion was requested (the
/// informer normally reports it gone long before).
const VICTIM_MEMORY: Duration = Duration::from_secs(60);

/// The plugin.
pub struct DefaultPreemption {
    pdbs: Option<Informer<PodDisruptionBudget>>,
    client: Option<kube::Client>,
    recorder: Option<EventRecorder>,
    /// Victims whose deletion was requested: until the cache drops them they count as
    /// terminating by preemption, so a retried preemptor waits for them instead of
    /// evicting more pods elsewhere (upstream sees `deletionTimestamp` on graceful
    /// victims; pods with no grace period vanish without ever showing it).
    victims: Arc<Mutex<HashMap<ObjectKey, Instant>>>,
}

impl DefaultPreemption {
    /// Uses the handle's client for evictions and its informers for PDBs.
    pub fn new(handle: &Handle) -> DefaultPreemption {
        DefaultPreemption {
            pdbs: handle
                .informers
                .as_ref()
                .map(|i| i.get::<PodDisruptionBudget>()),
            client: handle.informers.as_ref().map(|i| i.client().clone()),
            recorder: handle.recorder.clone(),
            victims: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        "DefaultPreemption"
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

fn preemption_policy_never(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never")
}

/// Deleted by an earlier preemption and still terminating.
fn terminating_by_preemption(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.reason.as_deref() == Some("PreemptionByScheduler")
                })
            })
}

/// Pods not started yet count as starting now (upstream's `GetPodStartTime`); `MAX`
/// keeps comparisons stable within one decision.
fn start_time(pod: &Pod) -> Timestamp {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::MAX)
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important_first(pods: &mut [Arc<PodInfo>]) {
    pods.sort_by_key(|p| (Reverse(p.priority), start_time(&p.pod)));
}

/// Upstream's `filterPodsWithPDBViolation`: splits pods into those whose eviction would
/// exceed a budget's `disruptionsAllowed` and the rest.
fn split_by_pdb(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .map(|s| s.disruptions_allowed)
                .unwrap_or(0)
        })
        .collect();
    let selectors: Vec<Selector> = pdbs
        .iter()
        .map(
            |p| match p.spec.as_ref().and_then(|s| s.selector.as_ref()) {
                Some(sel) if sel != &Default::default() => Selector::from_label_selector(Some(sel)),
                _ => Selector::nothing(),
            },
        )
        .collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if p.labels().is_some_and(|l| !l.is_empty()) {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(p.namespace())
                    || !selectors[i].matches(p.labels())
                {
                    continue;
                }
                let disrupted = pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(&p.key.name));
                if disrupted {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

/// Upstream's `SelectVictimsOnNode`.
pub fn select_victims(
    ctx: &PostFilterContext<'_>,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> Result<Candidate, Status> {
    let fwk = ctx.framework;
    let mut info = node.clone();
    let mut state = state.clone();
    let mut potential: Vec<Arc<PodInfo>> = info
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    for p in &potential {
        info.remove_pod(&p.key);
        fwk.run_pre_filter_remove_pod(&mut state, pod, p, &info);
    }
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    let status = fwk.run_filter_with_nominated(&state, pod, &info, ctx.nominated);
    if !status.is_success() {
        return Err(status);
    }
    more_important_first(&mut potential);
    let (violating, fine) = split_by_pdb(potential, pdbs);
    let mut victims = Vec::new();
    let mut pdb_violations = 0;
    for (p, violates) in violating
        .into_iter()
        .map(|p| (p, true))
        .chain(fine.into_iter().map(|p| (p, false)))
    {
        info.add_pod(p.clone());
        fwk.run_pre_filter_add_pod(&mut state, pod, &p, &info);
        if !fwk
            .run_filter_with_nominated(&state, pod, &info, ctx.nominated)
            .is_success()
        {
            info.remove_pod(&p.key);
            fwk.run_pre_filter_remove_pod(&mut state, pod, &p, &info);
            if violates {
                pdb_violations += 1;
            }
            victims.push(p);
        }
    }
    if victims.is_empty() {
        return Err(Status::error(format!(
            "expected at least one victim pod on node {:?}",
            node.name()
        )));
    }
    Ok(Candidate {
        node: node.name().to_string(),
        victims,
        pdb_violations,
    })
}

fn min_by<'a>(cands: Vec<&'a Candidate>, key: &dyn Fn(&Candidate) -> i128) -> Vec<&'a Candidate> {
    let keyed: Vec<(i128, &'a Candidate)> = cands.into_iter().map(|c| (key(c), c)).collect();
    let best = keyed.iter().map(|(k, _)| *k).min();
    keyed
        .into_iter()
        .filter(|(k, _)| Some(*k) == best)
        .map(|(_, c)| c)
        .collect()
}

/// Upstream's `pickOneNodeForPreemption`.
pub fn pick_one(candidates: &[Candidate]) -> Option<&Candidate> {
    let mut cands: Vec<&Candidate> = candidates.iter().collect();
    cands = min_by(cands, &|c| c.pdb_violations as i128);
    cands = min_by(cands, &|c| {
        c.victims
            .first()
            .map(|v| v.priority as i128)
            .unwrap_or(i128::MIN)
    });
    cands = min_by(cands, &|c| {
        c.victims
            .iter()
            .map(|v| v.priority as i128 + i32::MAX as i128 + 1)
            .sum()
    });
    cands = min_by(cands, &|c| c.victims.len() as i128);
    // The latest start among each node's most important victims wins (evict the youngest).
    cands = min_by(cands, &|c| {
        let top = c.victims.first().map(|v| v.priority);
        let earliest = c
            .victims
            .iter()
            .filter(|v| Some(v.priority) == top)
            .map(|v| start_time(&v.pod).as_nanosecond())
            .min()
            .unwrap_or(0);
        -earliest
    });
    cands.first().copied()
}

impl DefaultPreemption {
    /// Evicts the victims (with the `DisruptionTarget` condition and a `Preempted` event)
    /// and clears lower-priority nominations to the node, in the background.
    fn prepare(&self, pod: &PodInfo, candidate: &Candidate, ctx: &PostFilterContext<'_>) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let preemptor_uid = pod.pod.metadata.uid.clone().unwrap_or_default();
        let scheduler = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or_else(|| crate::config::DEFAULT_SCHEDULER_NAME.to_string());
        {
            let mut victims = self.victims.lock().unwrap();
            let now = Instant::now();
            victims.retain(|_, at| now.duration_since(*at) < VICTIM_MEMORY);
            for v in &candidate.victims {
                victims.insert(v.key.clone(), now);
            }
        }
        for victim in &candidate.victims {
            if let Some(recorder) = &self.recorder {
                recorder.record(
                    victim.pod.as_ref(),
                    EventType::Normal,
                    "Preempted",
                    format!(
                        "Preempted by pod {preemptor_uid} on node {}",
                        candidate.node
                    ),
                );
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), victim.namespace());
            let name = victim.key.name.clone();
            let condition = json!({"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
                "lastTransitionTime": Timestamp::now().to_string(),
            }]}});
            tokio::spawn(async move {
                if let Err(e) = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Strategic(&condition),
                    )
                    .await
                {
                    tracing::debug!(pod = %name, error = %e, "cannot mark preemption victim");
                }
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => tracing::info!(pod = %name, "preempted"),
                    Err(e) => {
                        tracing::warn!(pod = %name, error = %e, "cannot delete preemption victim")
                    }
                }
            });
        }
        for other in ctx.nominated.get(&candidate.node).into_iter().flatten() {
            if other.priority >= pod.priority || other.key == pod.key {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), other.namespace());
            let name = other.key.name.clone();
            tokio::spawn(async move {
                let patch = json!({"status": {"nominatedNodeName": null}});
                if let Err(e) = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::debug!(pod = %name, error = %e, "cannot clear nomination");
                }
            });
        }
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        ctx: &PostFilterContext<'_>,
        state: &CycleState,
        pod: &Arc<PodInfo>,
    ) -> (PostFilterResult, Status) {
        let none = PostFilterResult::default();
        if preemption_policy_never(pod) {
            return (
                none,
                Status::unschedulable("preemption: not eligible due to preemptionPolicy=Never."),
            );
        }
        if let Some(nominated) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            let unresolvable = ctx
                .statuses
                .get(nominated)
                .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable);
            if !unresolvable {
                if let Some(node) = ctx.snapshot.get(nominated) {
                    let victims = self.victims.lock().unwrap();
                    if node.pods.iter().any(|p| {
                        p.priority < pod.priority
                            && (terminating_by_preemption(&p.pod) || victims.contains_key(&p.key))
                    }) {
                        return (
                            none,
                            Status::unschedulable("preemption: not eligible due to a terminating pod on the nominated node."),
                        );
                    }
                }
            }
        }
        let all = &ctx.snapshot.nodes;
        let potential: Vec<&Arc<NodeInfo>> = all
            .iter()
            .filter(|n| {
                ctx.statuses
                    .get(n.name())
                    .is_none_or(|s| s.code != Code::UnschedulableAndUnresolvable)
            })
            .collect();
        let pdbs: Vec<Arc<PodDisruptionBudget>> =
            self.pdbs.as_ref().map(|i| i.list()).unwrap_or_default();
        let mut statuses = NodeToStatus::new();
        let mut candidates = Vec::new();
        if !potential.is_empty() {
            let wanted = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
                .max(MIN_CANDIDATE_NODES_ABSOLUTE)
                .min(potential.len());
            let offset = rand::random_range(0..potential.len());
            let mut non_violating = 0;
            for i in 0..potential.len() {
                let node = potential[(offset + i) % potential.len()];
                match select_victims(ctx, state, pod, node, &pdbs) {
                    Ok(c) => {
                        if c.pdb_violations == 0 {
                            non_violating += 1;
                        }
                        candidates.push(c);
                        if non_violating >= wanted {
                            break;
                        }
                    }
                    Err(status) => {
                        statuses.insert(node.name().to_string(), status);
                    }
                }
            }
        }
        let Some(best) = pick_one(&candidates).cloned() else {
            for n in all {
                statuses
                    .entry(n.name().to_string())
                    .or_insert_with(|| Status::unresolvable(NOT_HELPFUL));
            }
            let fit = FitError {
                num_all_nodes: all.len(),
                statuses,
                ..Default::default()
            };
            return (none, Status::unschedulable(format!("preemption: {fit}")));
        };
        self.prepare(pod, &best, ctx);
        (
            PostFilterResult {
                nominated_node: Some(best.node.clone()),
            },
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Snapshot;
    use crate::config::Profile;
    use crate::framework::Framework;
    use crate::plugins::testing::{named_pod, node_with_pods};
    use serde_json::json;

    fn prio(name: &str, priority: i32, cpu: &str) -> PodInfo {
        named_pod(
            name,
            json!({"app": name}),
            json!({"priority": priority, "containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu}}}]}),
        )
    }

    fn two_cpu(name: &str, pods: Vec<PodInfo>) -> NodeInfo {
        node_with_pods(
            name,
            json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}}),
            pods,
        )
    }

    fn run(
        pod: &PodInfo,
        nodes: Vec<NodeInfo>,
    ) -> (Option<Candidate>, Vec<Candidate>, NodeToStatus) {
        let fwk = Framework::new(&Profile::default_profile(), &Handle::default()).unwrap();
        let snapshot = Snapshot::from_nodes(nodes);
        let nominated = Default::default();
        let mut state = CycleState::default();
        fwk.run_pre_filter(&mut state, pod, &snapshot);
        let statuses: NodeToStatus = snapshot
            .nodes
            .iter()
            .map(|n| (n.name().to_string(), fwk.run_filter(&state, pod, n)))
            .collect();
        let ctx = PostFilterContext {
            framework: &fwk,
            snapshot: &snapshot,
            nominated: &nominated,
            statuses: &statuses,
        };
        let mut cands = Vec::new();
        let mut errs = NodeToStatus::new();
        for n in &snapshot.nodes {
            match select_victims(&ctx, &state, pod, n, &[]) {
                Ok(c) => cands.push(c),
                Err(s) => {
                    errs.insert(n.name().to_string(), s);
                }
            }
        }
        (pick_one(&cands).cloned(), cands, errs)
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        let high = prio("high", 1000, "1500m");
        let nodes = vec![
            two_cpu("n1", vec![prio("a", 10, "1"), prio("b", 10, "1")]),
            two_cpu("n2", vec![prio("c", 5, "1"), prio("d", 500, "1")]),
            two_cpu("n3", vec![prio("e", 2000, "2")]),
        ];
        let (best, cands, errs) = run(&high, nodes);
        assert_eq!(cands.len(), 2);
        assert_eq!(errs["n3"], Status::unresolvable(NO_VICTIMS));
        // n1 needs both (priority 10 each); n2 needs c and d (highest 500) — n1 wins on
        // the highest victim priority.
        let best = best.unwrap();
        assert_eq!(best.node, "n1");
        assert_eq!(best.victims.len(), 2);
    }

    #[test]
    fn reprieves_pods_that_can_stay() {
        let high = prio("high", 1000, "1");
        let (best, _, errs) = run(
            &high,
            vec![two_cpu("n1", vec![prio("a", 10, "1"), prio("b", 20, "1")])],
        );
        assert!(errs.is_empty(), "{errs:?}");
        let best = best.unwrap();
        assert_eq!(best.victims.len(), 1);
        assert_eq!(best.victims[0].key.name, "a");
    }

    #[test]
    fn pdb_protected_pods_are_reprieved_first() {
        let pdb: PodDisruptionBudget =
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "b"}}}, "status": {"disruptionsAllowed": 0,
            "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}))
            .unwrap();
        let (violating, fine) = split_by_pdb(
            vec![Arc::new(prio("a", 10, "1")), Arc::new(prio("b", 10, "1"))],
            &[Arc::new(pdb)],
        );
        assert_eq!(violating[0].key.name, "b");
        assert_eq!(fine[0].key.name, "a");
    }
}
