//! The node side of the kubelet: registration (`kubelet_node_status.go`
//! `registerWithAPIServer`), node status (`nodestatus/setters.go`, posted when changed or
//! every `nodeStatusReportFrequency`, checked every `nodeStatusUpdateFrequency`) and the
//! node Lease heartbeat (`nodelease/`).

mod lease;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::eviction::NodePressure;
use crate::pod::status::time;
use crate::runtime::Runtime;

/// Upstream's `nodeStatusUpdateFrequency`, `nodeStatusReportFrequency` and
/// `nodeLeaseDurationSeconds`; and the pod resync period.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How often node status is computed and posted if changed (10 s).
    pub status_update: Duration,
    /// How often it is posted even when unchanged (5 min).
    pub status_report: Duration,
    /// How often the Lease is renewed (10 s).
    pub lease_renew: Duration,
    /// `leaseDurationSeconds` (40 s).
    pub lease_duration: Duration,
    /// How often each pod worker re-checks its pod without a change (10 s).
    pub pod_resync: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            status_update: Duration::from_secs(10),
            status_report: Duration::from_secs(300),
            lease_renew: Duration::from_secs(10),
            lease_duration: Duration::from_secs(40),
            pod_resync: Duration::from_secs(10),
        }
    }
}

/// What a node is: name, labels, resources and addresses.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node name (also `kubernetes.io/hostname`).
    pub name: String,
    /// Extra labels (zone, node-role, …); the kubelet adds hostname, os and arch.
    pub labels: BTreeMap<String, String>,
    /// `status.capacity` (`cpu`, `memory`, `pods`, `ephemeral-storage`, …).
    pub capacity: BTreeMap<String, String>,
    /// `status.allocatable`; capacity when empty.
    pub allocatable: BTreeMap<String, String>,
    /// The node's InternalIP (also the pods' hostIP).
    pub address: String,
    /// Whether probes connect over the network (false on hollow nodes).
    pub probe_network: bool,
    /// The kubelet's port (`daemonEndpoints.kubeletEndpoint`).
    pub kubelet_port: i32,
    /// Kernel version, OS image and ids for `nodeInfo`.
    pub kernel_version: String,
    /// `nodeInfo.osImage`.
    pub os_image: String,
    /// `nodeInfo.machineID` / `systemUUID`.
    pub machine_id: String,
    /// Upstream's `--pod-cidr`: registered as the node's `spec.podCIDR` (node IPAM then
    /// keeps it); `None` lets node IPAM assign one.
    pub pod_cidr: Option<String>,
    /// Upstream's `--root-dir`: pod volumes live under `<root>/pods/<uid>/volumes`.
    /// `None` (hollow nodes) runs no volume manager and writes no files.
    pub root_dir: Option<std::path::PathBuf>,
    /// Upstream's `--pod-manifest-path`: a directory of static pod manifests.
    pub pod_manifest_path: Option<std::path::PathBuf>,
    /// The eviction manager's configuration; `None` runs none (hollow nodes).
    pub eviction: Option<crate::eviction::EvictionConfig>,
}

impl NodeConfig {
    /// A node with upstream kubemark's defaults for a hollow node (4 CPUs, 8 GiB memory,
    /// 110 pods).
    pub fn hollow(name: &str, address: &str) -> Self {
        let capacity: BTreeMap<String, String> = [
            ("cpu", "4"),
            ("memory", "8Gi"),
            ("pods", "110"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        NodeConfig {
            name: name.to_string(),
            labels: BTreeMap::new(),
            allocatable: capacity.clone(),
            capacity,
            address: address.to_string(),
            probe_network: false,
            kubelet_port: 10250,
            kernel_version: "hollow".into(),
            os_image: "k8rs hollow node".into(),
            machine_id: format!("{:032x}", fnv(name)),
            pod_cidr: None,
            root_dir: None,
            pod_manifest_path: None,
            eviction: None,
        }
    }
}

fn fnv(s: &str) -> u128 {
    s.bytes()
        .fold(0x6c62272e07bb014262b821756295c58du128, |h, b| {
            (h ^ b as u128).wrapping_mul(0x0000000001000000000000000000013b)
        })
}

/// What pod workers need from their node.
pub struct NodeContext {
    /// Node name.
    pub name: String,
    /// Pods' `hostIP`.
    pub host_ip: String,
    /// The container runtime.
    pub runtime: Arc<dyn Runtime>,
    /// Scheme for container ids (`containerd://…`), the runtime's name once known.
    pub runtime_name: std::sync::OnceLock<String>,
    /// For writes.
    pub client: kube::Client,
    /// Whether network probes connect.
    pub probe_network: bool,
    /// Pod resync period.
    pub resync: Duration,
    /// Woken when the Node object changes (pod CIDR assigned) or the node's pressure
    /// conditions do.
    pub node_changed: Notify,
    /// Pod volumes and the objects env vars read; `None` on hollow nodes.
    pub volumes: Option<Arc<crate::volume::VolumeManager>>,
    /// The node's memory capacity in bytes (Burstable containers' OOM score adjustment).
    pub memory_capacity: i64,
    /// The kubelet's events (`source.component: kubelet`, `source.host`: the node).
    pub events: k8rs_client::EventRecorder,
    /// The pressure conditions the eviction manager observed.
    pub pressure: std::sync::Mutex<crate::eviction::NodePressure>,
}

/// Sends a JSON patch (`application/json-patch+json`) to `path`.
pub(crate) async fn json_patch(
    client: &kube::Client,
    path: &str,
    patch: &Value,
) -> kube::Result<()> {
    let request = http::Request::patch(path)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .header(http::header::ACCEPT, "application/json")
        .body(serde_json::to_vec(patch).unwrap_or_default())
        .map_err(kube::Error::HttpError)?;
    client.request_text(request).await.map(|_| ())
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> NodeCondition {
    NodeCondition {
        type_: kind.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

fn quantities(map: &BTreeMap<String, String>) -> BTreeMap<String, Quantity> {
    map.iter()
        .map(|(k, v)| (k.clone(), Quantity(v.clone())))
        .collect()
}

/// The labels the kubelet sets on its node (`updateDefaultLabels`).
pub fn node_labels(config: &NodeConfig) -> BTreeMap<String, String> {
    let mut labels = config.labels.clone();
    for (k, v) in [
        ("kubernetes.io/hostname", config.name.as_str()),
        ("kubernetes.io/os", std::env::consts::OS),
        ("kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", std::env::consts::OS),
        ("beta.kubernetes.io/arch", go_arch()),
    ] {
        labels.insert(k.into(), v.into());
    }
    labels
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The node status the kubelet wants, with heartbeat and transition times taken from
/// `old` where the condition did not change. Conditions of other writers are kept.
pub fn desired_status(
    config: &NodeConfig,
    runtime_version: &str,
    old: Option<&NodeStatus>,
    pressure: NodePressure,
    now: SystemTime,
) -> NodeStatus {
    let mut status = old.cloned().unwrap_or_default();
    let allocatable = if config.allocatable.is_empty() {
        &config.capacity
    } else {
        &config.allocatable
    };
    status.capacity = Some(quantities(&config.capacity));
    status.allocatable = Some(quantities(allocatable));
    status.addresses = Some(vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: config.address.clone(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: config.name.clone(),
        },
    ]);
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: config.kubelet_port,
        }),
    });
    status.node_info = Some(NodeSystemInfo {
        architecture: go_arch().into(),
        boot_id: String::new(),
        container_runtime_version: runtime_version.into(),
        kernel_version: config.kernel_version.clone(),
        kube_proxy_version: String::new(),
        kubelet_version: crate::KUBELET_VERSION.into(),
        machine_id: config.machine_id.clone(),
        operating_system: std::env::consts::OS.into(),
        os_image: config.os_image.clone(),
        system_uuid: config.machine_id.clone(),
        ..Default::default()
    });
    // Upstream `nodestatus.MemoryPressureCondition` and its disk and PID siblings.
    let ours = [
        if pressure.memory {
            condition(
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            )
        } else {
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            )
        },
        if pressure.disk {
            condition(
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure",
            )
        } else {
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            )
        },
        if pressure.pid {
            condition(
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            )
        } else {
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )
        },
        condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let old_conditions = status.conditions.take().unwrap_or_default();
    let now = time(now);
    let mut conditions: Vec<NodeCondition> = old_conditions
        .iter()
        .filter(|c| !ours.iter().any(|o| o.type_ == c.type_))
        .cloned()
        .collect();
    for mut c in ours {
        let previous = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match previous {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
        c.last_heartbeat_time = previous
            .and_then(|p| p.last_heartbeat_time.clone())
            .or(Some(now.clone()));
        conditions.push(c);
    }
    status.conditions = Some(conditions);
    status
}

/// Whether two statuses differ in anything but heartbeat times.
fn differs(a: &NodeStatus, b: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        serde_json::to_value(s).unwrap_or_default()
    };
    strip(a) != strip(b)
}

/// One node agent's node loop: register, then keep the status and Lease fresh. `current`
/// reads the Node from the shared informer.
pub async fn run_node(
    ctx: Arc<NodeContext>,
    config: NodeConfig,
    timings: Timings,
    current: impl Fn() -> Option<Arc<Node>> + Send + Sync + 'static,
    registration: Arc<tokio::sync::Semaphore>,
) {
    let (name, version) = ctx
        .runtime
        .version()
        .await
        .unwrap_or_else(|_| ("unknown".into(), "0".into()));
    let runtime_version = format!("{name}://{version}");
    let _ = ctx.runtime_name.set(name);
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    // Register, retrying as upstream (7 s between attempts at most).
    let mut delay = Duration::from_millis(100);
    let uid = loop {
        let permit = registration.acquire().await;
        let result = register(&nodes, &config, &runtime_version).await;
        drop(permit);
        match result {
            Ok(uid) => break uid,
            Err(e) => {
                tracing::warn!(node = %config.name, error = %e, "unable to register node with API server");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(7));
            }
        }
    };
    tokio::spawn(lease::run(
        ctx.client.clone(),
        config.name.clone(),
        uid,
        timings,
    ));

    let mut last_report: Option<Instant> = None;
    let mut pod_cidr = String::new();
    loop {
        let node = current();
        if let Some(cidr) = node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.pod_cidr.clone())
        {
            if cidr != pod_cidr && ctx.runtime.update_runtime_config(&cidr).await.is_ok() {
                pod_cidr = cidr;
            }
        }
        let old = node.as_ref().and_then(|n| n.status.as_ref());
        let pressure = *ctx.pressure.lock().unwrap();
        let mut want = desired_status(&config, &runtime_version, old, pressure, SystemTime::now());
        let due = last_report.is_none_or(|t| t.elapsed() >= timings.status_report);
        if node.is_some() && (due || old.is_none_or(|old| differs(old, &want))) {
            let now = time(SystemTime::now());
            for c in want.conditions.iter_mut().flatten() {
                if matches!(
                    c.type_.as_str(),
                    "MemoryPressure" | "DiskPressure" | "PIDPressure" | "Ready"
                ) {
                    c.last_heartbeat_time = Some(now.clone());
                }
            }
            let patch = json!([{"op": "replace", "path": "/status", "value": want}]);
            match json_patch(
                &ctx.client,
                &format!("/api/v1/nodes/{}/status", config.name),
                &patch,
            )
            .await
            {
                Ok(()) => last_report = Some(Instant::now()),
                Err(e) => {
                    tracing::debug!(node = %config.name, error = %e, "error updating node status, will retry")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(timings.status_update) => {}
            _ = ctx.node_changed.notified() => {}
        }
    }
}

/// Creates the Node, or adopts the existing one (refreshing the kubelet's labels);
/// returns its uid.
async fn register(
    nodes: &Api<Node>,
    config: &NodeConfig,
    runtime_version: &str,
) -> kube::Result<String> {
    let node = Node {
        metadata: kube::api::ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(node_labels(config)),
            annotations: Some(
                [(
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::NodeSpec {
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: config.pod_cidr.clone().map(|cidr| vec![cidr]),
            ..Default::default()
        }),
        status: Some(desired_status(
            config,
            runtime_version,
            None,
            NodePressure::default(),
            SystemTime::now(),
        )),
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(n) => Ok(n.metadata.uid.unwrap_or_default()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({"metadata": {"labels": node_labels(config)}});
            let n = nodes
                .patch(&config.name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            Ok(n.metadata.uid.unwrap_or_default())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_keeps_transition_times_and_foreign_conditions() {
        let config = NodeConfig::hollow("h1", "10.0.0.1");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = desired_status(&config, "hollow://0.1.0", None, NodePressure::default(), t0);
        let kinds: Vec<_> = first
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            kinds,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        assert_eq!(first.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(
            first.node_info.as_ref().unwrap().container_runtime_version,
            "hollow://0.1.0"
        );

        // The lifecycle controller marked it Unknown and added its own condition.
        let mut seen = first.clone();
        for c in seen.conditions.iter_mut().flatten() {
            c.status = "Unknown".into();
        }
        seen.conditions.as_mut().unwrap().push(NodeCondition {
            type_: "NetworkUnavailable".into(),
            status: "False".into(),
            ..Default::default()
        });
        let later = t0 + Duration::from_secs(100);
        let next = desired_status(
            &config,
            "hollow://0.1.0",
            Some(&seen),
            NodePressure::default(),
            later,
        );
        assert!(differs(&seen, &next));
        let ready = next
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_transition_time, Some(time(later)));
        assert!(next
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "NetworkUnavailable"));
        // Unchanged: nothing to post.
        let again = desired_status(
            &config,
            "hollow://0.1.0",
            Some(&first),
            NodePressure::default(),
            later,
        );
        assert!(!differs(&first, &again));
        assert_eq!(
            again.conditions.unwrap()[3].last_transition_time,
            Some(time(t0))
        );
    }

    #[test]
    fn pressure_sets_upstreams_conditions() {
        let config = NodeConfig::hollow("h1", "10.0.0.1");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let pressure = NodePressure {
            memory: true,
            disk: false,
            pid: true,
        };
        let status = desired_status(&config, "x://1", None, pressure, t0);
        let get = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind)
                .cloned()
                .unwrap()
        };
        let memory = get("MemoryPressure");
        assert_eq!(memory.status, "True");
        assert_eq!(
            memory.reason.as_deref(),
            Some("KubeletHasInsufficientMemory")
        );
        assert_eq!(get("DiskPressure").status, "False");
        assert_eq!(
            get("PIDPressure").reason.as_deref(),
            Some("KubeletHasInsufficientPID")
        );
        assert_eq!(get("Ready").status, "True");
    }

    #[test]
    fn default_labels() {
        let mut config = NodeConfig::hollow("h1", "10.0.0.1");
        config
            .labels
            .insert("topology.kubernetes.io/zone".into(), "a".into());
        let labels = node_labels(&config);
        assert_eq!(labels["kubernetes.io/hostname"], "h1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["topology.kubernetes.io/zone"], "a");
    }
}
