//! What the kubelet mounts into a container (upstream `kubelet_pods.go` `makeMounts`,
//! `ensureHostsFile`, and `kuberuntime_container.go`'s termination-log mount and
//! `getTerminationMessage`): the pod's volumes (with `subPath`/`subPathExpr` and
//! `readOnly`), the kubelet-managed `/etc/hosts`, and the file behind
//! `terminationMessagePath`, read back into the terminated state's `message`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::expansion::expand;
use crate::runtime::{ContainerState, ContainerStatus, Mount};
use crate::volume::MountedVolume;

/// The cluster's DNS domain (upstream `--cluster-domain`).
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// Where the kubelet's hosts file goes in containers.
const ETC_HOSTS: &str = "/etc/hosts";
/// Upstream's `MaxContainerTerminationMessageLength`.
const MAX_TERMINATION_MESSAGE: u64 = 4096;
/// Upstream's `kubecontainer.MaxContainerTerminationMessageLogLines` / `…LogLength`.
const FALLBACK_LOG_LINES: u64 = 80;
const FALLBACK_LOG_BYTES: usize = 2048;
/// Container annotation: the node file behind `terminationMessagePath` (upstream reads
/// it from CRI's mount list; the runtime trait keeps container status small instead).
pub const TERMINATION_HOST_PATH: &str = "io.k8rs.container.terminationMessageHostPath";
/// Container annotation: the container's log file, for `FallbackToLogsOnError`.
pub const LOG_PATH: &str = "io.k8rs.container.logPath";
/// Upstream's container annotation for the termination message policy.
pub const TERMINATION_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";

/// Upstream's `GeneratePodHostNameAndDomain`: `spec.hostname` or the pod name (at most 63
/// characters), and `<subdomain>.<ns>.svc.<cluster domain>` when a subdomain is set.
pub fn host_name_and_domain(pod: &Pod) -> (String, String) {
    let spec = pod.spec.as_ref();
    let mut host = spec
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    if host.len() > 63 {
        host.truncate(63);
        host = host.trim_end_matches(['-', '.']).to_string();
    }
    let domain = spec
        .and_then(|s| s.subdomain.clone())
        .filter(|s| !s.is_empty())
        .map(|sub| {
            format!(
                "{sub}.{}.svc.{CLUSTER_DOMAIN}",
                pod.metadata.namespace.as_deref().unwrap_or("default")
            )
        })
        .unwrap_or_default();
    (host, domain)
}

fn host_aliases(pod: &Pod) -> String {
    let aliases = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_aliases.clone())
        .unwrap_or_default();
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        out.push_str(&format!(
            "{}\t{}\n",
            a.ip,
            a.hostnames.unwrap_or_default().join("\t")
        ));
    }
    out
}

/// Upstream's `managedHostsFileContent` (pod network) or `nodeHostsFileContent` (host
/// network: the node's own hosts file under a header).
pub fn hosts_file_content(pod: &Pod, pod_ips: &[String], node_hosts: &str) -> String {
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return format!(
            "# Kubernetes-managed hosts file (host network).\n{node_hosts}{}",
            host_aliases(pod)
        );
    }
    let (host, domain) = host_name_and_domain(pod);
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        if domain.is_empty() {
            out.push_str(&format!("{ip}\t{host}\n"));
        } else {
            out.push_str(&format!("{ip}\t{host}.{domain}\t{host}\n"));
        }
    }
    out.push_str(&host_aliases(pod));
    out
}

/// Upstream's `ensureHostsFile`: `<pod dir>/etc-hosts`, written once per pod.
pub fn ensure_hosts_file(pod_dir: &Path, pod: &Pod, pod_ips: &[String]) -> Result<PathBuf, String> {
    let path = pod_dir.join("etc-hosts");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(pod_dir).map_err(|e| e.to_string())?;
    let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::write(&path, hosts_file_content(pod, pod_ips, &node_hosts))
        .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// A fresh, world-writable file for one container instance's termination message
/// (`<pod dir>/containers/<name>/<random id>`, as upstream).
pub fn termination_log_file(pod_dir: &Path, container: &str) -> Result<PathBuf, String> {
    let dir = pod_dir.join("containers").join(container);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{:08x}", rand::random::<u32>()));
    std::fs::write(&path, b"").map_err(|e| e.to_string())?;
    // 0666 whatever the umask: the container may run as any user.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// `subPath` must stay inside the volume (upstream `ValidatePathNoBacksteps`).
fn check_sub_path(sub: &str) -> Result<(), String> {
    if Path::new(sub).is_absolute() {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if Path::new(sub)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// Upstream's `makeMounts`: the container's volume mounts on the node, then `/etc/hosts`
/// unless the container mounts its own.
pub fn make_mounts(
    container: &Container,
    volumes: &HashMap<String, MountedVolume>,
    envs: &[(String, String)],
    hosts_file: Option<&Path>,
) -> Result<Vec<Mount>, String> {
    let mut mounts = Vec::new();
    let mut mount_hosts = hosts_file.is_some();
    for m in container.volume_mounts.iter().flatten() {
        let volume = volumes.get(&m.name).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            )
        })?;
        let mut host_path = volume.host_path.clone();
        let mut sub = m.sub_path.clone().unwrap_or_default();
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            let map: HashMap<&str, &str> =
                envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            sub = expand(expr, &|n| map.get(n).map(|v| v.to_string()));
        }
        if !sub.is_empty() {
            check_sub_path(&sub)?;
            let full = host_path.join(&sub);
            if std::fs::symlink_metadata(&full).is_err() {
                let mode = std::fs::metadata(&host_path)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0o755);
                std::fs::create_dir_all(&full)
                    .and_then(|_| {
                        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))
                    })
                    .map_err(|_| {
                        format!(
                            "failed to create subPath directory for volumeMount {:?} of container {:?}",
                            m.name, container.name
                        )
                    })?;
            }
            // Resolve symlinks and refuse any that lead out of the volume.
            let base = host_path.canonicalize().map_err(|e| e.to_string())?;
            let resolved = full.canonicalize().map_err(|e| e.to_string())?;
            if !resolved.starts_with(&base) {
                return Err(format!(
                    "subpath {:?} not within volume path {:?}",
                    resolved.display().to_string(),
                    base.display().to_string()
                ));
            }
            host_path = resolved;
        }
        if m.mount_path == ETC_HOSTS {
            mount_hosts = false;
        }
        mounts.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: m.read_only == Some(true) || volume.read_only,
        });
    }
    if let (true, Some(hosts)) = (mount_hosts, hosts_file) {
        mounts.push(Mount {
            container_path: ETC_HOSTS.into(),
            host_path: hosts.to_string_lossy().into_owned(),
            readonly: false,
        });
    }
    Ok(mounts)
}

/// The last `max` bytes of a file (upstream `tail.ReadAtMost`).
fn read_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Upstream's `readLastStringFromContainerLogs`: the content of the last 80 log lines,
/// at most 2048 bytes.
fn last_log_lines(path: &Path) -> String {
    let Ok(data) = std::fs::read(path) else {
        return String::new();
    };
    let start = crate::server::logs::tail_start(&data, FALLBACK_LOG_LINES);
    let mut out = Vec::new();
    for line in data[start..].split_inclusive(|b| *b == b'\n') {
        if let Ok(entry) = crate::server::logs::parse_line(line) {
            out.extend_from_slice(entry.content);
        }
        if out.len() >= FALLBACK_LOG_BYTES {
            out.truncate(FALLBACK_LOG_BYTES);
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Upstream's `getTerminationMessage` for exited containers: the file behind
/// `terminationMessagePath` (its last 4096 bytes), or with `FallbackToLogsOnError` and a
/// failure, the end of the log; appended to the runtime's own message.
pub fn read_termination_messages(containers: &mut [ContainerStatus]) {
    for c in containers.iter_mut() {
        if c.state != ContainerState::Exited {
            continue;
        }
        let Some(host_path) = c.annotations.get(TERMINATION_HOST_PATH) else {
            continue;
        };
        let fallback = c.annotations.get(TERMINATION_POLICY).map(String::as_str)
            == Some("FallbackToLogsOnError")
            && c.exit_code != 0
            && c.reason != "ContainerCannotRun";
        let (mut message, check_logs) =
            match read_at_most(Path::new(host_path), MAX_TERMINATION_MESSAGE) {
                Ok(data) => (
                    String::from_utf8_lossy(&data).into_owned(),
                    fallback && data.is_empty(),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
                Err(e) => (
                    format!("Error on reading termination log {host_path}: {e}"),
                    false,
                ),
            };
        if check_logs {
            if let Some(log) = c.annotations.get(LOG_PATH) {
                message = last_log_lines(Path::new(log));
            }
        }
        if !message.is_empty() && !c.message.ends_with(&message) {
            if !c.message.is_empty() {
                c.message.push_str(": ");
            }
            c.message.push_str(&message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn managed_hosts_file_with_aliases_and_subdomain() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns"},
            "spec": {"hostname": "web-0", "subdomain": "web", "containers": [],
                     "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]}
        }))
        .unwrap();
        let content = hosts_file_content(&pod, &["10.42.0.7".into()], "");
        assert_eq!(
            content,
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
             10.42.0.7\tweb-0.web.ns.svc.cluster.local\tweb-0\n\n# Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n"
        );
        let plain: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": []}
        }))
        .unwrap();
        assert!(hosts_file_content(&plain, &["10.42.0.8".into()], "").ends_with("10.42.0.8\tp\n"));
        let host_net: Pod = serde_json::from_value(json!({
            "metadata": {"name": "h"}, "spec": {"hostNetwork": true, "containers": []}
        }))
        .unwrap();
        assert_eq!(
            hosts_file_content(&host_net, &[], "127.0.0.1 node\n"),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 node\n"
        );
    }

    #[test]
    fn mounts_with_sub_paths_read_only_and_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        std::os::unix::fs::symlink("/etc", vol.join("escape")).unwrap();
        let volumes: HashMap<String, MountedVolume> = [
            (
                "data".to_string(),
                MountedVolume {
                    host_path: vol.clone(),
                    read_only: false,
                },
            ),
            (
                "cfg".to_string(),
                MountedVolume {
                    host_path: vol.clone(),
                    read_only: true,
                },
            ),
        ]
        .into();
        let container: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/sub", "subPath": "a/b", "readOnly": true},
            {"name": "data", "mountPath": "/expr", "subPathExpr": "$(POD)"},
            {"name": "cfg", "mountPath": "/cfg"},
        ]}))
        .unwrap();
        let hosts = dir.path().join("etc-hosts");
        let envs = vec![("POD".to_string(), "p1".to_string())];
        let mounts = make_mounts(&container, &volumes, &envs, Some(&hosts)).unwrap();
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].host_path, vol.to_str().unwrap());
        assert!(!mounts[0].readonly);
        assert!(vol.join("a/b").is_dir());
        assert!(mounts[1].readonly);
        assert!(mounts[2].host_path.ends_with("/vol/p1"));
        assert!(mounts[3].readonly, "API data volumes are read-only");
        assert_eq!(mounts[4].container_path, "/etc/hosts");

        let bad = |m: serde_json::Value| {
            let c: Container =
                serde_json::from_value(json!({"name": "c", "volumeMounts": [m]})).unwrap();
            make_mounts(&c, &volumes, &envs, None).unwrap_err()
        };
        assert_eq!(
            bad(json!({"name": "nope", "mountPath": "/x"})),
            "cannot find volume \"nope\" to mount into container \"c\""
        );
        assert!(
            bad(json!({"name": "data", "mountPath": "/x", "subPath": "../up"})).contains("'..'")
        );
        assert!(
            bad(json!({"name": "data", "mountPath": "/x", "subPath": "/abs"})).contains("absolute")
        );
        assert!(
            bad(json!({"name": "data", "mountPath": "/x", "subPath": "escape"}))
                .contains("not within volume path")
        );

        // A container mounting its own /etc/hosts gets no managed one.
        let own: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/etc/hosts", "subPath": "hosts"}]}))
        .unwrap();
        let mounts = make_mounts(&own, &volumes, &envs, Some(&hosts)).unwrap();
        assert_eq!(mounts.len(), 1);
    }

    fn exited(annotations: &[(&str, &str)], exit_code: i32) -> ContainerStatus {
        ContainerStatus {
            id: "c1".into(),
            sandbox_id: "s".into(),
            name: "c".into(),
            attempt: 0,
            state: ContainerState::Exited,
            created_at: 0,
            started_at: 0,
            finished_at: 0,
            exit_code,
            image: String::new(),
            image_ref: String::new(),
            reason: String::new(),
            message: String::new(),
            labels: Default::default(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn termination_message_from_file_or_logs() {
        let dir = tempfile::tempdir().unwrap();
        let file = termination_log_file(dir.path(), "c").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666);
        std::fs::write(&file, "bye\n").unwrap();
        let log = dir.path().join("0.log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:00.000000000Z stdout F first\n2026-01-01T00:00:01.000000000Z stderr F boom\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let l = log.to_str().unwrap();
        let mut cs = vec![
            exited(&[(TERMINATION_HOST_PATH, f)], 0),
            exited(
                &[
                    (TERMINATION_HOST_PATH, "/nonexistent/x"),
                    (TERMINATION_POLICY, "FallbackToLogsOnError"),
                    (LOG_PATH, l),
                ],
                1,
            ),
            exited(
                &[
                    (TERMINATION_HOST_PATH, "/nonexistent/x"),
                    (TERMINATION_POLICY, "FallbackToLogsOnError"),
                    (LOG_PATH, l),
                ],
                0,
            ),
        ];
        read_termination_messages(&mut cs);
        assert_eq!(cs[0].message, "bye\n");
        assert_eq!(cs[1].message, "first\nboom\n");
        assert_eq!(cs[2].message, "");
        // Reading again does not repeat it.
        read_termination_messages(&mut cs);
        assert_eq!(cs[0].message, "bye\n");
    }
}
