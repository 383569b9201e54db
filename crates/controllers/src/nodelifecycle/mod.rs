//! The node lifecycle controller (upstream `pkg/controller/nodelifecycle`):
//! - watches each node's health — its Ready heartbeat and its Lease in `kube-node-lease`
//!   — and after `nodeMonitorGracePeriod` (50 s) without either, sets every condition to
//!   `Unknown` ("Kubelet stopped posting node status.") and marks its pods not ready;
//! - taints nodes by condition with NoSchedule (not-ready, unreachable, memory-, disk-,
//!   pid-pressure, network-unavailable, and unschedulable for cordoned nodes);
//! - taints not-ready/unreachable nodes with NoExecute at a rate limited per zone
//!   (0.1 node/s; 0.01 in a large zone that is ≥55 % unhealthy, 0 in a small one; none
//!   when every zone is down — "master disruption mode"), which the taint eviction
//!   controller turns into pod evictions.
//!
//! The grace period can be shortened for tests with `K8RS_NODE_MONITOR_GRACE_PERIOD`
//! (e.g. `10s`).

pub mod taints;
pub mod zones;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8rs_client::{Change, EventRecorder, EventType, ObjectKey, WorkQueue};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};

use crate::{Context, Controller};
use taints::{condition_status, NOT_READY, UNREACHABLE};
use zones::{zone_key, zone_qps, zone_states, RateLimitedQueue};

/// Timings of the controller.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `--node-monitor-grace-period` (50 s).
    pub grace_period: Duration,
    /// `--node-startup-grace-period` (60 s): for nodes that never posted status.
    pub startup_grace_period: Duration,
    /// `--node-monitor-period` (5 s).
    pub monitor_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace_period: Duration::from_secs(50),
            startup_grace_period: Duration::from_secs(60),
            monitor_period: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The defaults, with `K8RS_NODE_MONITOR_GRACE_PERIOD` (`10s`, `500ms`) if set.
    pub fn from_env() -> Self {
        let mut config = Config::default();
        if let Ok(value) = std::env::var("K8RS_NODE_MONITOR_GRACE_PERIOD") {
            match parse_duration(&value) {
                Some(d) if !d.is_zero() => {
                    config.grace_period = d;
                    config.startup_grace_period = config.startup_grace_period.max(d);
                    config.monitor_period = config
                        .monitor_period
                        .min(d / 2)
                        .max(Duration::from_millis(200));
                }
                _ => tracing::warn!(
                    value,
                    "ignoring K8RS_NODE_MONITOR_GRACE_PERIOD: not a duration like 10s"
                ),
            }
        }
        config
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (n, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    n.parse::<f64>()
        .ok()
        .map(|v| Duration::from_secs_f64(v * scale))
}

/// What the controller remembers about a node's health (`nodeHealthData`).
struct Health {
    probe: Instant,
    heartbeat: Option<String>,
    lease: Option<String>,
    ready: Option<String>,
}

#[derive(Default)]
struct State {
    health: HashMap<String, Health>,
    queues: HashMap<String, RateLimitedQueue>,
    disruption_mode: bool,
}

/// The controller.
pub struct NodeLifecycleController {
    ctx: Context,
    config: Config,
    state: Mutex<State>,
    events: EventRecorder,
}

/// Starts the node lifecycle controller.
pub fn start(ctx: &Context, config: Config) -> tokio::task::JoinHandle<()> {
    let controller = Arc::new(NodeLifecycleController {
        ctx: ctx.clone(),
        config,
        state: Mutex::new(State::default()),
        events: EventRecorder::new(ctx.client.clone(), "node-controller"),
    });
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    tokio::spawn(async move {
        nodes.wait_synced().await;
        leases.wait_synced().await;
        pods.wait_synced().await;
        // NoSchedule taints follow every node change at once.
        let queue = WorkQueue::new();
        let handler_queue = queue.clone();
        nodes.add_handler(move |change: &Change<Node>| {
            if let Change::Applied { .. } = change {
                handler_queue.add(ObjectKey::of(change.object().as_ref()));
            }
        });
        let tainter = Arc::new(NoScheduleTainter {
            ctx: controller.ctx.clone(),
        });
        let _workers = crate::controller::run_workers(tainter, queue, 1);
        let monitor = controller.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(monitor.config.monitor_period);
            loop {
                tick.tick().await;
                monitor.monitor_node_health().await;
            }
        });
        // `doNoExecuteTaintingPass` (upstream every 100 ms).
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            controller.no_execute_tainting_pass().await;
        }
    })
}

fn now_time() -> Time {
    Time(Timestamp::now())
}

async fn patch_taints(
    client: &kube::Client,
    node: &Node,
    taints: Vec<k8s_openapi::api::core::v1::Taint>,
) -> kube::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    // The resourceVersion makes it a compare-and-swap: a concurrent change is not lost.
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": taints},
    });
    api.patch(
        node.metadata.name.as_deref().unwrap_or(""),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

impl NodeLifecycleController {
    /// `tryUpdateNodeHealth`: refreshes the probe time from heartbeats and the Lease, and
    /// marks the node Unknown once the grace period has passed. Returns the node's Ready
    /// status as it now stands.
    async fn update_health(
        &self,
        node: &Node,
        lease: Option<&Lease>,
        now: Instant,
    ) -> Option<String> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
        let heartbeat = ready
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        let renew = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string());
        let expired = {
            let mut state = self.state.lock().unwrap();
            let h = state.health.entry(name.clone()).or_insert_with(|| Health {
                probe: now,
                heartbeat: heartbeat.clone(),
                lease: renew.clone(),
                ready: None,
            });
            if heartbeat != h.heartbeat {
                h.heartbeat = heartbeat;
                h.probe = now;
            }
            if renew.is_some() && renew != h.lease {
                h.lease = renew;
                h.probe = now;
            }
            let grace = if ready.is_none() {
                self.config.startup_grace_period
            } else {
                self.config.grace_period
            };
            now.saturating_duration_since(h.probe) > grace
        };
        let status = ready.map(|c| c.status.clone());
        if !expired {
            return status;
        }
        let mut conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let mut changed = false;
        let stamp = now_time();
        for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            match conditions.iter_mut().find(|c| c.type_ == kind) {
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(stamp.clone());
                    changed = true;
                }
                Some(_) => {}
                None => {
                    conditions.push(NodeCondition {
                        type_: kind.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusNeverUpdated".into()),
                        message: Some("Kubelet never posted node status.".into()),
                        last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                        last_transition_time: Some(stamp.clone()),
                    });
                    changed = true;
                }
            }
        }
        if changed {
            let api: Api<Node> = Api::all(self.ctx.client.clone());
            let patch = serde_json::json!({"status": {"conditions": conditions}});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(node = %name, error = %e, "cannot mark node status unknown");
                return status;
            }
            tracing::info!(node = %name, "node stopped posting status; conditions set to Unknown");
            self.events.record(
                node,
                EventType::Normal,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
        }
        Some("Unknown".into())
    }

    /// `MarkPodsNotReady`: the pods of a node that stopped reporting are not ready.
    async fn mark_pods_not_ready(&self, node: &str) {
        let pods = self.ctx.informers.get::<Pod>();
        let on_node =
            pods.filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node));
        for pod in on_node {
            let Some(mut conditions) = pod.status.as_ref().and_then(|s| s.conditions.clone())
            else {
                continue;
            };
            let Some(ready) = conditions.iter_mut().find(|c| c.type_ == "Ready") else {
                continue;
            };
            if ready.status == "False" {
                continue;
            }
            ready.status = "False".into();
            ready.last_transition_time = Some(now_time());
            let api: Api<Pod> = Api::namespaced(
                self.ctx.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let patch = serde_json::json!({"status": {"conditions": conditions}});
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "cannot mark pod not ready");
            }
            self.events.record(
                pod.as_ref(),
                EventType::Warning,
                "NodeNotReady",
                "Node is not ready",
            );
        }
    }

    /// `monitorNodeHealth`.
    async fn monitor_node_health(&self) {
        let now = Instant::now();
        let nodes = self.ctx.informers.get::<Node>().list();
        let leases = self.ctx.informers.get::<Lease>();
        let mut zone_members: Vec<(String, bool)> = vec![];
        let mut seen = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let lease = leases.get(&ObjectKey::new("kube-node-lease", name.clone()));
            let ready = self.update_health(node, lease.as_deref(), now).await;
            let zone = zone_key(node);
            zone_members.push((zone.clone(), ready.as_deref() == Some("True")));
            seen.push(name.clone());
            let was = {
                let mut state = self.state.lock().unwrap();
                let was = state
                    .health
                    .get_mut(&name)
                    .and_then(|h| std::mem::replace(&mut h.ready, ready.clone()));
                let disrupted = state.disruption_mode;
                let queue = state
                    .queues
                    .entry(zone)
                    .or_insert_with(|| RateLimitedQueue::new(now));
                match ready.as_deref() {
                    Some("True") => queue.remove(&name),
                    Some("False") | Some("Unknown") if !disrupted => {
                        let want = if ready.as_deref() == Some("False") {
                            NOT_READY
                        } else {
                            UNREACHABLE
                        };
                        let has = node
                            .spec
                            .as_ref()
                            .and_then(|s| s.taints.as_ref())
                            .is_some_and(|t| {
                                t.iter().any(|t| t.key == want && t.effect == "NoExecute")
                            });
                        if !has {
                            queue.add(&name);
                        }
                    }
                    _ => {}
                }
                was
            };
            // Ready again: the NoExecute taints go at once (`markNodeAsReachable`).
            if ready.as_deref() == Some("True") {
                if let Some(taints) = taints::with_no_execute(node, None, now_time()) {
                    if let Err(e) = patch_taints(&self.ctx.client, node, taints).await {
                        tracing::debug!(node = %name, error = %e, "cannot remove NoExecute taints");
                    }
                }
            }
            if was.as_deref() == Some("True") && ready.as_deref() != Some("True") {
                self.mark_pods_not_ready(&name).await;
            }
        }
        self.handle_disruption(&nodes, &zone_members, now).await;
        let mut state = self.state.lock().unwrap();
        state.health.retain(|name, _| seen.contains(name));
    }

    /// `handleDisruption`: per-zone rates, and master disruption mode.
    async fn handle_disruption(
        &self,
        nodes: &[Arc<Node>],
        members: &[(String, bool)],
        now: Instant,
    ) {
        let (states, all_full) = zone_states(members);
        let (entering, leaving) = {
            let mut state = self.state.lock().unwrap();
            let entering = all_full && !state.disruption_mode;
            let leaving = !all_full && state.disruption_mode;
            state.disruption_mode = all_full;
            for (zone, (zone_state, size)) in &states {
                let queue = state
                    .queues
                    .entry(zone.clone())
                    .or_insert_with(|| RateLimitedQueue::new(now));
                queue.set_qps(
                    if all_full {
                        0.0
                    } else {
                        zone_qps(*zone_state, *size)
                    },
                    now,
                );
            }
            if entering {
                for queue in state.queues.values_mut() {
                    *queue = RateLimitedQueue::new(now);
                    queue.set_qps(0.0, now);
                }
            }
            if leaving {
                // Every node gets a fresh grace period after the outage.
                for h in state.health.values_mut() {
                    h.probe = now;
                }
            }
            (entering, leaving)
        };
        if entering {
            tracing::info!(
                "controller detected that all Nodes are not-Ready; entering master disruption mode"
            );
            for node in nodes {
                if let Some(taints) = taints::with_no_execute(node, None, now_time()) {
                    let _ = patch_taints(&self.ctx.client, node, taints).await;
                }
            }
        }
        if leaving {
            tracing::info!(
                "controller detected that some Nodes are Ready; exiting master disruption mode"
            );
        }
    }

    /// `doNoExecuteTaintingPass`: taints the nodes whose turn came.
    async fn no_execute_tainting_pass(&self) {
        let now = Instant::now();
        let due: Vec<(String, String)> = {
            let mut state = self.state.lock().unwrap();
            if state.disruption_mode {
                return;
            }
            state
                .queues
                .iter_mut()
                .flat_map(|(zone, q)| q.pop_ready(now).into_iter().map(move |n| (zone.clone(), n)))
                .collect()
        };
        let nodes = self.ctx.informers.get::<Node>();
        for (zone, name) in due {
            let Some(node) = nodes.get(&ObjectKey::cluster(name.clone())) else {
                continue;
            };
            let want = match condition_status(&node, "Ready") {
                Some("False") => NOT_READY,
                Some("Unknown") => UNREACHABLE,
                _ => continue,
            };
            let Some(taints) = taints::with_no_execute(&node, Some(want), now_time()) else {
                continue;
            };
            match patch_taints(&self.ctx.client, &node, taints).await {
                Ok(()) => tracing::info!(node = %name, taint = want, "tainted node NoExecute"),
                Err(e) => {
                    tracing::debug!(node = %name, error = %e, "cannot taint node; retrying");
                    let mut state = self.state.lock().unwrap();
                    if let Some(q) = state.queues.get_mut(&zone) {
                        q.add(&name);
                    }
                }
            }
        }
    }
}

/// Keeps a node's NoSchedule condition taints in line with its conditions and
/// `spec.unschedulable` (`doNoScheduleTaintingPass`).
struct NoScheduleTainter {
    ctx: Context,
}

#[async_trait::async_trait]
impl Controller for NoScheduleTainter {
    fn name(&self) -> &'static str {
        "node-lifecycle-controller"
    }

    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let Some(node) = self.ctx.informers.get::<Node>().get(key) else {
            return Ok(());
        };
        let wanted = taints::wanted_no_schedule(&node);
        if let Some(taints) = taints::with_no_schedule(&node, &wanted) {
            patch_taints(&self.ctx.client, &node, taints).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_period_from_the_environment_format() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(Config::default().grace_period, Duration::from_secs(50));
    }
}
