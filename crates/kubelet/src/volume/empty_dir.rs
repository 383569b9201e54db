//! `kubernetes.io/empty-dir` (upstream `pkg/volume/emptydir`): a directory under the pod's
//! volumes dir, on the node's disk or, with `medium: Memory`, a tmpfs sized by
//! `sizeLimit` (at most the node's allocatable memory). Also the tmpfs helpers the
//! memory-backed secret and projected volumes use, and unmounting at teardown.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8rs_api::quantity::Quantity;
use k8s_openapi::api::core::v1::Volume;

use super::{SetUpContext, VolumePlugin};

/// The emptyDir volume plugin.
pub struct EmptyDirPlugin;

/// Mount points at or under `dir` (from `/proc/self/mountinfo`), deepest first.
pub fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_mount_point(dir: &Path) -> bool {
    mount_points_under(dir).iter().any(|p| p == dir)
}

fn c_path(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

/// Makes `dir` a tmpfs (once), mode 0777, optionally limited to `size` bytes.
pub fn set_up_tmpfs(dir: &Path, size: Option<u64>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    if !is_mount_point(dir) {
        let target = c_path(dir)?;
        let options = CString::new(match size {
            Some(bytes) => format!("size={bytes}"),
            None => String::new(),
        })
        .map_err(|e| e.to_string())?;
        let fstype = CString::new("tmpfs").expect("no NUL");
        // SAFETY: every pointer is a valid NUL-terminated string for the call.
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mount failed: tmpfs on {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))
}

/// Unmounts `dir` (lazily, so a busy mount still goes).
pub fn unmount(dir: &Path) -> Result<(), String> {
    let target = c_path(dir)?;
    // SAFETY: `target` is a valid NUL-terminated path.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        return Err(format!(
            "unmount {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Upstream's `calculateEmptyDirMemorySize`: the node's allocatable memory, lowered to the
/// volume's `sizeLimit` when that is smaller.
pub fn memory_size(volume: &Volume, allocatable: &BTreeMap<String, String>) -> Option<u64> {
    let node = allocatable
        .get("memory")
        .and_then(|m| Quantity::parse(m).ok())
        .map(|q| q.value().max(0) as u64);
    let limit = volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_ref())
        .and_then(|q| Quantity::parse(&q.0).ok())
        .map(|q| q.value().max(0) as u64)
        .filter(|l| *l > 0);
    match (node, limit) {
        (Some(n), Some(l)) => Some(n.min(l)),
        (n, l) => l.or(n),
    }
}

#[async_trait::async_trait]
impl VolumePlugin for EmptyDirPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/empty-dir"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.empty_dir.is_some()
    }

    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        let medium = volume
            .empty_dir
            .as_ref()
            .and_then(|e| e.medium.clone())
            .unwrap_or_default();
        match medium.as_str() {
            "" => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
                // 0777 whatever the umask: containers of any user share it.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
            }
            "Memory" => set_up_tmpfs(dir, memory_size(volume, ctx.allocatable))?,
            other => return Err(format!("unknown storage medium {other:?}")),
        }
        Ok(dir.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_size_is_the_smaller_of_limit_and_allocatable() {
        let v: Volume = serde_json::from_value(
            json!({"name": "m", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}),
        )
        .unwrap();
        let alloc: BTreeMap<String, String> = [("memory".to_string(), "1Gi".to_string())].into();
        assert_eq!(memory_size(&v, &alloc), Some(64 << 20));
        let small: BTreeMap<String, String> = [("memory".to_string(), "32Mi".to_string())].into();
        assert_eq!(memory_size(&v, &small), Some(32 << 20));
        let none: Volume = serde_json::from_value(json!({"name": "m", "emptyDir": {}})).unwrap();
        assert_eq!(memory_size(&none, &BTreeMap::new()), None);
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
    }

    /// A real tmpfs when running as root; skipped otherwise.
    #[test]
    fn tmpfs_mounts_with_its_size_and_unmounts() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("mem");
        set_up_tmpfs(&vol, Some(4 << 20)).unwrap();
        set_up_tmpfs(&vol, Some(4 << 20)).unwrap(); // idempotent
        assert_eq!(mount_points_under(dir.path()), vec![vol.clone()]);
        // SAFETY: statvfs on a valid path into a zeroed struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let p = c_path(&vol).unwrap();
        assert_eq!(unsafe { libc::statvfs(p.as_ptr(), &mut st) }, 0);
        assert_eq!(st.f_blocks * st.f_frsize, 4 << 20);
        unmount(&vol).unwrap();
        assert!(mount_points_under(dir.path()).is_empty());
    }
}
