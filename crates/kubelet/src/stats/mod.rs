//! The kubelet's stats summary (`/stats/summary`, upstream `k8s.io/kubelet/pkg/apis/stats/v1alpha1`
//! `Summary`), computed from the runtime's container stats: served over HTTP by
//! `server/stats.rs` (with the node's own CPU and memory from `/proc`, [`host`]), read
//! by hollow nodes ([`crate::NodeAgent::summary`]) and by the eviction manager; the
//! metrics API and `kubectl top` read it.
//!
//! CPU rates come from the previous summary's reading of each container (and of the
//! node); a first reading gives the average since the container started (or the boot).

pub mod host;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::runtime::{ContainerState, Result, Runtime, SandboxState};

/// CPU usage (`CPUStats`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    /// RFC 3339 sample time.
    pub time: String,
    /// Average usage since the previous sample, in nanocores.
    pub usage_nano_cores: u64,
    /// Cumulative usage.
    pub usage_core_nano_seconds: u64,
}

/// Memory usage (`MemoryStats`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    /// RFC 3339 sample time.
    pub time: String,
    /// Available memory (the node only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    /// Total usage (the node only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// Working set.
    pub working_set_bytes: u64,
    /// Resident set (the node only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Page faults (the node only; not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    /// Major page faults (the node only; not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
}

/// One container (`ContainerStats`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    /// Container name.
    pub name: String,
    /// When it started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// CPU.
    pub cpu: CpuStats,
    /// Memory.
    pub memory: MemoryStats,
}

/// Which pod (`PodReference`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PodReference {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Uid.
    pub uid: String,
}

/// One pod (`PodStats`): its containers and their sums.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    /// Which pod.
    pub pod_ref: PodReference,
    /// When its sandbox was created (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Containers.
    pub containers: Vec<ContainerStats>,
    /// Sum over containers.
    pub cpu: CpuStats,
    /// Sum over containers.
    pub memory: MemoryStats,
}

/// The node (`NodeStats`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// Node name.
    pub node_name: String,
    /// System containers (none reported).
    pub system_containers: Vec<serde_json::Value>,
    /// Boot time (RFC 3339; real nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// The node's usage from `/proc` on real nodes; the sum over pods on hollow ones
    /// (no system overhead).
    pub cpu: CpuStats,
    /// As `cpu`.
    pub memory: MemoryStats,
}

/// `Summary`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The node.
    pub node: NodeStats,
    /// Its pods.
    pub pods: Vec<PodStats>,
}

/// Computes summaries, keeping the previous CPU sample per container for rates.
#[derive(Default)]
pub struct StatsProvider {
    previous: Mutex<HashMap<String, (u64, i64)>>,
}

/// The key node-level CPU readings are kept under.
const NODE_KEY: &str = "";

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl StatsProvider {
    /// The summary of a real node: pods from `runtime`, the node's CPU and memory from
    /// `/proc` ([`host`]).
    pub async fn summary_with_host(
        &self,
        node_name: &str,
        runtime: &dyn Runtime,
    ) -> Result<Summary> {
        let mut summary = self.summary(node_name, runtime).await?;
        let node = &mut summary.node;
        let now = now_nanos();
        node.start_time = host::boot_time()
            .and_then(|boot| chrono::DateTime::from_timestamp(boot, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        if let Some(cpu) = host::cpu_ns() {
            let mut previous = self.previous.lock().unwrap();
            let since = match previous.get(NODE_KEY) {
                Some(&(cpu, at)) if now > at => Some((cpu, at)),
                _ => host::boot_time().map(|b| (0, b * 1_000_000_000)),
            };
            let rate = since.map_or(0, |(prev, at)| {
                (cpu.saturating_sub(prev) as u128 * 1_000_000_000 / (now - at).max(1) as u128)
                    as u64
            });
            previous.insert(NODE_KEY.to_string(), (cpu, now));
            node.cpu = CpuStats {
                time: rfc3339(now),
                usage_nano_cores: rate,
                usage_core_nano_seconds: cpu,
            };
        }
        if let Some(m) = host::memory() {
            node.memory = MemoryStats {
                time: rfc3339(now),
                available_bytes: Some(m.available),
                usage_bytes: Some(m.total - m.free),
                working_set_bytes: m.total - m.available,
                rss_bytes: Some(m.total - m.available),
                page_faults: Some(0),
                major_page_faults: Some(0),
            };
        }
        Ok(summary)
    }

    /// The summary of everything `runtime` runs on node `node_name`: running containers
    /// of ready sandboxes, the node as their sum.
    pub async fn summary(&self, node_name: &str, runtime: &dyn Runtime) -> Result<Summary> {
        let stats = runtime.container_stats().await?;
        let containers = runtime.list_containers(None).await?;
        let sandboxes = runtime.list_pod_sandboxes().await?;
        let by_id: HashMap<&str, _> = containers.iter().map(|c| (c.id.as_str(), c)).collect();
        let sandbox_by_id: HashMap<&str, _> =
            sandboxes.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut previous = self.previous.lock().unwrap();
        let mut pods: HashMap<String, PodStats> = HashMap::new();
        let mut node = NodeStats {
            node_name: node_name.to_string(),
            ..Default::default()
        };
        let mut seen = HashMap::new();
        if let Some(node) = previous.get(NODE_KEY) {
            seen.insert(NODE_KEY.to_string(), *node);
        }
        for s in &stats {
            let Some(c) = by_id
                .get(s.id.as_str())
                .filter(|c| c.state == ContainerState::Running)
            else {
                continue;
            };
            let Some(sandbox) = sandbox_by_id
                .get(c.sandbox_id.as_str())
                .filter(|s| s.state == SandboxState::Ready)
            else {
                continue;
            };
            let rate = match previous.get(&s.id) {
                Some((cpu, at)) if s.timestamp > *at => {
                    ((s.cpu_usage_core_nanoseconds.saturating_sub(*cpu)) as u128 * 1_000_000_000
                        / (s.timestamp - at) as u128) as u64
                }
                _ => {
                    // First sample: the average since the container started.
                    let ran = (s.timestamp - c.started_at).max(1) as u128;
                    (s.cpu_usage_core_nanoseconds as u128 * 1_000_000_000 / ran) as u64
                }
            };
            seen.insert(s.id.clone(), (s.cpu_usage_core_nanoseconds, s.timestamp));
            let time = rfc3339(s.timestamp);
            let container = ContainerStats {
                name: c.name.clone(),
                start_time: Some(rfc3339(if c.started_at > 0 {
                    c.started_at
                } else {
                    c.created_at
                })),
                cpu: CpuStats {
                    time: time.clone(),
                    usage_nano_cores: rate,
                    usage_core_nano_seconds: s.cpu_usage_core_nanoseconds,
                },
                memory: MemoryStats {
                    time: time.clone(),
                    working_set_bytes: s.memory_working_set_bytes,
                    ..Default::default()
                },
            };
            let pod = pods
                .entry(sandbox.identity.uid.clone())
                .or_insert_with(|| PodStats {
                    pod_ref: PodReference {
                        name: sandbox.identity.name.clone(),
                        namespace: sandbox.identity.namespace.clone(),
                        uid: sandbox.identity.uid.clone(),
                    },
                    start_time: Some(rfc3339(sandbox.created_at)),
                    ..Default::default()
                });
            for (sum, n) in [
                (&mut pod.cpu, &container.cpu),
                (&mut node.cpu, &container.cpu),
            ] {
                sum.time = n.time.clone();
                sum.usage_nano_cores += n.usage_nano_cores;
                sum.usage_core_nano_seconds += n.usage_core_nano_seconds;
            }
            for sum in [&mut pod.memory, &mut node.memory] {
                sum.time = time.clone();
                sum.working_set_bytes += s.memory_working_set_bytes;
            }
            pod.containers.push(container);
        }
        *previous = seen;
        let mut pods: Vec<PodStats> = pods.into_values().collect();
        pods.sort_by(|a, b| {
            (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
        });
        Ok(Summary { node, pods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hollow::{HollowOptions, HollowRuntime};
    use crate::runtime::{ContainerConfig, PodIdentity, SandboxConfig};

    #[tokio::test]
    async fn hollow_pods_report_synthetic_usage_per_pod() {
        let rt = HollowRuntime::new(HollowOptions::default());
        rt.update_runtime_config("10.42.0.0/24").await.unwrap();
        let sandbox = SandboxConfig {
            identity: PodIdentity {
                name: "p".into(),
                namespace: "ns".into(),
                uid: "u".into(),
                attempt: 0,
            },
            ..Default::default()
        };
        let s = rt.run_pod_sandbox(&sandbox).await.unwrap();
        for name in ["a", "b"] {
            let config = ContainerConfig {
                name: name.into(),
                ..Default::default()
            };
            let c = rt.create_container(&s, &config, &sandbox).await.unwrap();
            rt.start_container(&c).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let provider = StatsProvider::default();
        let summary = provider.summary("n1", &rt).await.unwrap();
        assert_eq!(summary.pods.len(), 1);
        let pod = &summary.pods[0];
        assert_eq!((pod.pod_ref.name.as_str(), pod.containers.len()), ("p", 2));
        assert!(pod.memory.working_set_bytes >= 8 << 20);
        assert!(pod.cpu.usage_nano_cores > 0);
        assert_eq!(
            summary.node.memory.working_set_bytes,
            pod.memory.working_set_bytes
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert!(json["pods"][0]["podRef"]["uid"].is_string());
        assert!(json["node"]["cpu"]["usageNanoCores"].is_number());
    }
}
