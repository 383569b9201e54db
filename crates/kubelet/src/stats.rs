//! The kubelet's stats summary (`/stats/summary`, upstream `k8s.io/kubelet/pkg/apis/stats/v1alpha1`
//! `Summary`), computed from the runtime's container stats. Served over HTTP later; the
//! metrics API and `kubectl top` read it.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::runtime::{Result, Runtime};

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
    /// Working set.
    pub working_set_bytes: u64,
}

/// One container (`ContainerStats`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    /// Container name.
    pub name: String,
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
    /// Sum over pods (hollow nodes have no system overhead).
    pub cpu: CpuStats,
    /// Sum over pods.
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

fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl StatsProvider {
    /// The summary of everything `runtime` runs on node `node_name`.
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
        for s in &stats {
            let Some(c) = by_id.get(s.id.as_str()) else {
                continue;
            };
            let Some(sandbox) = sandbox_by_id.get(c.sandbox_id.as_str()) else {
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
                cpu: CpuStats {
                    time: time.clone(),
                    usage_nano_cores: rate,
                    usage_core_nano_seconds: s.cpu_usage_core_nanoseconds,
                },
                memory: MemoryStats {
                    time: time.clone(),
                    working_set_bytes: s.memory_working_set_bytes,
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
