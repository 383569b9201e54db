//! Runtime configurations built from a pod spec (upstream `kuberuntime_sandbox.go`
//! `generatePodSandboxConfig` and `kuberuntime_container.go` `generateContainerConfig`).
//! Only what needs no host resources is here; volumes, resolved env sources and cgroup
//! limits are the real runtime's additions.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::{ContainerConfig, PodIdentity, PortMapping, SandboxConfig};

/// The sandbox configuration of a pod (attempt = how many sandboxes it had before).
pub fn sandbox_config(pod: &Pod, attempt: u32) -> SandboxConfig {
    let meta = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.clone().unwrap_or_default();
    labels.insert("io.kubernetes.pod.name".into(), name.clone());
    labels.insert("io.kubernetes.pod.namespace".into(), namespace.clone());
    labels.insert("io.kubernetes.pod.uid".into(), uid.clone());
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter_map(|p| {
            p.host_port.filter(|h| *h > 0).map(|host_port| PortMapping {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect();
    SandboxConfig {
        hostname: spec.hostname.clone().unwrap_or_else(|| name.clone()),
        log_directory: format!("/var/log/pods/{namespace}_{name}_{uid}"),
        identity: PodIdentity {
            name,
            namespace,
            uid,
            attempt,
        },
        labels,
        annotations: meta.annotations.clone().unwrap_or_default(),
        host_network: spec.host_network == Some(true),
        host_pid: spec.host_pid == Some(true),
        host_ipc: spec.host_ipc == Some(true),
        port_mappings,
        cgroup_parent: crate::cri::cgroups::pod_cgroup_parent(
            &qos_class(pod),
            &meta.uid.clone().unwrap_or_default(),
        ),
        ..Default::default()
    }
}

/// The pod's QoS class: the API server's `status.qosClass` (set at creation, immutable),
/// else BestEffort when no container asks for CPU or memory, else Burstable.
fn qos_class(pod: &Pod) -> String {
    if let Some(class) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return class;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let asks = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.resources.as_ref().is_some_and(|r| {
                [&r.requests, &r.limits].iter().any(|m| {
                    m.as_ref()
                        .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
                })
            })
        });
    if asks { "Burstable" } else { "BestEffort" }.to_string()
}

/// The container configuration for attempt `attempt` of `container`.
pub fn container_config(pod: &Pod, container: &Container, attempt: u32) -> ContainerConfig {
    let mut labels = BTreeMap::new();
    labels.insert(
        "io.kubernetes.container.name".into(),
        container.name.clone(),
    );
    labels.insert(
        "io.kubernetes.pod.uid".into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "io.kubernetes.container.restartCount".into(),
        attempt.to_string(),
    );
    annotations.insert(
        "io.kubernetes.container.terminationMessagePath".into(),
        container
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into()),
    );
    ContainerConfig {
        name: container.name.clone(),
        attempt,
        image: container.image.clone().unwrap_or_default(),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: container
            .env
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect(),
        labels,
        annotations,
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        ..Default::default()
    }
}
