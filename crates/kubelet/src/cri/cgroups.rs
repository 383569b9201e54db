//! Pod cgroups under the cgroupfs driver: the parent the kubelet gives each sandbox
//! (upstream's `/kubepods[/burstable|/besteffort]/pod<uid>`), and removing it once the
//! sandbox has stopped — containerd stops the processes but leaves the directories.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup parent of a pod's sandbox for its QoS class (`Guaranteed`, `Burstable`,
/// `BestEffort`), as upstream's kubelet names it with the cgroupfs driver.
pub fn pod_cgroup_parent(qos_class: &str, pod_uid: &str) -> String {
    match qos_class {
        "Guaranteed" => format!("/kubepods/pod{pod_uid}"),
        "BestEffort" => format!("/kubepods/besteffort/pod{pod_uid}"),
        _ => format!("/kubepods/burstable/pod{pod_uid}"),
    }
}

/// The hierarchies to clean: the root itself on a pure cgroup v2 host, else every
/// mounted v1 controller directory and the v2 `unified` mount (symlinks such as
/// `cpu -> cpu,cpuacct` are skipped, they name a hierarchy already in the list).
fn hierarchies(root: &Path) -> io::Result<Vec<PathBuf>> {
    if root.join("cgroup.controllers").exists() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Removes the cgroup `parent` (and any cgroups left inside it) from every hierarchy
/// under `root`. Returns how many directories were removed. A cgroup that still has
/// processes is retried for a moment (the sandbox's processes may still be exiting),
/// then reported.
pub async fn remove_pod_cgroup(root: &Path, parent: &str) -> io::Result<usize> {
    let relative = parent.trim_matches('/');
    if relative.is_empty() || relative.split('/').any(|part| part == ".." || part == ".") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to remove cgroup {parent:?}"),
        ));
    }
    let mut removed = 0;
    for hierarchy in hierarchies(root)? {
        let dir = hierarchy.join(relative);
        let mut attempt = 0;
        loop {
            match remove_tree(&dir) {
                Ok(n) => {
                    removed += n;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
    }
    Ok(removed)
}

/// `rmdir` depth-first: cgroup directories hold only virtual files, so an empty-of-
/// children cgroup without processes can be removed with `rmdir`.
fn remove_tree(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            removed += remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(removed + 1),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(removed),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_follow_the_qos_class() {
        assert_eq!(pod_cgroup_parent("Guaranteed", "u"), "/kubepods/podu");
        assert_eq!(
            pod_cgroup_parent("Burstable", "u"),
            "/kubepods/burstable/podu"
        );
        assert_eq!(
            pod_cgroup_parent("BestEffort", "u"),
            "/kubepods/besteffort/podu"
        );
    }

    #[tokio::test]
    async fn removes_the_pod_cgroup_from_every_hierarchy_and_nothing_else() {
        // A v1 layout: two controller hierarchies, a symlink alias, the unified mount.
        let root = tempfile::tempdir().unwrap();
        for hierarchy in ["cpu,cpuacct", "memory", "unified"] {
            std::fs::create_dir_all(
                root.path()
                    .join(hierarchy)
                    .join("kubepods/burstable/podu/c1"),
            )
            .unwrap();
            std::fs::create_dir_all(root.path().join(hierarchy).join("kubepods/burstable/podv"))
                .unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
        let removed = remove_pod_cgroup(root.path(), "/kubepods/burstable/podu")
            .await
            .unwrap();
        assert_eq!(removed, 6);
        for hierarchy in ["cpu,cpuacct", "memory", "unified"] {
            let qos = root.path().join(hierarchy).join("kubepods/burstable");
            assert!(!qos.join("podu").exists());
            assert!(qos.join("podv").exists());
        }
        // Gone already: nothing to do, no error.
        assert_eq!(
            remove_pod_cgroup(root.path(), "/kubepods/burstable/podu")
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn refuses_the_root_and_relative_escapes() {
        let root = tempfile::tempdir().unwrap();
        for parent in ["", "/", "/kubepods/../..", "./x"] {
            assert!(
                remove_pod_cgroup(root.path(), parent).await.is_err(),
                "{parent}"
            );
        }
    }
}
