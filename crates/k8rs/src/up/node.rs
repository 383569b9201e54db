//! The node `k8rs up` runs: its configuration from the host (capacity, addresses, OS).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use k8rs_kubelet::NodeConfig;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

/// `--pod-cidr` must be an IPv4 subnet (host-local hands out its addresses).
pub fn check_pod_cidr(cidr: &str) -> anyhow::Result<()> {
    let valid = cidr.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok()
            && bits.parse::<u8>().is_ok_and(|b| (8..=30).contains(&b))
    });
    if !valid {
        anyhow::bail!("--pod-cidr {cidr:?} is not an IPv4 subnet such as 10.42.0.0/24");
    }
    Ok(())
}

/// Pods per node, upstream's default `--max-pods`.
const MAX_PODS: &str = "110";

/// The node's configuration, read from the host.
pub fn config(
    name: &str,
    address: IpAddr,
    data_dir: &Path,
    pod_cidr: Option<String>,
) -> NodeConfig {
    let mut capacity = BTreeMap::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    capacity.insert("cpu".to_string(), cpus.to_string());
    if let Some(kib) = mem_total_kib() {
        capacity.insert("memory".to_string(), format!("{kib}Ki"));
    }
    if let Some(bytes) = disk_bytes(data_dir) {
        capacity.insert(
            "ephemeral-storage".to_string(),
            format!("{}Ki", bytes / 1024),
        );
    }
    capacity.insert("pods".to_string(), MAX_PODS.to_string());
    NodeConfig {
        name: name.to_string(),
        labels: BTreeMap::new(),
        allocatable: capacity.clone(),
        capacity,
        address: address.to_string(),
        probe_network: true,
        kubelet_port: 10250,
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        os_image: os_image().unwrap_or_else(|| "Linux".into()),
        machine_id: read_trimmed("/etc/machine-id").unwrap_or_else(|| format!("{:032x}", 0)),
        pod_cidr,
        root_dir: Some(data_dir.join("agent/kubelet")),
        pod_manifest_path: Some(data_dir.join("agent/pod-manifests")),
        // nodefs: where the kubelet's data lives; imagefs: containerd's root.
        eviction: Some(k8rs_kubelet::eviction::EvictionConfig::new(
            data_dir,
            &data_dir.join("agent/containerd"),
        )),
    }
}

/// The node name: the host name in lower case (node names are DNS subdomains).
pub fn default_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "k8rs".into())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn mem_total_kib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn disk_bytes(dir: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `path` is NUL-terminated.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_blocks as u64 * stat.f_frsize as u64)
}

/// `PRETTY_NAME` from `/etc/os-release` (`Debian GNU/Linux 12 (bookworm)`).
fn os_image() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Waits until the node reports `Ready=True`.
pub async fn wait_ready(client: kube::Client, name: &str) {
    let nodes: Api<Node> = Api::all(client);
    loop {
        if let Ok(Some(node)) = nodes.get_opt(name).await {
            let ready = node
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cidrs_must_be_ipv4_subnets() {
        check_pod_cidr("10.42.0.0/24").unwrap();
        for bad in [
            "10.42.0.0",
            "10.42.0.0/33",
            "fd00::/64",
            "x/24",
            "10.42.0.0/4",
        ] {
            assert!(check_pod_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_config_has_real_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let config = config("n1", "10.0.0.5".parse().unwrap(), dir.path(), None);
        assert_eq!(config.name, "n1");
        assert_eq!(config.address, "10.0.0.5");
        assert!(config.capacity["cpu"].parse::<u32>().unwrap() >= 1);
        assert!(config.capacity["memory"].ends_with("Ki"));
        assert!(config.capacity["ephemeral-storage"].ends_with("Ki"));
        assert_eq!(config.capacity["pods"], "110");
        assert!(config.probe_network);
    }
}
