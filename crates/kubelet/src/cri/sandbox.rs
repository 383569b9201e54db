//! Pod sandboxes: `RunPodSandbox`, `StopPodSandbox` (and removing the pod cgroup the
//! runtime leaves behind), `RemovePodSandbox`, `PodSandboxStatus`, `ListPodSandbox`.

use super::{btree_map, cgroups, error, hash_map, pb, request, CriRuntime};
use crate::runtime::{
    DnsConfig, PodIdentity, PortMapping, Result, RuntimeError, SandboxConfig, SandboxState,
    SandboxStatus,
};

impl CriRuntime {
    pub(super) async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        let response = self
            .runtime_client()
            .run_pod_sandbox(request(pb::RunPodSandboxRequest {
                config: Some(sandbox_config(config)),
                runtime_handler: String::new(),
            }))
            .await
            .map_err(error)?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    /// Stops the sandbox, then removes its pod cgroup: containerd stops the processes but
    /// leaves the (empty) cgroup directories, which would pile up over thousands of pods.
    pub(super) async fn stop_sandbox(&self, sandbox_id: &str) -> Result<()> {
        // Learn the cgroup parent before stopping; a sandbox already gone is stopped.
        let cgroup_parent = match self.verbose_sandbox_status(sandbox_id).await {
            Ok(response) => cgroup_parent_from_info(&response.info),
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self
            .runtime_client()
            .stop_pod_sandbox(request(pb::StopPodSandboxRequest {
                pod_sandbox_id: sandbox_id.to_string(),
            }))
            .await
            .map_err(error)
        {
            Ok(_) | Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(parent) = cgroup_parent {
            if let Err(e) = cgroups::remove_pod_cgroup(&self.cgroup_root, &parent).await {
                tracing::warn!(sandbox = sandbox_id, cgroup = %parent, error = %e, "cannot remove the pod cgroup");
            }
        }
        Ok(())
    }

    pub(super) async fn remove_sandbox(&self, sandbox_id: &str) -> Result<()> {
        match self
            .runtime_client()
            .remove_pod_sandbox(request(pb::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox_id.to_string(),
            }))
            .await
            .map_err(error)
        {
            Ok(_) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn sandbox_status(&self, sandbox_id: &str) -> Result<SandboxStatus> {
        let response = self
            .runtime_client()
            .pod_sandbox_status(request(pb::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                verbose: false,
            }))
            .await
            .map_err(error)?
            .into_inner();
        let status = response
            .status
            .ok_or_else(|| RuntimeError::Other(format!("sandbox {sandbox_id}: empty status")))?;
        Ok(sandbox_status(status))
    }

    async fn verbose_sandbox_status(
        &self,
        sandbox_id: &str,
    ) -> Result<pb::PodSandboxStatusResponse> {
        Ok(self
            .runtime_client()
            .pod_sandbox_status(request(pb::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                verbose: true,
            }))
            .await
            .map_err(error)?
            .into_inner())
    }

    /// Every sandbox; ready ones with their IPs (which only `PodSandboxStatus` reports).
    pub(super) async fn list_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        let items = self
            .runtime_client()
            .list_pod_sandbox(request(pb::ListPodSandboxRequest { filter: None }))
            .await
            .map_err(error)?
            .into_inner()
            .items;
        let statuses = items.into_iter().map(|sandbox| async move {
            if sandbox.state == pb::PodSandboxState::SandboxReady as i32 {
                match self.sandbox_status(&sandbox.id).await {
                    Ok(status) => return Ok(Some(status)),
                    // Removed between the list and the status: not there any more.
                    Err(RuntimeError::NotFound(_)) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            Ok(Some(listed_sandbox(sandbox)))
        });
        let statuses = futures::future::try_join_all(statuses).await?;
        Ok(statuses.into_iter().flatten().collect())
    }
}

/// Our sandbox configuration as CRI's `PodSandboxConfig`.
pub fn sandbox_config(config: &SandboxConfig) -> pb::PodSandboxConfig {
    pb::PodSandboxConfig {
        metadata: Some(metadata(&config.identity)),
        hostname: config.hostname.clone(),
        log_directory: config.log_directory.clone(),
        dns_config: config.dns.as_ref().map(dns_config),
        port_mappings: config.port_mappings.iter().map(port_mapping).collect(),
        labels: hash_map(&config.labels),
        annotations: hash_map(&config.annotations),
        linux: Some(pb::LinuxPodSandboxConfig {
            cgroup_parent: config.cgroup_parent.clone(),
            security_context: Some(pb::LinuxSandboxSecurityContext {
                namespace_options: Some(sandbox_namespaces(config)),
                ..Default::default()
            }),
            sysctls: hash_map(&config.sysctls),
            overhead: None,
            resources: None,
        }),
        windows: None,
    }
}

/// The namespaces of the sandbox: the pod's own network and IPC namespaces unless it
/// uses the host's; the PID namespace is the sandbox's own (upstream's default without
/// `shareProcessNamespace`) unless `hostPID`.
pub(super) fn sandbox_namespaces(config: &SandboxConfig) -> pb::NamespaceOption {
    let mode = |host: bool, own: pb::NamespaceMode| {
        if host {
            pb::NamespaceMode::Node as i32
        } else {
            own as i32
        }
    };
    pb::NamespaceOption {
        network: mode(config.host_network, pb::NamespaceMode::Pod),
        pid: mode(config.host_pid, pb::NamespaceMode::Container),
        ipc: mode(config.host_ipc, pb::NamespaceMode::Pod),
        ..Default::default()
    }
}

fn metadata(identity: &PodIdentity) -> pb::PodSandboxMetadata {
    pb::PodSandboxMetadata {
        name: identity.name.clone(),
        uid: identity.uid.clone(),
        namespace: identity.namespace.clone(),
        attempt: identity.attempt,
    }
}

fn identity(metadata: Option<pb::PodSandboxMetadata>) -> PodIdentity {
    let metadata = metadata.unwrap_or_default();
    PodIdentity {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        attempt: metadata.attempt,
    }
}

fn dns_config(dns: &DnsConfig) -> pb::DnsConfig {
    pb::DnsConfig {
        servers: dns.servers.clone(),
        searches: dns.searches.clone(),
        options: dns.options.clone(),
    }
}

fn port_mapping(port: &PortMapping) -> pb::PortMapping {
    let protocol = match port.protocol.as_str() {
        "UDP" => pb::Protocol::Udp,
        "SCTP" => pb::Protocol::Sctp,
        _ => pb::Protocol::Tcp,
    };
    pb::PortMapping {
        protocol: protocol as i32,
        container_port: port.container_port,
        host_port: port.host_port,
        host_ip: port.host_ip.clone(),
    }
}

fn state(state: i32) -> SandboxState {
    if state == pb::PodSandboxState::SandboxReady as i32 {
        SandboxState::Ready
    } else {
        SandboxState::NotReady
    }
}

/// CRI's sandbox status as ours; the primary IP first.
pub fn sandbox_status(status: pb::PodSandboxStatus) -> SandboxStatus {
    let mut ips = Vec::new();
    if let Some(network) = status.network {
        if !network.ip.is_empty() {
            ips.push(network.ip);
        }
        ips.extend(network.additional_ips.into_iter().map(|ip| ip.ip));
    }
    SandboxStatus {
        id: status.id,
        identity: identity(status.metadata),
        state: state(status.state),
        created_at: status.created_at,
        ips,
        labels: btree_map(status.labels),
    }
}

fn listed_sandbox(sandbox: pb::PodSandbox) -> SandboxStatus {
    SandboxStatus {
        id: sandbox.id,
        identity: identity(sandbox.metadata),
        state: state(sandbox.state),
        created_at: sandbox.created_at,
        ips: Vec::new(),
        labels: btree_map(sandbox.labels),
    }
}

/// The sandbox's cgroup parent from containerd's verbose status (`info["info"]` holds
/// the sandbox's record as JSON, with the config it was created from).
fn cgroup_parent_from_info(info: &std::collections::HashMap<String, String>) -> Option<String> {
    let record: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    let parent = record
        .pointer("/config/linux/cgroup_parent")?
        .as_str()?
        .to_string();
    (!parent.is_empty()).then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config() -> SandboxConfig {
        SandboxConfig {
            identity: PodIdentity {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u-1".into(),
                attempt: 2,
            },
            hostname: "web".into(),
            log_directory: "/var/log/pods/default_web_u-1".into(),
            dns: Some(DnsConfig {
                servers: vec!["10.43.0.10".into()],
                searches: vec!["default.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            port_mappings: vec![
                PortMapping {
                    protocol: "TCP".into(),
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                },
                PortMapping {
                    protocol: "UDP".into(),
                    container_port: 53,
                    host_port: 5353,
                    host_ip: "127.0.0.1".into(),
                },
            ],
            labels: BTreeMap::from([("io.kubernetes.pod.uid".into(), "u-1".into())]),
            cgroup_parent: "/kubepods/burstable/podu-1".into(),
            sysctls: BTreeMap::from([("net.ipv4.ip_unprivileged_port_start".into(), "0".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn sandbox_config_carries_identity_dns_ports_and_cgroup() {
        let cri = sandbox_config(&config());
        let metadata = cri.metadata.unwrap();
        assert_eq!(
            (
                metadata.name.as_str(),
                metadata.namespace.as_str(),
                metadata.uid.as_str(),
                metadata.attempt
            ),
            ("web", "default", "u-1", 2)
        );
        assert_eq!(cri.log_directory, "/var/log/pods/default_web_u-1");
        let dns = cri.dns_config.unwrap();
        assert_eq!(dns.servers, ["10.43.0.10"]);
        assert_eq!(dns.options, ["ndots:5"]);
        assert_eq!(cri.port_mappings.len(), 2);
        assert_eq!(cri.port_mappings[0].protocol, pb::Protocol::Tcp as i32);
        assert_eq!(cri.port_mappings[0].host_port, 8080);
        assert_eq!(cri.port_mappings[1].protocol, pb::Protocol::Udp as i32);
        assert_eq!(cri.port_mappings[1].host_ip, "127.0.0.1");
        assert_eq!(cri.labels["io.kubernetes.pod.uid"], "u-1");
        let linux = cri.linux.unwrap();
        assert_eq!(linux.cgroup_parent, "/kubepods/burstable/podu-1");
        assert_eq!(linux.sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
        let ns = linux.security_context.unwrap().namespace_options.unwrap();
        assert_eq!(ns.network, pb::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, pb::NamespaceMode::Container as i32);
        assert_eq!(ns.ipc, pb::NamespaceMode::Pod as i32);
    }

    #[test]
    fn host_network_pid_and_ipc_use_the_node_namespaces() {
        let mut config = config();
        config.host_network = true;
        config.host_pid = true;
        config.host_ipc = true;
        let ns = sandbox_namespaces(&config);
        assert_eq!(ns.network, pb::NamespaceMode::Node as i32);
        assert_eq!(ns.pid, pb::NamespaceMode::Node as i32);
        assert_eq!(ns.ipc, pb::NamespaceMode::Node as i32);
    }

    #[test]
    fn status_lists_the_primary_ip_first() {
        let status = sandbox_status(pb::PodSandboxStatus {
            id: "s1".into(),
            state: pb::PodSandboxState::SandboxReady as i32,
            created_at: 7,
            network: Some(pb::PodSandboxNetworkStatus {
                ip: "10.42.0.5".into(),
                additional_ips: vec![pb::PodIp {
                    ip: "fd00::5".into(),
                }],
            }),
            ..Default::default()
        });
        assert_eq!(status.state, SandboxState::Ready);
        assert_eq!(status.ips, ["10.42.0.5", "fd00::5"]);
        let not_ready = sandbox_status(pb::PodSandboxStatus {
            state: pb::PodSandboxState::SandboxNotready as i32,
            ..Default::default()
        });
        assert_eq!(not_ready.state, SandboxState::NotReady);
        assert!(not_ready.ips.is_empty());
    }

    #[test]
    fn cgroup_parent_comes_from_the_verbose_record() {
        let info = std::collections::HashMap::from([(
            "info".to_string(),
            r#"{"pid":1,"config":{"linux":{"cgroup_parent":"/kubepods/besteffort/podx"}}}"#
                .to_string(),
        )]);
        assert_eq!(
            cgroup_parent_from_info(&info).as_deref(),
            Some("/kubepods/besteffort/podx")
        );
        assert_eq!(cgroup_parent_from_info(&Default::default()), None);
    }
}
