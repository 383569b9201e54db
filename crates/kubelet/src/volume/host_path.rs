//! `kubernetes.io/host-path` (upstream `pkg/volume/hostpath`): a path on the node, checked
//! (or created) according to the volume's `type`.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Volume;

use super::{SetUpContext, VolumePlugin};

/// The hostPath volume plugin.
pub struct HostPathPlugin;

/// Upstream's `checkType`: `DirectoryOrCreate` and `FileOrCreate` create what is missing
/// (0755 directories, 0644 files); the other types must already be what they name.
pub fn check_type(path: &Path, kind: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path);
    let shown = path.display();
    let is = |f: &dyn Fn(&std::fs::Metadata) -> bool| meta.as_ref().is_ok_and(f);
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_err() => {
            std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())
        }
        "DirectoryOrCreate" | "Directory" => is(&|m| m.is_dir())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a directory")),
        "FileOrCreate" if meta.is_err() => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| e.to_string())?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())
        }
        "FileOrCreate" | "File" => is(&|m| m.is_file())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a file")),
        "Socket" => is(&|m| m.file_type().is_socket())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a socket file")),
        "CharDevice" => is(&|m| m.file_type().is_char_device())
            .then_some(())
            .ok_or_else(|| {
                format!("hostPath type check failed: {shown} is not a character device")
            }),
        "BlockDevice" => is(&|m| m.file_type().is_block_device())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a block device")),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[async_trait::async_trait]
impl VolumePlugin for HostPathPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/host-path"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.host_path.is_some()
    }

    async fn set_up(
        &self,
        _ctx: &SetUpContext<'_>,
        volume: &Volume,
        _dir: &Path,
    ) -> Result<PathBuf, String> {
        let source = volume.host_path.as_ref().expect("can_support");
        let path = PathBuf::from(&source.path);
        check_type(&path, source.type_.as_deref().unwrap_or(""))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_and_created() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("made/deep");
        check_type(&d, "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        check_type(&d, "Directory").unwrap();
        let f = dir.path().join("f.txt");
        check_type(&f, "FileOrCreate").unwrap();
        assert!(f.is_file());
        check_type(&f, "File").unwrap();
        assert_eq!(
            check_type(&d, "File").unwrap_err(),
            format!("hostPath type check failed: {} is not a file", d.display())
        );
        assert_eq!(
            check_type(&dir.path().join("none"), "Directory").unwrap_err(),
            format!(
                "hostPath type check failed: {} is not a directory",
                dir.path().join("none").display()
            )
        );
        assert!(check_type(&f, "Socket")
            .unwrap_err()
            .ends_with("is not a socket file"));
        check_type(Path::new("/dev/null"), "CharDevice").unwrap();
        check_type(&dir.path().join("anything"), "").unwrap();
        assert_eq!(
            check_type(&f, "Bogus").unwrap_err(),
            "Bogus is an invalid volume type"
        );
    }
}
