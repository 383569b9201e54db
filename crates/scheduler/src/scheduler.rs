//! The scheduling loop (upstream's `schedule_one.go`): one pod at a time through the
//! filter and score phases on a snapshot of the cache, then *assume* (the pod counts on
//! its node at once) and bind in a background task, so the next pod is scheduled while
//! the binding is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use k8rs_client::{EventRecorder, EventType, Informer, Informers};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cache::{Cache, Snapshot};
use crate::config::Profile;
use crate::framework::{
    Code, CycleState, FitError, Framework, NodeInfo, Nominated, PodInfo, PostFilterContext,
};
use crate::handlers::{self, scheduler_name, Shared};
use crate::plugins::Handle;
use crate::queue::{QueuedPodInfo, SchedulingQueue};

/// Below this many nodes every node is filtered (`minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never drops below this (`minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
/// Bindings written at once; more wait (the API server's write path is the bottleneck).
const MAX_CONCURRENT_BINDINGS: usize = 64;
/// Upstream's message when the cluster has no nodes.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Upstream's `numFeasibleNodesToFind`: with many nodes, stop filtering once this many
/// fit (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, nodes: usize) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return nodes;
    }
    let pct = match percentage {
        Some(p) => p as usize,
        None => (50usize.saturating_sub(nodes / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    if pct >= 100 {
        return nodes;
    }
    (nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

enum Failure {
    /// No node fits.
    Fit(FitError),
    /// Not the pod's fault (or no nodes at all); `unschedulable` keeps upstream's reason.
    Error {
        message: String,
        unschedulable: bool,
    },
}

/// The scheduler: profiles, queue, cache and the loop.
pub struct Scheduler {
    client: kube::Client,
    informers: Arc<Informers>,
    profiles: Arc<HashMap<String, Arc<Framework>>>,
    queue: Arc<SchedulingQueue>,
    cache: Arc<Mutex<Cache>>,
    recorder: EventRecorder,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    snapshot: Snapshot,
    next_start_node: usize,
    bindings: Arc<Semaphore>,
}

impl Scheduler {
    /// Builds the profiles' plugins and starts the informers.
    pub fn new(client: kube::Client, profiles: Vec<Profile>) -> anyhow::Result<Scheduler> {
        let informers = Informers::new(client.clone());
        let recorder = EventRecorder::new(client.clone(), "default-scheduler");
        let handle = Handle {
            informers: Some(informers.clone()),
            recorder: Some(recorder.clone()),
        };
        let mut frameworks = HashMap::new();
        for p in &profiles {
            frameworks.insert(
                p.scheduler_name.clone(),
                Arc::new(Framework::new(p, &handle)?),
            );
        }
        if frameworks.is_empty() {
            bail!("no scheduling profile");
        }
        Ok(Scheduler {
            pods: informers.get::<Pod>(),
            nodes: informers.get::<Node>(),
            client,
            informers,
            profiles: Arc::new(frameworks),
            queue: Arc::new(SchedulingQueue::new()),
            cache: Arc::new(Mutex::new(Cache::default())),
            recorder,
            snapshot: Snapshot::default(),
            next_start_node: 0,
            bindings: Arc::new(Semaphore::new(MAX_CONCURRENT_BINDINGS)),
        })
    }

    /// Waits for the caches, then schedules until the process ends.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let namespaces = self.informers.get::<Namespace>();
        let shared = Arc::new(Shared {
            queue: self.queue.clone(),
            cache: self.cache.clone(),
            profiles: self.profiles.clone(),
        });
        handlers::register(shared, &self.pods, &self.nodes, &namespaces);
        self.nodes.wait_synced().await;
        self.pods.wait_synced().await;
        tracing::info!(
            profiles = ?self.profiles.keys().collect::<Vec<_>>(),
            "scheduler started"
        );
        let (queue, cache) = (self.queue.clone(), self.cache.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = Instant::now();
                queue.flush(now);
                cache.lock().unwrap().cleanup_expired(now);
            }
        });
        let mut since_yield = 0;
        loop {
            let (pod, cycle) = self.queue.pop().await;
            self.schedule_one(pod, cycle);
            // The loop is CPU-bound while the queue is full; let binding tasks run.
            since_yield += 1;
            if since_yield >= 8 {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }

    fn schedule_one(&mut self, queued: QueuedPodInfo, cycle: u64) {
        let pod = queued.pod.clone();
        let key = pod.key.clone();
        let Some(fwk) = self.profiles.get(scheduler_name(&pod.pod)).cloned() else {
            self.queue.done(&key);
            return;
        };
        // Skip pods deleted, bound or assumed since they were queued.
        let current = self.pods.get(&key);
        let skip = match &current {
            None => true,
            Some(p) => {
                p.metadata.deletion_timestamp.is_some()
                    || p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_ref())
                        .is_some_and(|n| !n.is_empty())
            }
        };
        if skip || self.cache.lock().unwrap().is_assumed(&key) {
            self.queue.done(&key);
            return;
        }
        self.cache
            .lock()
            .unwrap()
            .update_snapshot(&mut self.snapshot);
        let nominated = self.queue.nominated();
        let mut state = CycleState::default();
        let result = self.schedule_pod(&fwk, &mut state, &pod, &nominated);
        match result {
            Ok(node) => self.assume_and_bind(fwk, state, pod, node, cycle),
            Err(Failure::Fit(mut fit)) => {
                let ctx = PostFilterContext {
                    framework: &fwk,
                    snapshot: &self.snapshot,
                    nominated: &nominated,
                    statuses: &fit.statuses,
                };
                let (result, status) = fwk.run_post_filter(&ctx, &state, &pod);
                if let Some(status) = &status {
                    if status.code == Code::Error {
                        tracing::warn!(pod = %key, error = %status.message(), "preemption failed");
                    }
                    if !status.is_success() {
                        fit.post_filter_msg = Some(status.message());
                    }
                }
                let plugins = fit.rejecting_plugins();
                self.handle_failure(
                    &pod,
                    cycle,
                    fit.to_string(),
                    plugins,
                    false,
                    true,
                    result.nominated_node,
                );
            }
            Err(Failure::Error {
                message,
                unschedulable,
            }) => {
                self.handle_failure(
                    &pod,
                    cycle,
                    message,
                    Vec::new(),
                    !unschedulable,
                    unschedulable,
                    None,
                );
            }
        }
    }

    fn schedule_pod(
        &mut self,
        fwk: &Framework,
        state: &mut CycleState,
        pod: &Arc<PodInfo>,
        nominated: &Nominated,
    ) -> Result<String, Failure> {
        let n = self.snapshot.nodes.len();
        if n == 0 {
            return Err(Failure::Error {
                message: NO_NODES_AVAILABLE.to_string(),
                unschedulable: true,
            });
        }
        let status = fwk.run_pre_filter(state, pod, &self.snapshot);
        if !status.is_success() {
            if status.is_rejected() {
                let statuses = self
                    .snapshot
                    .nodes
                    .iter()
                    .map(|node| (node.name().to_string(), status.clone()))
                    .collect();
                return Err(Failure::Fit(FitError {
                    num_all_nodes: n,
                    statuses,
                    pre_filter_msg: Some(status.message()),
                    post_filter_msg: None,
                }));
            }
            return Err(Failure::Error {
                message: format!(
                    "running PreFilter plugin {:?}: {}",
                    status.plugin,
                    status.message()
                ),
                unschedulable: false,
            });
        }

        // A pod nominated by an earlier preemption tries its node first.
        if let Some(name) = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            if let Some(node) = self.snapshot.get(name) {
                if fwk
                    .run_filter_with_nominated(state, pod, node, nominated)
                    .is_success()
                {
                    return Ok(name.to_string());
                }
            }
        }

        let wanted = num_feasible_nodes_to_find(fwk.percentage_of_nodes_to_score, n);
        let mut feasible: Vec<Arc<NodeInfo>> = Vec::with_capacity(wanted.min(n));
        let mut statuses = HashMap::new();
        let mut processed = 0;
        for i in 0..n {
            let node = &self.snapshot.nodes[(self.next_start_node + i) % n];
            processed += 1;
            let status = fwk.run_filter_with_nominated(state, pod, node, nominated);
            if status.is_success() {
                feasible.push(node.clone());
                if feasible.len() >= wanted {
                    break;
                }
            } else if status.code == Code::Error {
                return Err(Failure::Error {
                    message: format!(
                        "running {:?} filter plugin: {}",
                        status.plugin,
                        status.message()
                    ),
                    unschedulable: false,
                });
            } else {
                statuses.insert(node.name().to_string(), status);
            }
        }
        self.next_start_node = (self.next_start_node + processed) % n;
        if feasible.is_empty() {
            return Err(Failure::Fit(FitError {
                num_all_nodes: n,
                statuses,
                pre_filter_msg: None,
                post_filter_msg: None,
            }));
        }
        if feasible.len() == 1 {
            return Ok(feasible[0].name().to_string());
        }
        let scores = fwk
            .run_score(state, pod, &self.snapshot, &feasible)
            .map_err(|s| Failure::Error {
                message: format!("running {:?} score plugin: {}", s.plugin, s.message()),
                unschedulable: false,
            })?;
        Ok(select_host(&feasible, &scores))
    }

    fn assume_and_bind(
        &mut self,
        fwk: Arc<Framework>,
        mut state: CycleState,
        pod: Arc<PodInfo>,
        node: String,
        cycle: u64,
    ) {
        let mut bound = (*pod.pod).clone();
        bound.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
        let assumed = Arc::new(PodInfo::new(Arc::new(bound)));
        self.cache.lock().unwrap().assume(assumed, &node);
        let status = fwk.run_reserve(&mut state, &pod, &node);
        if !status.is_success() {
            self.cache.lock().unwrap().forget(&pod.key);
            self.handle_failure(
                &pod,
                cycle,
                status.message(),
                vec![status.plugin],
                true,
                false,
                None,
            );
            return;
        }
        self.queue.nominate(pod.clone(), None);
        let (client, cache, queue, recorder, permits) = (
            self.client.clone(),
            self.cache.clone(),
            self.queue.clone(),
            self.recorder.clone(),
            self.bindings.clone(),
        );
        let profiles = self.profiles.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let key = pod.key.clone();
            match bind(&client, &pod, &node).await {
                Ok(()) => {
                    cache.lock().unwrap().finish_binding(&key);
                    queue.done(&key);
                    recorder.record(
                        pod.pod.as_ref(),
                        EventType::Normal,
                        "Scheduled",
                        format!(
                            "Successfully assigned {}/{} to {node}",
                            key.namespace, key.name
                        ),
                    );
                }
                Err(e) => {
                    tracing::info!(pod = %key, node, error = %e, "binding rejected");
                    cache.lock().unwrap().forget(&key);
                    fwk.run_unreserve(&mut state, &pod, &node);
                    queue.failed(&key, Vec::new(), cycle, true);
                    // The room the assumed pod held is free again.
                    queue.move_all(|p, plugins| {
                        profiles.get(scheduler_name(&p.pod)).is_some_and(|f| {
                            f.worth_retrying(
                                plugins,
                                crate::framework::ClusterEvent::AssignedPodDelete,
                            )
                        })
                    });
                    recorder.record(
                        pod.pod.as_ref(),
                        EventType::Warning,
                        "FailedScheduling",
                        format!("Binding rejected: {e}"),
                    );
                }
            }
        });
    }

    /// Back to the queue, a `FailedScheduling` event, and the `PodScheduled=False`
    /// condition (plus `nominatedNodeName` after preemption).
    #[allow(clippy::too_many_arguments)]
    fn handle_failure(
        &self,
        pod: &Arc<PodInfo>,
        cycle: u64,
        message: String,
        plugins: Vec<&'static str>,
        error: bool,
        unschedulable: bool,
        nominated_node: Option<String>,
    ) {
        let key = pod.key.clone();
        self.queue.failed(&key, plugins, cycle, error);
        if let Some(node) = &nominated_node {
            self.queue.nominate(pod.clone(), Some(node));
        }
        tracing::debug!(pod = %key, %message, "unable to schedule pod");
        self.recorder.record(
            pod.pod.as_ref(),
            EventType::Warning,
            "FailedScheduling",
            message.clone(),
        );
        let reason = if unschedulable {
            "Unschedulable"
        } else {
            "SchedulerError"
        };
        let Some(current) = self.pods.get(&key) else {
            return;
        };
        let status = current.status.as_ref();
        let existing = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let same_condition = existing.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(&message)
        });
        let old_nominated = status
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let nomination_unchanged = nominated_node.is_none() || nominated_node == old_nominated;
        if same_condition && nomination_unchanged {
            return;
        }
        let transition = existing
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_else(|| Timestamp::now().to_string());
        let mut patch = json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": null, "lastTransitionTime": transition,
        }]}});
        if let Some(node) = nominated_node {
            patch["status"]["nominatedNodeName"] = json!(node);
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        tokio::spawn(async move {
            if let Err(e) = api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                tracing::debug!(pod = %key, error = %e, "cannot update pod status");
            }
        });
    }

    /// The number of pods waiting in the queue (including in flight).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

/// The best-scoring node; ties are broken uniformly at random (reservoir sampling, as
/// upstream's `selectHost`).
fn select_host(nodes: &[Arc<NodeInfo>], scores: &[i64]) -> String {
    let mut best = 0;
    let mut ties = 1;
    for i in 1..nodes.len() {
        if scores[i] > scores[best] {
            best = i;
            ties = 1;
        } else if scores[i] == scores[best] {
            ties += 1;
            if rand::random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name().to_string()
}

/// `POST pods/{name}/binding`.
async fn bind(client: &kube::Client, pod: &PodInfo, node: &str) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), pod.namespace());
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": pod.key.name, "namespace": pod.key.namespace, "uid": pod.pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    api.create_subresource::<_, serde_json::Value>(
        "binding",
        &pod.key.name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 100), 100);
        // 1,000 nodes: 50 - 8 = 42%.
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        // 5,000 nodes: 50 - 40 = 10%.
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        // Very large clusters stop at 5%.
        assert_eq!(num_feasible_nodes_to_find(None, 10000), 500);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 1000), 1000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 1000), 100);
    }
}
