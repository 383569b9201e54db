//! `k8rs agent`: a node that joins an existing server (k3s's agent): the same containerd
//! supervision and kubelet as `k8rs up`, with the node's credentials from files.
//!
//! Credentials follow kubeadm's path rather than a bootstrap token (the API server has
//! no CertificateSigningRequest signer yet): `k8rs node-credentials`, run where the
//! server's data dir is, signs with the cluster CA a client certificate for
//! `system:node:<name>` (group `system:nodes`) into `kubelet.kubeconfig`, and a serving
//! certificate for the node's name and addresses (the API server verifies it when it
//! proxies logs, exec and port-forward). Copy them into the agent's `DATA/agent/`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{host, progress, start_kubelet, start_node, stopped, NodeStart};
use crate::cli::{AgentArgs, NodeCredentialsArgs};
use crate::data_dir;

/// The kubelet's kubeconfig under `DATA/agent/`.
pub const KUBECONFIG: &str = "kubelet.kubeconfig";
/// The serving certificate under `DATA/agent/`.
pub const SERVING_CERT: &str = "serving-kubelet.crt";
/// Its key under `DATA/agent/`.
pub const SERVING_KEY: &str = "serving-kubelet.key";

/// Run `k8rs agent` until a signal.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let stop = super::stop_on_signal();
    let tools = host::check()?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => data_dir::default_dir()?,
    };
    let _lock = data_dir::prepare(&data_dir)?;
    let agent_dir = data_dir.join("agent");
    let kubeconfig = args
        .kubeconfig
        .unwrap_or_else(|| agent_dir.join(KUBECONFIG));
    let cert = args
        .tls_cert_file
        .unwrap_or_else(|| agent_dir.join(SERVING_CERT));
    let key = args
        .tls_private_key_file
        .unwrap_or_else(|| agent_dir.join(SERVING_KEY));
    for file in [&kubeconfig, &cert, &key] {
        if !file.is_file() {
            anyhow::bail!(
                "{} not found; issue the node's credentials where the server runs with \
                 `k8rs node-credentials --node-name NAME --node-ip IP --out {}` and copy them here",
                file.display(),
                agent_dir.display()
            );
        }
    }
    let client_ca_pem = k8rs_client::root_ca_from_kubeconfig(&kubeconfig)?.with_context(|| {
        format!(
            "{} has no certificate-authority-data (the cluster CA)",
            kubeconfig.display()
        )
    })?;
    let tls = k8rs_kubelet::server::TlsMaterial {
        cert_pem: read(&cert)?,
        key_pem: read(&key)?,
        client_ca_pem,
    };

    let Some(node) = start_node("agent", &tools, &data_dir, &args.node, stop.clone()).await? else {
        return Ok(());
    };
    let NodeStart {
        node_ip,
        containerd,
        runtime,
        config,
    } = node;
    tokio::spawn(start_kubelet(
        "agent",
        kubeconfig,
        config,
        runtime,
        (Ok(tls), node_ip),
        stop.clone(),
    ));
    stopped(stop).await;
    // Containers keep running in their shims and are found again by the next start.
    progress("agent", "stopping containerd (containers keep running)");
    containerd.stop().await;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Run `k8rs node-credentials`: write the node's kubeconfig and serving certificate.
pub fn node_credentials(args: NodeCredentialsArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => data_dir::default_dir()?,
    };
    let server = match args.server {
        Some(url) => url,
        None => server_url(&data_dir.join("admin.kubeconfig"))?,
    };
    let kubeconfig = k8rs_apiserver::pki::node_kubeconfig(&data_dir, &args.node_name, &server)?;
    let tls = k8rs_apiserver::pki::kubelet_tls(&data_dir, &args.node_name, &args.node_ip)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (name, text, mode) in [
        (KUBECONFIG, kubeconfig.as_str(), 0o600),
        (SERVING_CERT, tls.cert_pem.as_str(), 0o644),
        (SERVING_KEY, tls.key_pem.as_str(), 0o600),
    ] {
        let path: PathBuf = args.out.join(name);
        write(&path, text, mode)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The `server:` of a kubeconfig's first cluster.
fn server_url(kubeconfig: &Path) -> anyhow::Result<String> {
    let text = read(kubeconfig)
        .context("pass --server, or --data-dir of a server that has started once")?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().trim_matches('"').to_string())
        .with_context(|| format!("no server: in {}", kubeconfig.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_from_a_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            "clusters:\n- name: k8rs\n  cluster:\n    server: \"https://10.0.0.1:6443\"\n",
        )
        .unwrap();
        assert_eq!(server_url(&path).unwrap(), "https://10.0.0.1:6443");
        assert!(server_url(&dir.path().join("missing")).is_err());
    }
}
