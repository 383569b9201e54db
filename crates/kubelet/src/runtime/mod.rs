//! The container runtime the kubelet drives, shaped like CRI's `RuntimeService` and
//! `ImageService` (upstream's `cri-api`), so that the pod workers are the same whether
//! containers are real (containerd over CRI gRPC) or simulated (the hollow runtime).
//!
//! Types here are plain Rust, not CRI's protobuf messages: the hollow runtime keeps
//! thousands of pods in memory and must stay small, and the CRI module converts at its
//! edge. Field meanings follow `k8s.io/cri-api/pkg/apis/runtime/v1/api.proto`.

use std::collections::BTreeMap;
use std::time::Duration;

/// A runtime failure. `NotFound` lets callers treat "already gone" as success.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The sandbox, container or image does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Pulling the image failed (`ErrImagePull`).
    #[error("{0}")]
    ImagePull(String),
    /// Anything else the runtime reported.
    #[error("{0}")]
    Other(String),
}

/// Results of runtime calls.
pub type Result<T> = std::result::Result<T, RuntimeError>;

/// What identifies a pod to the runtime (CRI `PodSandboxMetadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodIdentity {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Incremented each time the sandbox is recreated.
    pub attempt: u32,
}

/// A port the sandbox publishes on the host (`hostPort`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortMapping {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port inside the pod.
    pub container_port: i32,
    /// The port on the host.
    pub host_port: i32,
    /// The host address to bind, empty for all.
    pub host_ip: String,
}

/// Resolver settings written to the pod's `/etc/resolv.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options such as `ndots:5`.
    pub options: Vec<String>,
}

/// Everything needed to create a pod sandbox (CRI `PodSandboxConfig`).
#[derive(Clone, Debug, Default)]
pub struct SandboxConfig {
    /// Which pod this is.
    pub identity: PodIdentity,
    /// The pod's hostname.
    pub hostname: String,
    /// Where container logs go (`/var/log/pods/<ns>_<name>_<uid>`).
    pub log_directory: String,
    /// Resolver configuration.
    pub dns: Option<DnsConfig>,
    /// Host ports.
    pub port_mappings: Vec<PortMapping>,
    /// Labels, including the kubelet's `io.kubernetes.pod.*` ones.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `hostNetwork: true`: no network namespace of its own.
    pub host_network: bool,
    /// `hostPID`.
    pub host_pid: bool,
    /// `hostIPC`.
    pub host_ipc: bool,
    /// The pod-level cgroup parent (QoS class and pod uid).
    pub cgroup_parent: String,
    /// Kernel parameters (`securityContext.sysctls`).
    pub sysctls: BTreeMap<String, String>,
}

/// Sandbox states (CRI `PodSandboxState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    /// Running with its network set up.
    Ready,
    /// Stopped or never fully started.
    NotReady,
}

/// A sandbox as the runtime reports it.
#[derive(Clone, Debug)]
pub struct SandboxStatus {
    /// Runtime id.
    pub id: String,
    /// Which pod.
    pub identity: PodIdentity,
    /// Ready or not.
    pub state: SandboxState,
    /// Creation time, nanoseconds since the epoch.
    pub created_at: i64,
    /// The pod IPs (first is primary); empty for host-network pods.
    pub ips: Vec<String>,
    /// The labels it was created with.
    pub labels: BTreeMap<String, String>,
}

/// A file or directory from the host mounted into a container (CRI `Mount`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// Path in the container.
    pub container_path: String,
    /// Path on the host.
    pub host_path: String,
    /// Read-only.
    pub readonly: bool,
}

/// Linux resources for a container (CRI `LinuxContainerResources`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinuxResources {
    /// CFS period in microseconds (0 = unset).
    pub cpu_period: i64,
    /// CFS quota in microseconds (0 = unlimited).
    pub cpu_quota: i64,
    /// CPU shares (relative weight).
    pub cpu_shares: i64,
    /// Memory limit in bytes (0 = unlimited).
    pub memory_limit_in_bytes: i64,
    /// OOM score adjustment by QoS class.
    pub oom_score_adj: i64,
}

/// Everything needed to create a container (CRI `ContainerConfig`).
#[derive(Clone, Debug, Default)]
pub struct ContainerConfig {
    /// Container name.
    pub name: String,
    /// Incremented on every restart.
    pub attempt: u32,
    /// Image reference as resolved by `pull_image`/`image_status`.
    pub image: String,
    /// Entrypoint (`command`), already expanded.
    pub command: Vec<String>,
    /// Arguments, already expanded.
    pub args: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Environment, resolved and in order.
    pub envs: Vec<(String, String)>,
    /// Mounts (volumes, `/etc/hosts`, termination log).
    pub mounts: Vec<Mount>,
    /// Labels, including `io.kubernetes.container.name`.
    pub labels: BTreeMap<String, String>,
    /// Annotations (restart count, termination message path, …).
    pub annotations: BTreeMap<String, String>,
    /// Log path relative to the sandbox's log directory.
    pub log_path: String,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach detaches.
    pub stdin_once: bool,
    /// Allocate a TTY.
    pub tty: bool,
    /// cgroup limits.
    pub resources: LinuxResources,
    /// Run as this uid, if set.
    pub run_as_user: Option<i64>,
    /// Run as this gid, if set.
    pub run_as_group: Option<i64>,
    /// Privileged container.
    pub privileged: bool,
    /// Read-only root filesystem.
    pub readonly_rootfs: bool,
}

/// Container states (CRI `ContainerState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// The runtime does not know.
    Unknown,
}

/// A container as the runtime reports it (CRI `ContainerStatus`).
#[derive(Clone, Debug)]
pub struct ContainerStatus {
    /// Runtime id.
    pub id: String,
    /// The sandbox it belongs to.
    pub sandbox_id: String,
    /// Container name.
    pub name: String,
    /// Restart attempt.
    pub attempt: u32,
    /// State.
    pub state: ContainerState,
    /// Nanoseconds since the epoch; 0 when not yet.
    pub created_at: i64,
    /// Nanoseconds since the epoch; 0 when not yet.
    pub started_at: i64,
    /// Nanoseconds since the epoch; 0 when not yet.
    pub finished_at: i64,
    /// Exit code once exited.
    pub exit_code: i32,
    /// Image reference.
    pub image: String,
    /// Resolved image id (`sha256:…`).
    pub image_ref: String,
    /// `OOMKilled`, `Error`, `Completed` or empty.
    pub reason: String,
    /// Termination message as read by the runtime, if any.
    pub message: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Output of a synchronous exec (exec probes, hooks).
#[derive(Clone, Debug, Default)]
pub struct ExecResult {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit code.
    pub exit_code: i32,
}

/// An image present on the node.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// `sha256:…`.
    pub id: String,
    /// Tags (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Digests.
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
}

/// Resource usage of one container (CRI `ContainerStats`).
#[derive(Clone, Debug, Default)]
pub struct ContainerStats {
    /// Container id.
    pub id: String,
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_core_nanoseconds: u64,
    /// Working-set memory in bytes.
    pub memory_working_set_bytes: u64,
    /// Sample time, nanoseconds since the epoch.
    pub timestamp: i64,
}

/// Streaming requests answered by the runtime's streaming server with a URL the kubelet
/// redirects or proxies to (CRI `Exec`, `Attach`, `PortForward`).
#[derive(Clone, Debug)]
pub enum StreamRequest {
    /// Run a command in a container.
    Exec {
        /// Container id.
        container_id: String,
        /// Command and arguments.
        cmd: Vec<String>,
        /// Attach stdin.
        stdin: bool,
        /// Stream stdout.
        stdout: bool,
        /// Stream stderr.
        stderr: bool,
        /// Allocate a TTY.
        tty: bool,
    },
    /// Attach to a running container's streams.
    Attach {
        /// Container id.
        container_id: String,
        /// Attach stdin.
        stdin: bool,
        /// Stream stdout.
        stdout: bool,
        /// Stream stderr.
        stderr: bool,
        /// The container has a TTY.
        tty: bool,
    },
    /// Forward ports into a sandbox.
    PortForward {
        /// Sandbox id.
        sandbox_id: String,
        /// Ports.
        ports: Vec<i32>,
    },
}

/// The container runtime (CRI's runtime and image services). Implemented by the
/// containerd client and by the hollow (simulated) runtime.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// `(runtime name, runtime version)`, e.g. `("containerd", "1.6.20")`; the node
    /// reports it as `containerRuntimeVersion: containerd://1.6.20`.
    async fn version(&self) -> Result<(String, String)>;

    /// CRI `UpdateRuntimeConfig`: hands the runtime the node's pod CIDR once the node
    /// IPAM controller has assigned it (CNI's host-local range; the hollow runtime's
    /// address pool). Called again whenever it changes.
    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let _ = pod_cidr;
        Ok(())
    }

    /// Creates and starts a sandbox, returning its id.
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String>;
    /// Stops a sandbox and every container in it; idempotent.
    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<()>;
    /// Removes a stopped sandbox; idempotent.
    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<()>;
    /// One sandbox's status.
    async fn pod_sandbox_status(&self, sandbox_id: &str) -> Result<SandboxStatus>;
    /// Every sandbox the runtime has.
    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>>;

    /// Creates a container in a sandbox, returning its id.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &SandboxConfig,
    ) -> Result<String>;
    /// Starts a created container.
    async fn start_container(&self, container_id: &str) -> Result<()>;
    /// Stops a container: SIGTERM, then SIGKILL after `timeout`.
    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()>;
    /// Removes a container; idempotent.
    async fn remove_container(&self, container_id: &str) -> Result<()>;
    /// One container's status.
    async fn container_status(&self, container_id: &str) -> Result<ContainerStatus>;
    /// Containers, optionally only those of one sandbox.
    async fn list_containers(&self, sandbox_id: Option<&str>) -> Result<Vec<ContainerStatus>>;
    /// Every container's id, pod uid (its `io.kubernetes.pod.uid` label) and state: the
    /// cheap relist of the pod lifecycle event generator ([`crate::pod::pleg`]).
    async fn list_container_states(&self) -> Result<Vec<(String, String, ContainerState)>> {
        Ok(self
            .list_containers(None)
            .await?
            .into_iter()
            .map(|c| {
                let uid = c
                    .labels
                    .get("io.kubernetes.pod.uid")
                    .cloned()
                    .unwrap_or_default();
                (c.id, uid, c.state)
            })
            .collect())
    }
    /// Runs a command in a container and waits for it (exec probes, hooks).
    async fn exec_sync(
        &self,
        container_id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult>;
    /// A streaming-server URL for an exec, attach or port-forward session.
    async fn stream_url(&self, request: &StreamRequest) -> Result<String>;
    /// Resource usage of the running containers.
    async fn container_stats(&self) -> Result<Vec<ContainerStats>>;

    /// The image if present.
    async fn image_status(&self, image: &str) -> Result<Option<Image>>;
    /// Pulls an image, returning its id.
    async fn pull_image(&self, image: &str) -> Result<String>;
    /// Every image present.
    async fn list_images(&self) -> Result<Vec<Image>>;
    /// Removes an image.
    async fn remove_image(&self, image: &str) -> Result<()>;
}
