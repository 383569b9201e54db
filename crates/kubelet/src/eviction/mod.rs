//! The eviction manager (upstream `pkg/kubelet/eviction/eviction_manager.go`): every
//! monitoring interval it observes the node's signals (`memory.available`,
//! `nodefs.available`, `imagefs.available`, inodes, `pid.available`), sets the
//! MemoryPressure/DiskPressure/PIDPressure conditions (kept for the pressure transition
//! period after the last crossing), and while a hard threshold is crossed evicts one pod,
//! ranked by [`rank`]: the pod's status becomes `Failed`/`Evicted` with upstream's message
//! and a `DisruptionTarget` condition, an `Evicted` event is recorded, and the pod worker
//! kills it (a pod never leaves a terminal phase). The node lifecycle controller turns
//! the conditions into `node.kubernetes.io/*-pressure` NoSchedule taints.

pub mod rank;
pub mod signals;
pub mod thresholds;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8rs_client::{EventRecorder, EventType, Informer};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use serde_json::json;

use crate::node::NodeContext;
use crate::stats::{StatsProvider, Summary};
use rank::Candidate;
use signals::{HostSignals, Observations};
use thresholds::{Observation, Threshold};

/// The `reason` of evicted pods and of the event.
pub const REASON: &str = "Evicted";

/// How the eviction manager runs.
#[derive(Clone, Debug)]
pub struct EvictionConfig {
    /// Hard thresholds (`--eviction-hard`).
    pub hard: Vec<Threshold>,
    /// How often signals are observed (upstream's housekeeping interval, 10 s).
    pub monitoring_interval: Duration,
    /// How long a pressure condition stays after the last crossing
    /// (`--eviction-pressure-transition-period`, 5 min).
    pub pressure_transition_period: Duration,
    /// The filesystems observed.
    pub signals: HostSignals,
}

impl EvictionConfig {
    /// Upstream's defaults for a node whose kubelet data is in `nodefs` and images in
    /// `imagefs`.
    pub fn new(nodefs: &Path, imagefs: &Path) -> Self {
        EvictionConfig {
            hard: thresholds::default_hard(),
            monitoring_interval: Duration::from_secs(10),
            pressure_transition_period: Duration::from_secs(300),
            signals: HostSignals {
                nodefs: nodefs.to_path_buf(),
                imagefs: imagefs.to_path_buf(),
            },
        }
    }
}

/// The pressure conditions the node reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodePressure {
    /// MemoryPressure.
    pub memory: bool,
    /// DiskPressure.
    pub disk: bool,
    /// PIDPressure.
    pub pid: bool,
}

/// The thresholds `observations` cross, memory first (upstream `byEvictionPriority`).
pub fn thresholds_met(
    hard: &[Threshold],
    observations: &Observations,
) -> Vec<(Threshold, Observation)> {
    let mut met: Vec<(Threshold, Observation)> = hard
        .iter()
        .filter_map(|t| {
            let o = *observations.get(&t.signal)?;
            t.met(o).then_some((*t, o))
        })
        .collect();
    met.sort_by_key(|(t, _)| t.signal);
    met
}

/// Tracks when each condition's signals were last crossed.
#[derive(Default)]
struct PressureClock {
    last_met: HashMap<&'static str, Instant>,
}

impl PressureClock {
    fn observe(
        &mut self,
        met: &[(Threshold, Observation)],
        now: Instant,
        transition: Duration,
    ) -> NodePressure {
        for (t, _) in met {
            self.last_met.insert(t.signal.condition(), now);
        }
        let on = |c: &str| {
            self.last_met
                .get(c)
                .is_some_and(|at| now.duration_since(*at) < transition)
        };
        NodePressure {
            memory: on("MemoryPressure"),
            disk: on("DiskPressure"),
            pid: on("PIDPressure"),
        }
    }
}

/// Upstream `evictionMessage`.
pub fn eviction_message(
    threshold: &Threshold,
    observed: Observation,
    candidate: &Candidate,
) -> String {
    let resource = threshold.signal.resource();
    let mut message = format!("The node was low on resource: {resource}. ");
    message += &format!(
        "Threshold quantity: {}, available: {}. ",
        threshold.format(threshold.quantity(observed.capacity)),
        threshold.format(observed.available)
    );
    if resource != "memory" {
        return message;
    }
    let spec = candidate.pod.spec.clone().unwrap_or_default();
    for (name, usage) in &candidate.containers {
        let Some(container) = spec.containers.iter().find(|c| &c.name == name) else {
            continue;
        };
        let request = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .map(|q| q.0.clone());
        let request_value = request
            .as_deref()
            .and_then(|q| k8rs_api::quantity::Quantity::parse(q).ok())
            .map_or(0, |q| q.value());
        if *usage > request_value {
            message += &format!(
                "Container {name} was using {}, request is {}, has larger consumption of {resource}. ",
                thresholds::binary_si(*usage),
                request.unwrap_or_else(|| "0".into())
            );
        }
    }
    message
}

/// The candidates for reclaiming `resource`: active, non-critical pods of the node with
/// their usage from `summary`.
fn candidates(
    pods: &[Arc<Pod>],
    summary: &Summary,
    resource: &str,
    skip: &HashSet<String>,
) -> Vec<Candidate> {
    let by_uid: HashMap<&str, &crate::stats::PodStats> = summary
        .pods
        .iter()
        .map(|p| (p.pod_ref.uid.as_str(), p))
        .collect();
    pods.iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            p.metadata.deletion_timestamp.is_none()
                && !matches!(phase, Some("Succeeded" | "Failed"))
                && !rank::is_critical(p)
                && !skip.contains(p.metadata.uid.as_deref().unwrap_or_default())
        })
        .map(|p| {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            let stats = by_uid.get(uid);
            let (usage, containers) = match (resource, stats) {
                ("memory", Some(s)) => (
                    Some(s.memory.working_set_bytes as i64),
                    s.containers
                        .iter()
                        .map(|c| (c.name.clone(), c.memory.working_set_bytes as i64))
                        .collect(),
                ),
                ("ephemeral-storage", Some(_)) => (log_usage(p), Vec::new()),
                _ => (None, Vec::new()),
            };
            Candidate {
                pod: p.clone(),
                usage,
                containers,
            }
        })
        .collect()
}

/// The bytes of a pod's container logs (the part of its ephemeral storage the kubelet
/// writes; upstream adds the writable layers and emptyDir volumes).
fn log_usage(pod: &Pod) -> Option<i64> {
    let m = &pod.metadata;
    let dir = format!(
        "/var/log/pods/{}_{}_{}",
        m.namespace.as_deref()?,
        m.name.as_deref()?,
        m.uid.as_deref()?
    );
    fn size(path: &Path) -> i64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|d| d.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0)
        } else {
            meta.len() as i64
        }
    }
    Some(size(Path::new(&dir)))
}

/// Runs the eviction manager of one node until the process ends. `allocatable_memory`
/// (bytes) enables the `allocatableMemory.available` signal.
pub async fn run(
    ctx: Arc<NodeContext>,
    config: EvictionConfig,
    allocatable_memory: Option<i64>,
    pods: Informer<Pod>,
) {
    let stats = StatsProvider::default();
    let recorder = EventRecorder::new(ctx.client.clone(), "kubelet").with_host(ctx.name.clone());
    let mut clock = PressureClock::default();
    let mut evicted: HashSet<String> = HashSet::new();
    loop {
        tokio::time::sleep(config.monitoring_interval).await;
        let summary = match stats.summary(&ctx.name, ctx.runtime.as_ref()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(node = %ctx.name, error = %e, "eviction manager: failed to get summary stats");
                continue;
            }
        };
        let pods_working_set: i64 = summary
            .pods
            .iter()
            .map(|p| p.memory.working_set_bytes as i64)
            .sum();
        let observations = config.signals.observe(pods_working_set, allocatable_memory);
        let met = thresholds_met(&config.hard, &observations);
        let pressure = clock.observe(&met, Instant::now(), config.pressure_transition_period);
        let changed = {
            let mut current = ctx.pressure.lock().unwrap();
            let changed = *current != pressure;
            *current = pressure;
            changed
        };
        if changed {
            tracing::info!(node = %ctx.name, ?pressure, "eviction manager: node pressure changed");
            ctx.node_changed.notify_one();
        }
        let Some((threshold, observed)) = met.first().copied() else {
            continue;
        };
        tracing::info!(node = %ctx.name, signal = %threshold.signal, available = observed.available, "eviction manager: attempting to reclaim");
        let node_pods: Vec<Arc<Pod>> = pods
            .list()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&ctx.name))
            .collect();
        let live: HashSet<String> = node_pods
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        evicted.retain(|uid| live.contains(uid));
        let resource = threshold.signal.resource();
        let mut ranked = candidates(&node_pods, &summary, resource, &evicted);
        rank::rank(&mut ranked, resource);
        let Some(victim) = ranked.first() else {
            tracing::info!(node = %ctx.name, "eviction manager: unable to evict any pods from the node");
            continue;
        };
        let message = eviction_message(&threshold, observed, victim);
        if evict(&ctx, &recorder, &victim.pod, &message).await {
            evicted.insert(victim.pod.metadata.uid.clone().unwrap_or_default());
        }
    }
}

/// Records the event and fails the pod (upstream `evictPod` with `killPodFunc`'s status
/// function); the pod worker then kills its containers.
async fn evict(ctx: &NodeContext, recorder: &EventRecorder, pod: &Pod, message: &str) -> bool {
    let name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    );
    tracing::info!(pod = %name, %message, "eviction manager: evicting pod");
    recorder.record(pod, EventType::Warning, REASON, message);
    let now = crate::pod::status::time(std::time::SystemTime::now());
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "DisruptionTarget")
        .collect();
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(message.to_string()),
        last_transition_time: Some(now),
        ..Default::default()
    });
    let patch = json!([
        {"op": "test", "path": "/metadata/uid", "value": pod.metadata.uid},
        {"op": "add", "path": "/status/phase", "value": "Failed"},
        {"op": "add", "path": "/status/reason", "value": REASON},
        {"op": "add", "path": "/status/message", "value": message},
        {"op": "add", "path": "/status/conditions", "value": conditions},
    ]);
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}/status",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    );
    match crate::node::json_patch(&ctx.client, &path, &patch).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(pod = %name, error = %e, "eviction manager: failed to evict pod");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::thresholds::Signal;
    use crate::stats::{ContainerStats, MemoryStats, PodReference, PodStats};

    fn pod(name: &str, memory: Option<&str>) -> Arc<Pod> {
        let resources = match memory {
            Some(r) => {
                json!({"requests": {"memory": r, "cpu": "100m"}, "limits": {"memory": r, "cpu": "100m"}})
            }
            None => json!({}),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": resources}]},
                "status": {"phase": "Running"},
            }))
            .unwrap(),
        )
    }

    fn pod_stats(name: &str, bytes: u64) -> PodStats {
        let memory = MemoryStats {
            working_set_bytes: bytes,
            ..Default::default()
        };
        PodStats {
            pod_ref: PodReference {
                name: name.into(),
                namespace: "default".into(),
                uid: format!("uid-{name}"),
            },
            containers: vec![ContainerStats {
                name: "c".into(),
                memory: memory.clone(),
                ..Default::default()
            }],
            memory,
            ..Default::default()
        }
    }

    #[test]
    fn memory_pressure_evicts_best_effort_before_guaranteed_with_upstreams_message() {
        let mi = 1u64 << 20;
        let hard = thresholds::parse_hard("memory.available<100Mi").unwrap();
        let mut obs = Observations::new();
        obs.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 80 << 20,
                capacity: 8 << 30,
            },
        );
        obs.insert(
            Signal::NodeFsAvailable,
            Observation {
                available: 1,
                capacity: 10,
            },
        );
        let met = thresholds_met(&hard, &obs);
        assert_eq!(met.len(), 1, "only configured thresholds count");
        let (threshold, observed) = met[0];

        let guaranteed = pod("guaranteed", Some("200Mi"));
        let best_effort = pod("besteffort", None);
        let mut finished = (*pod("done", None)).clone();
        finished.status.as_mut().unwrap().phase = Some("Failed".into());
        let pods = vec![guaranteed, best_effort, Arc::new(finished)];
        let summary = Summary {
            pods: vec![
                pod_stats("guaranteed", 150 * mi),
                pod_stats("besteffort", 30 * mi),
                pod_stats("done", 500 * mi),
            ],
            ..Default::default()
        };
        let mut ranked = candidates(&pods, &summary, "memory", &HashSet::new());
        assert_eq!(ranked.len(), 2, "terminal pods are not candidates");
        rank::rank(&mut ranked, "memory");
        assert_eq!(ranked[0].pod.metadata.name.as_deref(), Some("besteffort"));
        assert_eq!(
            eviction_message(&threshold, observed, &ranked[0]),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. \
             Container c was using 30Mi, request is 0, has larger consumption of memory. "
        );
        // The Guaranteed pod is within its request: no container blamed.
        assert_eq!(
            eviction_message(&threshold, observed, &ranked[1]),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
        );
        // Once evicted, a pod is not picked again while its status catches up.
        let skip: HashSet<String> = ["uid-besteffort".to_string()].into();
        let again = candidates(&pods, &summary, "memory", &skip);
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn pressure_conditions_outlast_the_crossing_by_the_transition_period() {
        let hard = thresholds::default_hard();
        let mut obs = Observations::new();
        obs.insert(
            Signal::NodeFsAvailable,
            Observation {
                available: 5,
                capacity: 100,
            },
        );
        let mut clock = PressureClock::default();
        let t0 = Instant::now();
        let period = Duration::from_secs(300);
        let p = clock.observe(&thresholds_met(&hard, &obs), t0, period);
        assert_eq!(
            p,
            NodePressure {
                disk: true,
                ..Default::default()
            }
        );
        // Relieved: still reported until the period has passed.
        let p = clock.observe(&[], t0 + Duration::from_secs(299), period);
        assert!(p.disk);
        let p = clock.observe(&[], t0 + Duration::from_secs(300), period);
        assert_eq!(p, NodePressure::default());
        // Percentages of capacity: 15% of imagefs.
        obs.insert(
            Signal::ImageFsAvailable,
            Observation {
                available: 14,
                capacity: 100,
            },
        );
        obs.insert(
            Signal::PidAvailable,
            Observation {
                available: 0,
                capacity: 100,
            },
        );
        let met = thresholds_met(&hard, &obs);
        let signals: Vec<Signal> = met.iter().map(|(t, _)| t.signal).collect();
        assert_eq!(signals, [Signal::NodeFsAvailable, Signal::ImageFsAvailable]);
    }
}
