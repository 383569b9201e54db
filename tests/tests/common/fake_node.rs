//! TEST DOUBLE: a node whose "containers" are processes on the test host.
//!
//! The kubelet HTTPS server here is the product's (`k8rs_kubelet::server`), started
//! in-process with a serving certificate from the cluster CA. Only the container runtime
//! is simulated: one running container per pod, `exec` runs the command locally with
//! `sh`, port-forward dials `127.0.0.1:<port>`, and CPU usage grows with wall time. Its
//! streaming server speaks the same SPDY protocols as containerd's, using the product's
//! SPDY code, so the kubelet's runtime client is exercised as well.
//!
//! Real-container end-to-end tests (containerd) live in their own suite.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8rs_kubelet::runtime::*;
use k8rs_kubelet::server::{PodSource, ServerConfig, TlsMaterial};
use k8rs_kubelet::streaming::portforward;
use k8rs_kubelet::streaming::remotecommand::{self, ExecOptions, Input, Output};
use k8s_openapi::api::core::v1::Pod;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The simulated node: its kubelet port and log directory.
pub struct FakeNode {
    /// Keeps the kubelet and the fake runtime running.
    _rt: tokio::runtime::Runtime,
    /// The kubelet's port on 127.0.0.1.
    pub port: u16,
    /// `/var/log/pods` of this node.
    pub log_root: PathBuf,
    runtime: Arc<FakeRuntime>,
    _logs: tempfile::TempDir,
}

impl FakeNode {
    /// Start a kubelet for node `name` against the server whose data dir and kubeconfig
    /// are given.
    pub fn start(name: &str, data_dir: &Path, kubeconfig: &Path) -> FakeNode {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let logs = tempfile::tempdir().unwrap();
        let tls = k8rs_apiserver::pki::kubelet_tls(data_dir, name, &["127.0.0.1".parse().unwrap()])
            .expect("kubelet certificate from the cluster CA");
        let kubeconfig = kubeconfig.to_path_buf();
        let node_name = name.to_string();
        let log_root = logs.path().to_path_buf();
        let (port, runtime) = rt.block_on(async move {
            let client = k8rs_client::client_from_kubeconfig(&kubeconfig)
                .await
                .unwrap();
            let stream_addr = start_streaming_server().await;
            let runtime = Arc::new(FakeRuntime {
                client: client.clone(),
                node: node_name.clone(),
                stream_addr,
                running: AtomicBool::new(true),
                started: Instant::now(),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let config = ServerConfig {
                node_name: node_name.clone(),
                pods: Arc::new(ApiPods {
                    client,
                    node: node_name,
                }),
                runtime: runtime.clone(),
                log_root,
                tls: TlsMaterial {
                    cert_pem: tls.cert_pem,
                    key_pem: tls.key_pem,
                    client_ca_pem: tls.ca_pem,
                },
            };
            tokio::spawn(async move {
                k8rs_kubelet::server::serve(config, listener, std::future::pending())
                    .await
                    .unwrap()
            });
            (port, runtime)
        });
        FakeNode {
            _rt: rt,
            port,
            log_root: logs.path().to_path_buf(),
            runtime,
            _logs: logs,
        }
    }

    /// The node object to create (kubectl create -f -) and its status patch.
    pub fn node_manifest(&self, name: &str) -> (String, String) {
        (
            format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\n"),
            format!(
                r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}},{{"type":"Hostname","address":"{name}"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{}}}}},"capacity":{{"cpu":"4","memory":"8Gi","pods":"110"}},"allocatable":{{"cpu":"4","memory":"8Gi","pods":"110"}}}}}}"#,
                self.port
            ),
        )
    }

    /// Stop (or restart) every simulated container.
    pub fn set_running(&self, running: bool) {
        self.runtime.running.store(running, Ordering::SeqCst);
    }

    /// Append CRI log lines for a container instance.
    pub fn append_log(
        &self,
        ns: &str,
        pod: &str,
        uid: &str,
        container: &str,
        attempt: u32,
        lines: &[(&str, &str, &str)],
    ) {
        let path =
            k8rs_kubelet::server::logs::log_path(&self.log_root, ns, pod, uid, container, attempt);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::new();
        for (ts, stream, content) in lines {
            text += &format!("{ts} {stream} F {content}\n");
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
}

/// Pods from the API server (the real kubelet keeps them in its pod manager).
struct ApiPods {
    client: kube::Client,
    node: String,
}

#[async_trait::async_trait]
impl PodSource for ApiPods {
    async fn pods(&self) -> Vec<Pod> {
        let api: kube::Api<Pod> = kube::Api::all(self.client.clone());
        api.list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&self.node))
            .collect()
    }
}

/// The simulated runtime: sandboxes and containers derived from the API's pods.
struct FakeRuntime {
    client: kube::Client,
    node: String,
    stream_addr: SocketAddr,
    running: AtomicBool,
    started: Instant,
}

fn unsupported<T>() -> Result<T> {
    Err(RuntimeError::Other(
        "not simulated by the test runtime".into(),
    ))
}

impl FakeRuntime {
    async fn pods(&self) -> Vec<Pod> {
        ApiPods {
            client: self.client.clone(),
            node: self.node.clone(),
        }
        .pods()
        .await
    }

    fn container_id(pod: &Pod, name: &str) -> String {
        format!("{}-{name}", pod.metadata.uid.as_deref().unwrap_or(""))
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<(String, String)> {
        Ok(("fake".into(), "0".into()))
    }
    async fn run_pod_sandbox(&self, _: &SandboxConfig) -> Result<String> {
        unsupported()
    }
    async fn stop_pod_sandbox(&self, _: &str) -> Result<()> {
        unsupported()
    }
    async fn remove_pod_sandbox(&self, _: &str) -> Result<()> {
        unsupported()
    }
    async fn pod_sandbox_status(&self, _: &str) -> Result<SandboxStatus> {
        unsupported()
    }
    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        Ok(self
            .pods()
            .await
            .iter()
            .map(|p| SandboxStatus {
                id: p.metadata.uid.clone().unwrap_or_default(),
                identity: PodIdentity {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    namespace: p.metadata.namespace.clone().unwrap_or_default(),
                    uid: p.metadata.uid.clone().unwrap_or_default(),
                    attempt: 0,
                },
                state: SandboxState::Ready,
                created_at: 1_700_000_000_000_000_000,
                ips: vec!["127.0.0.1".into()],
                labels: Default::default(),
            })
            .collect())
    }
    async fn create_container(
        &self,
        _: &str,
        _: &ContainerConfig,
        _: &SandboxConfig,
    ) -> Result<String> {
        unsupported()
    }
    async fn start_container(&self, _: &str) -> Result<()> {
        unsupported()
    }
    async fn stop_container(&self, _: &str, _: Duration) -> Result<()> {
        unsupported()
    }
    async fn remove_container(&self, _: &str) -> Result<()> {
        unsupported()
    }
    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        self.list_containers(None)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| RuntimeError::NotFound(id.into()))
    }
    async fn list_containers(&self, sandbox: Option<&str>) -> Result<Vec<ContainerStatus>> {
        let state = if self.running.load(Ordering::SeqCst) {
            ContainerState::Running
        } else {
            ContainerState::Exited
        };
        let mut out = Vec::new();
        for p in self.pods().await {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if sandbox.is_some_and(|s| s != uid) {
                continue;
            }
            for c in p
                .spec
                .as_ref()
                .map(|s| s.containers.clone())
                .unwrap_or_default()
            {
                out.push(ContainerStatus {
                    id: Self::container_id(&p, &c.name),
                    sandbox_id: uid.clone(),
                    name: c.name.clone(),
                    attempt: 0,
                    state,
                    created_at: 1_700_000_000_000_000_000,
                    started_at: 1_700_000_000_000_000_000,
                    finished_at: 0,
                    exit_code: 0,
                    image: c.image.clone().unwrap_or_default(),
                    image_ref: String::new(),
                    reason: String::new(),
                    message: String::new(),
                    labels: Default::default(),
                    annotations: Default::default(),
                });
            }
        }
        Ok(out)
    }
    async fn exec_sync(&self, _: &str, _: &[String], _: Duration) -> Result<ExecResult> {
        unsupported()
    }
    async fn stream_url(&self, request: &StreamRequest) -> Result<String> {
        let token = register(request.clone());
        let kind = match request {
            StreamRequest::Exec { .. } => "exec",
            StreamRequest::Attach { .. } => "attach",
            StreamRequest::PortForward { .. } => "portforward",
        };
        Ok(format!("http://{}/{kind}/{token}", self.stream_addr))
    }
    async fn container_stats(&self) -> Result<Vec<ContainerStats>> {
        // A quarter of a core per container, and 4 MiB of memory.
        let elapsed = self.started.elapsed().as_nanos() as u64;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        Ok(self
            .list_containers(None)
            .await?
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| ContainerStats {
                id: c.id,
                cpu_usage_core_nanoseconds: elapsed / 4,
                memory_working_set_bytes: 4 << 20,
                timestamp: now,
            })
            .collect())
    }
    async fn image_status(&self, _: &str) -> Result<Option<Image>> {
        unsupported()
    }
    async fn pull_image(&self, _: &str) -> Result<String> {
        unsupported()
    }
    async fn list_images(&self) -> Result<Vec<Image>> {
        unsupported()
    }
    async fn remove_image(&self, _: &str) -> Result<()> {
        unsupported()
    }
}

static TOKENS: Mutex<Option<HashMap<String, StreamRequest>>> = Mutex::new(None);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

fn register(req: StreamRequest) -> String {
    let token = format!("t{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
    TOKENS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(token.clone(), req);
    token
}

/// The fake runtime's streaming server (SPDY, as containerd's).
async fn start_streaming_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |mut req: hyper::Request<hyper::body::Incoming>| async move {
                        let token = req
                            .uri()
                            .path()
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let request = TOKENS
                            .lock()
                            .unwrap()
                            .get_or_insert_with(HashMap::new)
                            .remove(&token);
                        let on = hyper::upgrade::on(&mut req);
                        let (protocol, request) = match request {
                            Some(r @ StreamRequest::PortForward { .. }) => {
                                (portforward::PROTOCOL, r)
                            }
                            Some(r) => (remotecommand::V4, r),
                            None => {
                                return Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(404)
                                        .body(http_body_util::Full::new(Bytes::from_static(
                                            b"unknown token",
                                        )))
                                        .unwrap(),
                                )
                            }
                        };
                        tokio::spawn(async move {
                            let Ok(up) = on.await else { return };
                            let io = hyper_util::rt::TokioIo::new(up);
                            match request {
                                StreamRequest::Exec {
                                    cmd,
                                    stdin,
                                    stdout,
                                    stderr,
                                    tty,
                                    ..
                                } => {
                                    let opts = ExecOptions {
                                        stdin,
                                        stdout,
                                        stderr,
                                        tty,
                                    };
                                    remotecommand::serve_spdy(io, opts, |input| {
                                        run_local(cmd, input)
                                    })
                                    .await
                                }
                                StreamRequest::Attach { .. } => {
                                    remotecommand::serve_spdy(
                                        io,
                                        ExecOptions {
                                            stdout: true,
                                            ..Default::default()
                                        },
                                        |_| async { Output::failed("attach is not simulated") },
                                    )
                                    .await
                                }
                                StreamRequest::PortForward { .. } => {
                                    portforward::serve(io, |pair| {
                                        let target = SocketAddr::from(([127, 0, 0, 1], pair.port));
                                        portforward::to_tcp(pair, target)
                                    })
                                    .await
                                }
                            }
                        });
                        Ok(hyper::Response::builder()
                            .status(101)
                            .header("Connection", "Upgrade")
                            .header("Upgrade", "SPDY/3.1")
                            .header("X-Stream-Protocol-Version", protocol)
                            .body(http_body_util::Full::new(Bytes::new()))
                            .unwrap())
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// Run `cmd` on the test host with the session's streams.
async fn run_local(cmd: Vec<String>, input: Input) -> Output {
    let mut command = tokio::process::Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Output::failed(&format!("exec: {e}")),
    };
    let mut child_stdin = child.stdin.take();
    if let Some(mut rx) = input.stdin {
        let mut w = child_stdin.take().unwrap();
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if w.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(child_stdin);
    let pipe = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
        });
        (rx, task)
    };
    let (stdout, t1) = pipe(Box::new(child.stdout.take().unwrap()));
    let (stderr, t2) = pipe(Box::new(child.stderr.take().unwrap()));
    let (status_tx, status_rx) = oneshot::channel();
    tokio::spawn(async move {
        let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
        let _ = (t1.await, t2.await);
        let _ = status_tx.send(remotecommand::exit_status(&cmd, code));
    });
    Output {
        stdout: Some(stdout),
        stderr: Some(stderr),
        status: status_rx,
    }
}
