//! `k8rs up`: a whole single-node cluster from one command, supervised like k3s's
//! server: host checks, containerd (own config, root, state and socket under
//! `DATA/agent/containerd`, restarted if it dies), offline images from
//! `DATA/agent/images/`, the API server bound to the node's address, the embedded
//! controllers and scheduler, and the kubelet on containerd through CRI. SIGINT or
//! SIGTERM stops it all; containers keep running (as with k3s) and a second `k8rs up` on
//! the same data dir resumes the cluster with its pods.

mod host;
mod node;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use k8rs_apiserver::ServerConfig;
use k8rs_kubelet::containerd::{images, Containerd, ContainerdConfig};
use k8rs_kubelet::cri::CriRuntime;
use tokio::sync::watch;

use crate::cli::UpArgs;
use crate::{data_dir, embedded, shutdown};

/// Run `k8rs up` until a signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    let signal = shutdown::on_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop_tx.send(true);
    });

    let tools = host::check()?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => data_dir::default_dir()?,
    };
    let _lock = data_dir::prepare(&data_dir)?;
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => host::node_ip()?,
    };
    let node_name = args.node_name.unwrap_or_else(node::default_name);
    if let Some(cidr) = &args.pod_cidr {
        node::check_pod_cidr(cidr)?;
    }
    if args.cni_bridge.is_empty() || args.cni_bridge.len() > 15 {
        anyhow::bail!("--cni-bridge must be 1 to 15 characters (a Linux interface name)");
    }
    progress(&format!(
        "node {node_name} at {node_ip}, data in {}",
        data_dir.display()
    ));

    let agent_dir = data_dir.join("agent");
    let mut containerd_config = ContainerdConfig::new(
        &agent_dir,
        tools.cni_bin_dir.clone(),
        args.pod_cidr.as_deref().unwrap_or_default(),
    );
    containerd_config.bridge = args.cni_bridge.clone();
    progress(&format!(
        "starting containerd (log: {})",
        containerd_config.log_path().display()
    ));
    let containerd = tokio::select! {
        started = Containerd::start(&containerd_config, &tools.containerd) => started?,
        _ = stopped(stop.clone()) => return Ok(()),
    };
    let images_dir = agent_dir.join("images");
    let imported = images::import_dir(&tools.ctr, containerd.socket(), &images_dir).await;
    match imported {
        Ok(refs) if refs.is_empty() => progress(&format!(
            "no image tarballs in {}; images will be pulled from registries",
            images_dir.display()
        )),
        Ok(refs) => progress(&format!(
            "imported {} from {}",
            refs.join(", "),
            images_dir.display()
        )),
        Err(e) => {
            containerd.stop().await;
            return Err(e);
        }
    }
    let runtime =
        CriRuntime::connect(containerd.socket())?.with_cni_config(containerd_config.clone());

    let mut config = ServerConfig::new(data_dir.clone());
    config.bind_address = node_ip;
    config.secure_port = args.secure_port;
    progress(&format!(
        "starting the API server on https://{}",
        SocketAddr::new(node_ip, args.secure_port)
    ));
    let embedded_config = config.clone();
    let node_config = node::config(&node_name, node_ip, &data_dir, args.pod_cidr.clone());
    let kubelet_tls = (data_dir.clone(), node_ip);
    let stop_kubelet = stop.clone();
    let mut stop_server = stop.clone();
    let components = embedded::Stop::default();
    let handle = components.handle();
    let served = k8rs_apiserver::run_notifying(
        config,
        async move {
            let _ = stop_server.wait_for(|stopped| *stopped).await;
            // The embedded components hand back their leases while the API still serves.
            components.stop().await;
        },
        move |kubeconfig| {
            embedded::spawn(&embedded_config, kubeconfig.clone(), handle);
            tokio::spawn(start_kubelet(
                kubeconfig,
                node_config,
                runtime,
                kubelet_tls,
                stop_kubelet,
            ));
        },
    )
    .await;
    // The API server has stopped (signal or failure): stop containerd; containers
    // keep running in their shims and are found again by the next `k8rs up`.
    progress("stopping containerd (containers keep running)");
    containerd.stop().await;
    served
}

/// Starts the kubelet once the API server answers, and prints how to use the cluster
/// once the node is Ready.
async fn start_kubelet(
    kubeconfig: std::path::PathBuf,
    node: k8rs_kubelet::NodeConfig,
    runtime: CriRuntime,
    (data_dir, node_ip): (std::path::PathBuf, std::net::IpAddr),
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
    progress(&format!("starting the kubelet for node {name}"));
    let runtime: Arc<dyn k8rs_kubelet::runtime::Runtime> = Arc::new(runtime);
    let port = u16::try_from(node.kubelet_port).unwrap_or(k8rs_kubelet::server::DEFAULT_PORT);
    let addr = SocketAddr::new(node_ip, port);
    match serve_kubelet_api(&client, &name, runtime.clone(), &data_dir, addr, stop).await {
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
    eprintln!(
        "k8rs is up: node {name} is Ready\n  export KUBECONFIG={}; kubectl get nodes",
        kubeconfig.display()
    );
}

/// Binds the kubelet's HTTPS API (logs, exec, attach, port-forward, stats) with a serving
/// certificate from the cluster CA for the node's address.
async fn serve_kubelet_api(
    client: &kube::Client,
    name: &str,
    runtime: Arc<dyn k8rs_kubelet::runtime::Runtime>,
    data_dir: &std::path::Path,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let tls = k8rs_apiserver::pki::kubelet_tls(data_dir, name, &[addr.ip()])?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the kubelet API"))?;
    let config = k8rs_kubelet::server::ServerConfig {
        node_name: name.to_string(),
        pods: Arc::new(k8rs_kubelet::server::ApiPods::new(client.clone(), name)),
        runtime,
        log_root: "/var/log/pods".into(),
        tls: k8rs_kubelet::server::TlsMaterial {
            cert_pem: tls.cert_pem,
            key_pem: tls.key_pem,
            client_ca_pem: tls.ca_pem,
        },
    };
    Ok(k8rs_kubelet::server::serve(config, listener, stopped(stop)))
}

fn progress(message: &str) {
    eprintln!("k8rs up: {message}");
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
