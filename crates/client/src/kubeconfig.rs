//! Building a `kube::Client` from a kubeconfig file (`--kubeconfig F`).

use std::path::Path;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A client for the cluster and user of `path`'s current context.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("cannot build an API client")
}

/// The PEM bundle of the cluster CA of `path`'s current context
/// (`certificate-authority-data`, or the `certificate-authority` file), if it names one:
/// what the root CA publisher hands to every namespace (upstream `--root-ca-file`).
pub fn root_ca_from_kubeconfig(path: &Path) -> anyhow::Result<Option<String>> {
    use base64::Engine as _;
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let context_name = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .or_else(|| kubeconfig.clusters.first())
        .and_then(|c| c.cluster.as_ref());
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("certificate-authority-data is not base64")?;
        return Ok(Some(
            String::from_utf8(pem).context("certificate-authority-data is not PEM")?,
        ));
    }
    if let Some(file) = &cluster.certificate_authority {
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read certificate-authority {file}"))?;
        return Ok(Some(pem));
    }
    Ok(None)
}
