//! What containerd is started with: `config.toml` (from the configuration measured to
//! work on these hosts: `restrict_oom_score_adj`, `disable_apparmor`, overlayfs, runc
//! with cgroupfs) and the CNI conflist (bridge + host-local on the node's pod CIDR +
//! portmap for hostPort; no loopback plugin — containerd brings `lo` up itself).

use std::path::{Path, PathBuf};

/// Where CNI plugins are looked for: Debian's `containernetworking-plugins`, then the
/// upstream default.
pub const CNI_BIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

/// The CNI plugins the conflist uses.
pub const CNI_PLUGINS: [&str; 3] = ["bridge", "host-local", "portmap"];

/// The image containerd runs as every pod's sandbox (`pause`); it must already be
/// present, as nothing is pulled on an offline node. `scripts/mkimage.py` builds it.
pub const SANDBOX_IMAGE: &str = "k8rs.local/pause:3.10";

/// Everything containerd and its CNI network need, with the paths under the agent
/// directory (`DATA/agent`).
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    /// containerd's own directory: `config.toml`, `root/`, `state/`, the socket, the log.
    pub dir: PathBuf,
    /// Where the CNI conflist is written (`DATA/agent/etc/cni/net.d`).
    pub cni_conf_dir: PathBuf,
    /// Where the CNI plugins are.
    pub cni_bin_dir: PathBuf,
    /// host-local's allocation records (`DATA/agent/cni/networks`).
    pub cni_data_dir: PathBuf,
    /// The pods' subnet on this node (`10.42.0.0/24`); empty until known (node IPAM
    /// assigns it after the node registers; the kubelet then calls
    /// `UpdateRuntimeConfig`, which writes the conflist).
    pub pod_cidr: String,
    /// The bridge the pods' veths join (≤ 15 characters).
    pub bridge: String,
    /// The sandbox (pause) image.
    pub sandbox_image: String,
}

impl ContainerdConfig {
    /// The layout under `agent_dir` (`DATA/agent`), k3s's: `containerd/`,
    /// `etc/cni/net.d/`, `cni/`.
    pub fn new(agent_dir: &Path, cni_bin_dir: PathBuf, pod_cidr: &str) -> ContainerdConfig {
        ContainerdConfig {
            dir: agent_dir.join("containerd"),
            cni_conf_dir: agent_dir.join("etc/cni/net.d"),
            cni_bin_dir,
            cni_data_dir: agent_dir.join("cni/networks"),
            pod_cidr: pod_cidr.to_string(),
            bridge: "cni0".into(),
            sandbox_image: SANDBOX_IMAGE.into(),
        }
    }

    /// containerd's gRPC (and CRI) socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The configuration file containerd is started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// containerd's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The conflist file.
    pub fn conflist_path(&self) -> PathBuf {
        self.cni_conf_dir.join("10-k8rs.conflist")
    }

    /// Writes `config.toml` and, when the pod CIDR is known, the CNI conflist (both
    /// rewritten at every start, so a changed plugin directory takes effect). Without a
    /// pod CIDR an existing conflist is kept: it holds the CIDR of the last run.
    pub fn write(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.config_path(), self.config_toml())?;
        if !self.pod_cidr.is_empty() {
            self.write_cni()?;
        }
        Ok(())
    }

    /// Writes the CNI conflist; containerd notices the file and loads it.
    pub fn write_cni(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.cni_conf_dir)?;
        std::fs::create_dir_all(&self.cni_data_dir)?;
        // Write and rename, so containerd never loads half a file.
        let tmp = self.cni_conf_dir.join(".10-k8rs.conflist.tmp");
        std::fs::write(&tmp, self.cni_conflist())?;
        std::fs::rename(tmp, self.conflist_path())
    }

    /// containerd's `config.toml` (version 2).
    pub fn config_toml(&self) -> String {
        let q = |p: &Path| toml_string(&p.to_string_lossy());
        format!(
            r#"# Written by k8rs at every start; edits are overwritten.
version = 2
root = {root}
state = {state}

[grpc]
  address = {socket}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox_image}
  # Required here (no CAP_SYS_RESOURCE): without it every sandbox fails.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {bin_dir}
    conf_dir = {conf_dir}
"#,
            root = q(&self.dir.join("root")),
            state = q(&self.dir.join("state")),
            socket = q(&self.socket()),
            sandbox_image = toml_string(&self.sandbox_image),
            bin_dir = q(&self.cni_bin_dir),
            conf_dir = q(&self.cni_conf_dir),
        )
    }

    /// The CNI network: a bridge that is the pods' gateway and masquerades their traffic,
    /// host-local addresses from the node's pod CIDR, and portmap for `hostPort`.
    pub fn cni_conflist(&self) -> String {
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "k8rs",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.cni_data_dir,
                    },
                },
                {
                    "type": "portmap",
                    "capabilities": {"portMappings": true},
                    "snat": true,
                },
            ],
        });
        serde_json::to_string_pretty(&conflist).expect("JSON values serialize") + "\n"
    }
}

/// The first of [`CNI_BIN_DIRS`] holding every plugin of [`CNI_PLUGINS`].
pub fn find_cni_bin_dir() -> Option<PathBuf> {
    CNI_BIN_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|dir| CNI_PLUGINS.iter().all(|p| dir.join(p).is_file()))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ContainerdConfig {
        ContainerdConfig::new(
            Path::new("/var/lib/k8rs/agent"),
            PathBuf::from("/usr/lib/cni"),
            "10.42.0.0/24",
        )
    }

    #[test]
    fn config_toml_keeps_everything_under_the_agent_dir() {
        let toml = config().config_toml();
        for line in [
            r#"root = "/var/lib/k8rs/agent/containerd/root""#,
            r#"state = "/var/lib/k8rs/agent/containerd/state""#,
            r#"address = "/var/lib/k8rs/agent/containerd/containerd.sock""#,
            r#"sandbox_image = "k8rs.local/pause:3.10""#,
            "restrict_oom_score_adj = true",
            "disable_apparmor = true",
            r#"snapshotter = "overlayfs""#,
            r#"runtime_type = "io.containerd.runc.v2""#,
            "SystemdCgroup = false",
            r#"bin_dir = "/usr/lib/cni""#,
            r#"conf_dir = "/var/lib/k8rs/agent/etc/cni/net.d""#,
        ] {
            assert!(
                toml.lines().any(|l| l.trim() == line),
                "missing {line}:\n{toml}"
            );
        }
    }

    #[test]
    fn paths_are_quoted_as_toml_strings() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
        assert_eq!(toml_string("x\ny"), r#""x\u000Ay""#);
    }

    #[test]
    fn conflist_is_bridge_host_local_and_portmap_without_loopback() {
        let conflist: serde_json::Value = serde_json::from_str(&config().cni_conflist()).unwrap();
        let plugins = conflist["plugins"].as_array().unwrap();
        let types: Vec<_> = plugins
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        let bridge = &plugins[0];
        assert_eq!(bridge["bridge"], "cni0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], true);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.0.0/24");
        assert_eq!(
            bridge["ipam"]["dataDir"],
            "/var/lib/k8rs/agent/cni/networks"
        );
        assert_eq!(plugins[1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn files_are_written_where_containerd_and_cni_look() {
        let agent = tempfile::tempdir().unwrap();
        let config =
            ContainerdConfig::new(agent.path(), PathBuf::from("/usr/lib/cni"), "10.42.0.0/24");
        config.write().unwrap();
        assert!(std::fs::read_to_string(config.config_path())
            .unwrap()
            .contains("version = 2"));
        assert!(agent
            .path()
            .join("etc/cni/net.d/10-k8rs.conflist")
            .is_file());
        assert!(agent.path().join("cni/networks").is_dir());
    }
}
