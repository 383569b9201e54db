//! The CRI v1 client: [`CriRuntime`] implements [`Runtime`] over gRPC to a CRI runtime
//! (containerd) on a Unix socket. One file per group of CRI verbs, as containerd's
//! `internal/cri/server` keeps one per call: [`sandbox`] (pod sandboxes and the pod
//! cgroups containerd leaves behind), [`container`], [`image`], [`streaming`] (exec,
//! attach, port-forward) and [`stats`]. Conversions between our plain types and CRI's
//! messages are pure functions beside the calls that use them, so they are unit-tested
//! without a runtime.

pub mod cgroups;
pub mod container;
pub mod image;
pub mod sandbox;
pub mod stats;
pub mod streaming;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint, Uri};

use crate::runtime::{
    ContainerConfig, ContainerStats, ContainerStatus, ExecResult, Image, Result, Runtime,
    RuntimeError, SandboxConfig, SandboxStatus, StreamRequest,
};

/// The generated CRI v1 messages and clients (`runtime.v1` from the vendored
/// `proto/api.proto`, cri-api v0.31).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("runtime.v1");
}

use pb::image_service_client::ImageServiceClient;
use pb::runtime_service_client::RuntimeServiceClient;

/// How long an ordinary CRI call may take (upstream's `--runtime-request-timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A [`Runtime`] backed by a CRI runtime service on a Unix socket.
#[derive(Clone, Debug)]
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`), for removing the
    /// pod cgroups the runtime leaves behind.
    cgroup_root: PathBuf,
    /// The CNI network to rewrite when the node's pod CIDR arrives, if we own it.
    cni: Option<crate::containerd::ContainerdConfig>,
}

impl CriRuntime {
    /// Connects lazily to the CRI socket at `socket`: the first call dials, and every call
    /// re-dials if the runtime restarted in between.
    pub fn connect(socket: &Path) -> Result<CriRuntime> {
        let socket = socket.to_path_buf();
        // The URI is required by tonic but unused: the connector below dials the socket.
        let endpoint = Endpoint::from_static("http://cri.sock")
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30));
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }));
        Ok(CriRuntime {
            runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(16 << 20),
            images: ImageServiceClient::new(channel).max_decoding_message_size(16 << 20),
            cgroup_root: PathBuf::from(cgroups::CGROUP_ROOT),
            cni: None,
        })
    }

    /// Uses `root` instead of `/sys/fs/cgroup` when cleaning up pod cgroups.
    pub fn with_cgroup_root(mut self, root: PathBuf) -> CriRuntime {
        self.cgroup_root = root;
        self
    }

    /// Writes `config`'s CNI conflist with the node's pod CIDR whenever the kubelet
    /// calls [`Runtime::update_runtime_config`] (containerd 1.6 only does so from a
    /// `conf_template`; ours is written directly).
    pub fn with_cni_config(mut self, config: crate::containerd::ContainerdConfig) -> CriRuntime {
        self.cni = Some(config);
        self
    }

    /// Calls `Version` until it answers or `timeout` passes: the runtime's socket may
    /// exist before its CRI plugin serves.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.version().await {
                Ok(v) => return Ok(v),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        self.runtime.clone()
    }

    fn image_client(&self) -> ImageServiceClient<Channel> {
        self.images.clone()
    }
}

/// A request with the default deadline.
fn request<T>(message: T) -> tonic::Request<T> {
    with_timeout(message, REQUEST_TIMEOUT)
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Maps a gRPC status to our error: `NotFound` stays recognisable so callers can treat
/// "already gone" as done.
fn error(status: tonic::Status) -> RuntimeError {
    match status.code() {
        tonic::Code::NotFound => RuntimeError::NotFound(status.message().to_string()),
        _ => RuntimeError::Other(status_text(&status)),
    }
}

/// `code = Unavailable desc = …` as upstream's kubelet prints CRI errors.
fn status_text(status: &tonic::Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

fn hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn btree_map(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

#[async_trait::async_trait]
impl Runtime for CriRuntime {
    async fn version(&self) -> Result<(String, String)> {
        let response = self
            .runtime_client()
            .version(with_timeout(
                pb::VersionRequest {
                    version: "v1".into(),
                },
                Duration::from_secs(5),
            ))
            .await
            .map_err(error)?
            .into_inner();
        Ok((response.runtime_name, response.runtime_version))
    }

    /// The node's pod CIDR: into the CNI conflist when we own it, and to containerd
    /// (`UpdateRuntimeConfig`).
    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        if let Some(cni) = &self.cni {
            let mut cni = cni.clone();
            cni.pod_cidr = pod_cidr.to_string();
            cni.write_cni().map_err(|e| {
                RuntimeError::Other(format!(
                    "cannot write {}: {e}",
                    cni.conflist_path().display()
                ))
            })?;
        }
        self.runtime_client()
            .update_runtime_config(request(pb::UpdateRuntimeConfigRequest {
                runtime_config: Some(pb::RuntimeConfig {
                    network_config: Some(pb::NetworkConfig {
                        pod_cidr: pod_cidr.to_string(),
                    }),
                }),
            }))
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        self.run_sandbox(config).await
    }

    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        self.stop_sandbox(sandbox_id).await
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        self.remove_sandbox(sandbox_id).await
    }

    async fn pod_sandbox_status(&self, sandbox_id: &str) -> Result<SandboxStatus> {
        self.sandbox_status(sandbox_id).await
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        self.list_sandboxes().await
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &SandboxConfig,
    ) -> Result<String> {
        self.create(sandbox_id, config, sandbox).await
    }

    async fn start_container(&self, container_id: &str) -> Result<()> {
        self.start(container_id).await
    }

    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()> {
        self.stop(container_id, timeout).await
    }

    async fn remove_container(&self, container_id: &str) -> Result<()> {
        self.remove(container_id).await
    }

    async fn container_status(&self, container_id: &str) -> Result<ContainerStatus> {
        self.status(container_id).await
    }

    async fn list_containers(&self, sandbox_id: Option<&str>) -> Result<Vec<ContainerStatus>> {
        self.list(sandbox_id).await
    }

    async fn list_container_states(
        &self,
    ) -> Result<Vec<(String, String, crate::runtime::ContainerState)>> {
        self.list_states().await
    }

    async fn exec_sync(
        &self,
        container_id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult> {
        self.exec(container_id, cmd, timeout).await
    }

    async fn stream_url(&self, request: &StreamRequest) -> Result<String> {
        self.streaming_url(request).await
    }

    async fn container_stats(&self) -> Result<Vec<ContainerStats>> {
        self.stats().await
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        self.image(image).await
    }

    async fn pull_image(&self, image: &str) -> Result<String> {
        self.pull(image).await
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        self.images().await
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.delete_image(image).await
    }
}
