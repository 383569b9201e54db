//! Containers: `CreateContainer`, `StartContainer`, `StopContainer`, `RemoveContainer`,
//! `ContainerStatus`, `ListContainers`.

use std::time::Duration;

use super::sandbox::{sandbox_config, sandbox_namespaces};
use super::{btree_map, error, hash_map, pb, request, with_timeout, CriRuntime, REQUEST_TIMEOUT};
use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, LinuxResources, Mount, Result, RuntimeError,
    SandboxConfig,
};

impl CriRuntime {
    pub(super) async fn create(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &SandboxConfig,
    ) -> Result<String> {
        let response = self
            .runtime_client()
            .create_container(request(pb::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(container_config(config, sandbox)),
                sandbox_config: Some(sandbox_config(sandbox)),
            }))
            .await
            .map_err(error)?;
        Ok(response.into_inner().container_id)
    }

    pub(super) async fn start(&self, container_id: &str) -> Result<()> {
        self.runtime_client()
            .start_container(request(pb::StartContainerRequest {
                container_id: container_id.to_string(),
            }))
            .await
            .map_err(error)?;
        Ok(())
    }

    /// SIGTERM (or the image's stop signal), SIGKILL after `timeout`. The call's own
    /// deadline leaves room for the grace period.
    pub(super) async fn stop(&self, container_id: &str, timeout: Duration) -> Result<()> {
        match self
            .runtime_client()
            .stop_container(with_timeout(
                pb::StopContainerRequest {
                    container_id: container_id.to_string(),
                    timeout: timeout.as_secs() as i64,
                },
                timeout + REQUEST_TIMEOUT,
            ))
            .await
            .map_err(error)
        {
            Ok(_) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn remove(&self, container_id: &str) -> Result<()> {
        match self
            .runtime_client()
            .remove_container(request(pb::RemoveContainerRequest {
                container_id: container_id.to_string(),
            }))
            .await
            .map_err(error)
        {
            Ok(_) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One container's status. CRI's `ContainerStatus` does not name the sandbox, so the
    /// sandbox id comes from `ListContainers` filtered by id.
    pub(super) async fn status(&self, container_id: &str) -> Result<ContainerStatus> {
        let listed = self
            .runtime_client()
            .list_containers(request(pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    id: container_id.to_string(),
                    ..Default::default()
                }),
            }))
            .await
            .map_err(error)?
            .into_inner()
            .containers;
        let sandbox_id = listed
            .into_iter()
            .find(|c| c.id == container_id)
            .map(|c| c.pod_sandbox_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {container_id}")))?;
        self.status_in(container_id, sandbox_id).await
    }

    async fn status_in(&self, container_id: &str, sandbox_id: String) -> Result<ContainerStatus> {
        let status = self
            .runtime_client()
            .container_status(request(pb::ContainerStatusRequest {
                container_id: container_id.to_string(),
                verbose: false,
            }))
            .await
            .map_err(error)?
            .into_inner()
            .status
            .ok_or_else(|| {
                RuntimeError::Other(format!("container {container_id}: empty status"))
            })?;
        Ok(container_status(status, sandbox_id))
    }

    /// Ids, pod uids and states from one `ListContainers` (no per-container status).
    pub(super) async fn list_states(&self) -> Result<Vec<(String, String, ContainerState)>> {
        let listed = self
            .runtime_client()
            .list_containers(request(pb::ListContainersRequest { filter: None }))
            .await
            .map_err(error)?
            .into_inner()
            .containers;
        Ok(listed
            .into_iter()
            .map(|c| {
                let uid = c
                    .labels
                    .get("io.kubernetes.pod.uid")
                    .cloned()
                    .unwrap_or_default();
                (c.id, uid, state(c.state))
            })
            .collect())
    }

    /// Full statuses (exit codes, times, reasons) of every container, or of one sandbox's.
    pub(super) async fn list(&self, sandbox_id: Option<&str>) -> Result<Vec<ContainerStatus>> {
        let listed = self
            .runtime_client()
            .list_containers(request(pb::ListContainersRequest {
                filter: Some(pb::ContainerFilter {
                    pod_sandbox_id: sandbox_id.unwrap_or_default().to_string(),
                    ..Default::default()
                }),
            }))
            .await
            .map_err(error)?
            .into_inner()
            .containers;
        let statuses = listed.into_iter().map(|c| async move {
            match self.status_in(&c.id, c.pod_sandbox_id).await {
                Ok(status) => Ok(Some(status)),
                // Removed between the list and the status.
                Err(RuntimeError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let statuses = futures::future::try_join_all(statuses).await?;
        Ok(statuses.into_iter().flatten().collect())
    }
}

/// Our container configuration as CRI's `ContainerConfig`. The sandbox decides the
/// namespaces the container joins.
pub fn container_config(config: &ContainerConfig, sandbox: &SandboxConfig) -> pb::ContainerConfig {
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata {
            name: config.name.clone(),
            attempt: config.attempt,
        }),
        image: Some(pb::ImageSpec {
            image: config.image.clone(),
            ..Default::default()
        }),
        command: config.command.clone(),
        args: config.args.clone(),
        working_dir: config.working_dir.clone(),
        envs: config
            .envs
            .iter()
            .map(|(key, value)| pb::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        mounts: config.mounts.iter().map(mount).collect(),
        labels: hash_map(&config.labels),
        annotations: hash_map(&config.annotations),
        log_path: config.log_path.clone(),
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        tty: config.tty,
        linux: Some(pb::LinuxContainerConfig {
            resources: Some(resources(&config.resources)),
            security_context: Some(pb::LinuxContainerSecurityContext {
                privileged: config.privileged,
                namespace_options: Some(sandbox_namespaces(sandbox)),
                run_as_user: config.run_as_user.map(|value| pb::Int64Value { value }),
                run_as_group: config.run_as_group.map(|value| pb::Int64Value { value }),
                readonly_rootfs: config.readonly_rootfs,
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn mount(mount: &Mount) -> pb::Mount {
    pb::Mount {
        container_path: mount.container_path.clone(),
        host_path: mount.host_path.clone(),
        readonly: mount.readonly,
        propagation: pb::MountPropagation::PropagationPrivate as i32,
        ..Default::default()
    }
}

/// cgroup limits; zero means "unset" in both our type and CRI's.
pub fn resources(resources: &LinuxResources) -> pb::LinuxContainerResources {
    pb::LinuxContainerResources {
        cpu_period: resources.cpu_period,
        cpu_quota: resources.cpu_quota,
        cpu_shares: resources.cpu_shares,
        memory_limit_in_bytes: resources.memory_limit_in_bytes,
        oom_score_adj: resources.oom_score_adj,
        ..Default::default()
    }
}

fn state(state: i32) -> ContainerState {
    match pb::ContainerState::try_from(state) {
        Ok(pb::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(pb::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(pb::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

/// CRI's container status as ours.
pub fn container_status(status: pb::ContainerStatus, sandbox_id: String) -> ContainerStatus {
    let metadata = status.metadata.unwrap_or_default();
    ContainerStatus {
        id: status.id,
        sandbox_id,
        name: metadata.name,
        attempt: metadata.attempt,
        state: state(status.state),
        created_at: status.created_at,
        started_at: status.started_at,
        finished_at: status.finished_at,
        exit_code: status.exit_code,
        image: status.image.map(|i| i.image).unwrap_or_default(),
        image_ref: status.image_ref,
        reason: status.reason,
        message: status.message,
        labels: btree_map(status.labels),
        annotations: btree_map(status.annotations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_config_carries_command_env_mounts_and_limits() {
        let config = ContainerConfig {
            name: "app".into(),
            attempt: 3,
            image: "docker.io/library/busybox:latest".into(),
            command: vec!["sh".into(), "-c".into()],
            args: vec!["sleep 3600".into()],
            working_dir: "/tmp".into(),
            envs: vec![("A".into(), "1".into()), ("B".into(), "$(A)".into())],
            mounts: vec![Mount {
                container_path: "/etc/config".into(),
                host_path: "/var/lib/k8rs/pods/u/volumes/cm".into(),
                readonly: true,
            }],
            log_path: "app/3.log".into(),
            resources: LinuxResources {
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 512,
                memory_limit_in_bytes: 64 << 20,
                oom_score_adj: 968,
            },
            run_as_user: Some(1000),
            tty: true,
            ..Default::default()
        };
        let cri = container_config(&config, &SandboxConfig::default());
        assert_eq!(cri.metadata.as_ref().unwrap().attempt, 3);
        assert_eq!(
            cri.image.as_ref().unwrap().image,
            "docker.io/library/busybox:latest"
        );
        assert_eq!(cri.command, ["sh", "-c"]);
        assert_eq!(cri.args, ["sleep 3600"]);
        // Order matters for `$(VAR)` references: kept as given.
        let envs: Vec<_> = cri
            .envs
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(envs, [("A", "1"), ("B", "$(A)")]);
        assert_eq!(cri.mounts[0].container_path, "/etc/config");
        assert!(cri.mounts[0].readonly);
        assert_eq!(cri.log_path, "app/3.log");
        assert!(cri.tty);
        let linux = cri.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!(
            (r.cpu_period, r.cpu_quota, r.cpu_shares),
            (100_000, 50_000, 512)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        assert_eq!(r.oom_score_adj, 968);
        let security = linux.security_context.unwrap();
        assert_eq!(security.run_as_user, Some(pb::Int64Value { value: 1000 }));
        assert_eq!(security.run_as_group, None);
        assert_eq!(
            security.namespace_options.unwrap().network,
            pb::NamespaceMode::Pod as i32
        );
    }

    #[test]
    fn containers_of_host_network_pods_join_the_node_network() {
        let sandbox = SandboxConfig {
            host_network: true,
            ..Default::default()
        };
        let cri = container_config(&ContainerConfig::default(), &sandbox);
        let ns = cri
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, pb::NamespaceMode::Node as i32);
    }

    #[test]
    fn exited_status_keeps_exit_code_reason_and_sandbox() {
        let status = container_status(
            pb::ContainerStatus {
                id: "c1".into(),
                metadata: Some(pb::ContainerMetadata {
                    name: "app".into(),
                    attempt: 1,
                }),
                state: pb::ContainerState::ContainerExited as i32,
                finished_at: 9,
                exit_code: 137,
                reason: "OOMKilled".into(),
                image: Some(pb::ImageSpec {
                    image: "docker.io/library/busybox:latest".into(),
                    ..Default::default()
                }),
                image_ref: "sha256:abc".into(),
                ..Default::default()
            },
            "s1".into(),
        );
        assert_eq!(status.sandbox_id, "s1");
        assert_eq!(status.name, "app");
        assert_eq!(status.state, ContainerState::Exited);
        assert_eq!(status.exit_code, 137);
        assert_eq!(status.reason, "OOMKilled");
        assert_eq!(status.image_ref, "sha256:abc");
        assert_eq!(state(42), ContainerState::Unknown);
    }
}
