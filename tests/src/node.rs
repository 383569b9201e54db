//! For suites that run real containers (containerd, `k8rs up`): whether this host can,
//! and the offline images they run, built by the project's `scripts/mkimage.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8rs_kubelet::runtime::Runtime as _;

/// The busybox image every node suite runs (`kubectl run --image=busybox` resolves to it).
pub const BUSYBOX: &str = "docker.io/library/busybox:latest";
/// The sandbox image containerd is configured with.
pub const PAUSE: &str = "k8rs.local/pause:3.10";

/// Why containers cannot run here (not root, a host package missing), or `None`.
/// Callers print `SKIP: <reason>` and return.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 {
        return Some("not root (containers need root)".into());
    }
    for (binary, package) in [
        ("containerd", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
        ("python3", "python3"),
    ] {
        if which(binary).is_none() {
            return Some(format!("{binary} not found (apt-get install {package})"));
        }
    }
    if !Path::new("/bin/busybox").is_file() {
        return Some("/bin/busybox not found (apt-get install busybox-static)".into());
    }
    if cni_bin_dir().is_none() {
        return Some(
            "CNI plugins not found in /usr/lib/cni or /opt/cni/bin \
             (apt-get install containernetworking-plugins)"
                .into(),
        );
    }
    None
}

extern "C" {
    fn geteuid() -> u32;
}

/// The directory holding the bridge, host-local and portmap CNI plugins.
pub fn cni_bin_dir() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| {
            ["bridge", "host-local", "portmap"]
                .iter()
                .all(|p| d.join(p).is_file())
        })
}

/// `binary`'s path on `$PATH`.
pub fn which(binary: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(binary))
        .find(|path| path.is_file())
}

/// Writes the busybox and pause image tarballs into `dir` (a node's `agent/images/`)
/// with `scripts/mkimage.py`, as the README's run command does.
pub fn build_images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mkimage.py");
    for (file, args) in [
        ("busybox.tar", vec![BUSYBOX]),
        (
            "pause.tar",
            vec![
                PAUSE,
                "--entrypoint",
                r#"["/bin/sleep","infinity"]"#,
                "--cmd",
                "null",
            ],
        ),
    ] {
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.join(file))
            .args(args)
            .output()
            .expect("run python3 scripts/mkimage.py");
        assert!(
            out.status.success(),
            "mkimage.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Network interfaces on the host (`/sys/class/net`).
pub fn interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The cgroup directories named `name` anywhere under `/sys/fs/cgroup/*/kubepods`.
pub fn pod_cgroups(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for hierarchy in hierarchies.filter_map(|e| e.ok()) {
        let kubepods = hierarchy.path().join("kubepods");
        for qos in ["", "burstable", "besteffort"] {
            let dir = kubepods.join(qos).join(name);
            if dir.is_dir() {
                found.push(dir);
            }
        }
    }
    found
}

/// Containers outlive `k8rs up` by design; when an assertion fails mid-test, stop and
/// remove the test's sandboxes through CRI so nothing keeps running after it.
pub struct RemoveSandboxesOnFailure(pub std::path::PathBuf);

impl Drop for RemoveSandboxesOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(rt) = tokio::runtime::Runtime::new() else {
            return;
        };
        rt.block_on(async {
            let Ok(cri) = k8rs_kubelet::cri::CriRuntime::connect(&self.0) else {
                return;
            };
            for sandbox in cri.list_pod_sandboxes().await.unwrap_or_default() {
                let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                let _ = cri.remove_pod_sandbox(&sandbox.id).await;
            }
        });
    }
}

/// Waits until `pod` (default namespace) reports `phase`; panics with the pod and the
/// server log otherwise.
pub fn wait_phase(
    server: &crate::TestServer,
    pod: &str,
    phase: &str,
    timeout: std::time::Duration,
) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = server.kubectl(
            crate::KubectlVersion::V1_33,
            ["get", "pod", pod, "-o=jsonpath={.status.phase}"],
        );
        if String::from_utf8_lossy(&out.stdout) == phase {
            return;
        }
        if std::time::Instant::now() >= deadline {
            let describe = server.kubectl(
                crate::KubectlVersion::V1_33,
                ["get", "pod", pod, "-o", "yaml"],
            );
            panic!(
                "pod {pod} not {phase} after {timeout:?}:\n{}\n--- server log ---\n{}",
                String::from_utf8_lossy(&describe.stdout),
                server.log()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Lazily unmounts everything mounted under `dir` (the kubelet's tmpfs volumes of pods a
/// test left behind), so a removed data dir leaves no mount on the host.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let base = dir.to_string_lossy().into_owned();
    if base.is_empty() {
        return;
    }
    for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
        if point.starts_with(&base) {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
    }
}
