//! `k8rs up`: a whole single-node cluster from one command, supervised like k3s's
//! server: host checks, containerd (own config, root, state and socket under
//! `DATA/agent/containerd`, restarted if it dies), offline images from
//! `DATA/agent/images/`, the API server bound to the node's address, the embedded
//! controllers and scheduler, and the kubelet on containerd through CRI. SIGINT or
//! SIGTERM stops it all; containers keep running (as with k3s) and a second `k8rs up` on
//! the same data dir resumes the cluster with its pods.

pub mod agent;
mod host;
mod node;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use k8rs_apiserver::ServerConfig;
use k8rs_kubelet::containerd::{images, Containerd, ContainerdConfig};
use k8rs_kubelet::cri::CriRuntime;
use tokio::sync::watch;

use crate::cli::{NodeArgs, UpArgs};
use crate::{data_dir, embedded, shutdown};

/// Run `k8rs up` until a signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let stop = stop_on_signal();
    let tools = host::check()?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => data_dir::default_dir()?,
    };
    let _lock = data_dir::prepare(&data_dir)?;
    let Some(node) = start_node("up", &tools, &data_dir, &args.node, stop.clone()).await? else {
        return Ok(());
    };
    let NodeStart {
        node_ip,
        containerd,
        runtime,
        mut config,
    } = node;
    config.labels.insert(
        "node-role.kubernetes.io/control-plane".to_string(),
        "true".to_string(),
    );

    let mut server_config = ServerConfig::new(data_dir.clone());
    server_config.bind_address = node_ip;
    server_config.secure_port = args.secure_port;
    progress(
        "up",
        &format!(
            "starting the API server on https://{}",
            SocketAddr::new(node_ip, args.secure_port)
        ),
    );
    let embedded_config = server_config.clone();
    let stop_kubelet = stop.clone();
    let mut stop_server = stop.clone();
    let components = embedded::Stop::default();
    let handle = components.handle();
    let served =
        k8rs_apiserver::run_notifying(
            server_config,
            async move {
                let _ = stop_server.wait_for(|stopped| *stopped).await;
                // The embedded components hand back their leases while the API still serves.
                components.stop().await;
            },
            move |kubeconfig| {
                embedded::spawn(&embedded_config, kubeconfig.clone(), handle);
                // The API server has created the cluster CA by now: sign the kubelet's
                // serving certificate with it.
                let tls = k8rs_apiserver::pki::kubelet_tls(&data_dir, &config.name, &[node_ip])
                    .map(|tls| k8rs_kubelet::server::TlsMaterial {
                        cert_pem: tls.cert_pem,
                        key_pem: tls.key_pem,
                        client_ca_pem: tls.ca_pem,
                    });
                tokio::spawn(start_kubelet(
                    "up",
                    kubeconfig,
                    config,
                    runtime,
                    (tls, node_ip),
                    stop_kubelet,
                ));
            },
        )
        .await;
    // The API server has stopped (signal or failure): stop containerd; containers
    // keep running in their shims and are found again by the next `k8rs up`.
    progress("up", "stopping containerd (containers keep running)");
    containerd.stop().await;
    served
}

/// A channel that turns true on SIGINT or SIGTERM.
pub(crate) fn stop_on_signal() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    let signal = shutdown::on_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });
    stop
}

/// A node's runtime, started: containerd with its images, and the kubelet's config.
pub(crate) struct NodeStart {
    /// The node's address.
    pub node_ip: std::net::IpAddr,
    /// The supervised containerd.
    pub containerd: Containerd,
    /// CRI over its socket.
    pub runtime: CriRuntime,
    /// The kubelet's node configuration from the host and the flags.
    pub config: k8rs_kubelet::NodeConfig,
}

/// What `k8rs up` and `k8rs agent` share: check the node flags, start containerd
/// (restarted if it dies) and import the offline images. `None` when stopped meanwhile.
pub(crate) async fn start_node(
    command: &str,
    tools: &host::HostTools,
    data_dir: &std::path::Path,
    args: &NodeArgs,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<NodeStart>> {
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => host::node_ip()?,
    };
    let node_name = args.node_name.clone().unwrap_or_else(node::default_name);
    if let Some(cidr) = &args.pod_cidr {
        node::check_pod_cidr(cidr)?;
    }
    if args.cni_bridge.is_empty() || args.cni_bridge.len() > 15 {
        anyhow::bail!("--cni-bridge must be 1 to 15 characters (a Linux interface name)");
    }
    progress(
        command,
        &format!(
            "node {node_name} at {node_ip}, data in {}",
            data_dir.display()
        ),
    );

    let agent_dir = data_dir.join("agent");
    let mut containerd_config = ContainerdConfig::new(
        &agent_dir,
        tools.cni_bin_dir.clone(),
        args.pod_cidr.as_deref().unwrap_or_default(),
    );
    containerd_config.bridge = args.cni_bridge.clone();
    progress(
        command,
        &format!(
            "starting containerd (log: {})",
            containerd_config.log_path().display()
        ),
    );
    let containerd = tokio::select! {
        started = Containerd::start(&containerd_config, &tools.containerd) => started?,
        _ = stopped(stop.clone()) => return Ok(None),
    };
    let images_dir = agent_dir.join("images");
    let imported = images::import_dir(&tools.ctr, containerd.socket(), &images_dir).await;
    match imported {
        Ok(refs) if refs.is_empty() => progress(
            command,
            &format!(
                "no image tarballs in {}; images will be pulled from registries",
                images_dir.display()
            ),
        ),
        Ok(refs) => progress(
            command,
            &format!("imported {} from {}", refs.join(", "), images_dir.display()),
        ),
        Err(e) => {
            containerd.stop().await;
            return Err(e);
        }
    }
    let runtime =
        CriRuntime::connect(containerd.socket())?.with_cni_config(containerd_config.clone());
    let mut config = node::config(&node_name, node_ip, data_dir, args.pod_cidr.clone());
    if let Some(dir) = args.pod_manifest_path.clone() {
        config.pod_manifest_path = Some(dir);
    }
    if let (Some(hard), Some(eviction)) = (args.eviction_hard.clone(), &mut config.eviction) {
        eviction.hard = hard.0;
    }
    Ok(Some(NodeStart {
        node_ip,
        containerd,
        runtime,
        config,
    }))
}

/// Starts the kubelet once the API server answers, and prints how to use the cluster
/// once the node is Ready.
pub(crate) async fn start_kubelet(
    command: &'static str,
    kubeconfig: std::path::PathBuf,
    node: k8rs_kubelet::NodeConfig,
    runtime: CriRuntime,
    (tls, node_ip): (
        anyhow::Result<k8rs_kubelet::server::TlsMaterial>,
        std::net::IpAddr,
    ),
    stop: watch::Receiver<bool>,
) {
    let client = match k8rs_client::client_from_kubeconfig(&kubeconfig)
        .await
        .context("cannot start the kubelet")
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "kubelet not started");
            return;
        }
    };
    let name = node.name.clone();
    progress(command, &format!("starting the kubelet for node {name}"));
    let runtime: Arc<dyn k8rs_kubelet::runtime::Runtime> = Arc::new(runtime);
    let port = u16::try_from(node.kubelet_port).unwrap_or(k8rs_kubelet::server::DEFAULT_PORT);
    let addr = SocketAddr::new(node_ip, port);
    match serve_kubelet_api(&client, &name, runtime.clone(), tls, addr, stop).await {
        Ok(serving) => {
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!(error = %format!("{e:#}"), "kubelet API stopped");
                }
            });
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "kubelet API not started (logs, exec, port-forward and top will not work)")
        }
    }
    tokio::spawn({
        let client = client.clone();
        async move {
            if let Err(e) = k8rs_kubelet::run(client, node, runtime).await {
                tracing::error!(error = %format!("{e:#}"), "kubelet stopped");
            }
        }
    });
    node::wait_ready(client, &name).await;
    if command == "up" {
        eprintln!(
            "k8rs is up: node {name} is Ready\n  export KUBECONFIG={}; kubectl get nodes",
            kubeconfig.display()
        );
    } else {
        progress(command, &format!("node {name} is Ready"));
    }
}

/// Binds the kubelet's HTTPS API (logs, exec, attach, port-forward, stats) with a serving
/// certificate from the cluster CA for the node's address.
async fn serve_kubelet_api(
    client: &kube::Client,
    name: &str,
    runtime: Arc<dyn k8rs_kubelet::runtime::Runtime>,
    tls: anyhow::Result<k8rs_kubelet::server::TlsMaterial>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let tls = tls?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the kubelet API"))?;
    let config = k8rs_kubelet::server::ServerConfig {
        node_name: name.to_string(),
        pods: Arc::new(k8rs_kubelet::server::ApiPods::new(client.clone(), name)),
        runtime,
        log_root: "/var/log/pods".into(),
        tls,
    };
    Ok(k8rs_kubelet::server::serve(config, listener, stopped(stop)))
}

/// One line of start-up progress, prefixed by the command (`k8rs up: …`).
pub(crate) fn progress(command: &str, message: &str) {
    eprintln!("k8rs {command}: {message}");
}

pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
