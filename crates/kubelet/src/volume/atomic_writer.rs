//! Upstream's `pkg/volume/util/atomic_writer.go`: a volume's files are written into a new
//! timestamped directory (`..2026_11_25_18_30_00.123456789`), the `..data` symlink is
//! swapped to it with one `rename(2)`, and the user-visible names are symlinks through
//! `..data`. A reader therefore sees either the whole old payload or the whole new one,
//! never a mix, which is what lets configMap/secret/downwardAPI/projected volumes be
//! updated under running containers.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The symlink to the current timestamped directory.
const DATA_DIR: &str = "..data";
/// The symlink created next to it and renamed over it.
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_PATH_LENGTH: usize = 4096;
const MAX_FILE_NAME_LENGTH: usize = 255;

/// One file of a payload (upstream `FileProjection`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    /// The content.
    pub data: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
}

impl FileProjection {
    /// A file with `data` and `mode`.
    pub fn new(data: impl Into<Vec<u8>>, mode: i32) -> Self {
        FileProjection {
            data: data.into(),
            mode: mode as u32 & 0o7777,
        }
    }
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// Upstream's key → file projection shared by the configMap and secret plugins (and their
/// projected sources): every key at its own name with `default_mode`, or only `items` at
/// their paths and modes; a missing item key fails with `missing(key)` unless the volume
/// is optional.
pub fn project_keys(
    keys: BTreeMap<String, Vec<u8>>,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        return Ok(keys
            .into_iter()
            .map(|(k, v)| (k, FileProjection::new(v, default_mode)))
            .collect());
    };
    let mut payload = Payload::new();
    for item in items {
        let Some(content) = keys.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(missing(&item.key));
        };
        payload.insert(
            item.path.clone(),
            FileProjection::new(content.clone(), item.mode.unwrap_or(default_mode)),
        );
    }
    Ok(payload)
}

/// Upstream's `validatePath`: relative, no `..` element, no leading `..`, bounded lengths.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("invalid path: must not be empty: {path:?}"));
    }
    if path.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {path}"));
    }
    if path.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {path}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {path}"));
    }
    Ok(())
}

/// `path.Clean` for the relative paths payloads use.
fn clean(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes payloads into one target directory.
pub struct AtomicWriter {
    target: PathBuf,
}

impl AtomicWriter {
    /// A writer for `target` (created if missing).
    pub fn new(target: impl Into<PathBuf>) -> Self {
        AtomicWriter {
            target: target.into(),
        }
    }

    /// Makes the target hold exactly `payload`; returns whether anything was written.
    pub fn write(&self, payload: &Payload) -> io::Result<bool> {
        // (1) validate and clean.
        let mut clean_payload = Payload::new();
        for (path, file) in payload {
            validate_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            clean_payload.insert(clean(path), file.clone());
        }
        std::fs::create_dir_all(&self.target)?;
        // (2) user-visible names no longer wanted.
        let remove = self.paths_to_remove(&clean_payload)?;
        // (3) nothing to do when every file already holds its content and mode.
        if remove.is_empty() && !self.should_write(&clean_payload)? {
            return Ok(false);
        }
        // (4)-(5) the new timestamped directory with the payload.
        let ts_dir = self.new_timestamp_dir()?;
        let written = self.write_payload(&clean_payload, &ts_dir);
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        // (6) user-visible symlinks for the top-level names.
        self.create_user_visible(&clean_payload)?;
        // (7)-(9) swap `..data` to the new directory atomically.
        let data_dir = self.target.join(DATA_DIR);
        let old_ts = std::fs::read_link(&data_dir).ok();
        let new_data_dir = self.target.join(NEW_DATA_DIR);
        let _ = std::fs::remove_file(&new_data_dir);
        let ts_name = ts_dir.file_name().unwrap_or_default().to_owned();
        if let Err(e) = std::os::unix::fs::symlink(&ts_name, &new_data_dir)
            .and_then(|_| std::fs::rename(&new_data_dir, &data_dir))
        {
            let _ = std::fs::remove_file(&new_data_dir);
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        // (10) old user-visible names, deepest first.
        for path in remove.iter().rev() {
            let full = self.target.join(path);
            match std::fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&full)?,
                Ok(_) => std::fs::remove_file(&full)?,
                Err(_) => {}
            }
        }
        // (11) the previous timestamped directory.
        if let Some(old) = old_ts {
            if old != Path::new(&ts_name) {
                std::fs::remove_dir_all(self.target.join(old))?;
            }
        }
        Ok(true)
    }

    fn should_write(&self, payload: &Payload) -> io::Result<bool> {
        for (path, file) in payload {
            let full = self.target.join(path);
            match std::fs::metadata(&full) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
                Err(e) => return Err(e),
                Ok(m) => {
                    if m.permissions().mode() & 0o7777 != file.mode
                        || std::fs::read(&full)? != file.data
                    {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Top-level user-visible names (symlinks into `..data`) not in the new payload.
    fn paths_to_remove(&self, payload: &Payload) -> io::Result<BTreeSet<String>> {
        let wanted: BTreeSet<&str> = payload
            .keys()
            .map(|p| p.split('/').next().unwrap_or(p))
            .collect();
        let mut remove = BTreeSet::new();
        for entry in std::fs::read_dir(&self.target)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !wanted.contains(name.as_str()) {
                remove.insert(name);
            }
        }
        Ok(remove)
    }

    fn new_timestamp_dir(&self) -> io::Result<PathBuf> {
        let stamp = chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S");
        for _ in 0..16 {
            let dir = self
                .target
                .join(format!("..{stamp}.{}", rand::random::<u32>()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    // 0755 whatever the umask: group and other must traverse it.
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("cannot create a timestamped directory"))
    }

    fn write_payload(&self, payload: &Payload, dir: &Path) -> io::Result<()> {
        for (path, file) in payload {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&full, &file.data)?;
            // The mode as asked, whatever the umask.
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode))?;
        }
        Ok(())
    }

    /// `bar -> ..data/bar`, `foo -> ..data/foo` for `foo/baz` (upstream links the first
    /// path element only, so nested files follow the swap too).
    fn create_user_visible(&self, payload: &Payload) -> io::Result<()> {
        let tops: BTreeSet<&str> = payload
            .keys()
            .map(|p| p.split('/').next().unwrap_or(p))
            .collect();
        for top in tops {
            let visible = self.target.join(top);
            if std::fs::symlink_metadata(&visible).is_err() {
                std::os::unix::fs::symlink(Path::new(DATA_DIR).join(top), &visible)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(files: &[(&str, &str, i32)]) -> Payload {
        files
            .iter()
            .map(|(p, d, m)| (p.to_string(), FileProjection::new(d.as_bytes(), *m)))
            .collect()
    }

    #[test]
    fn writes_through_a_data_symlink_and_swaps_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(dir.path());
        assert!(w
            .write(&payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]))
            .unwrap());
        let first = std::fs::read_link(dir.path().join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        assert_eq!(
            std::fs::read_link(dir.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/b")).unwrap(),
            "2"
        );
        let mode = std::fs::metadata(dir.path().join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Same payload: nothing written, same directory.
        assert!(!w
            .write(&payload(&[("a", "1", 0o644), ("sub/b", "2", 0o600)]))
            .unwrap());
        assert_eq!(
            std::fs::read_link(dir.path().join("..data")).unwrap(),
            first
        );

        // Changed content and a removed key: new directory, old one and old name gone.
        assert!(w.write(&payload(&[("a", "changed", 0o644)])).unwrap());
        let second = std::fs::read_link(dir.path().join("..data")).unwrap();
        assert_ne!(first, second);
        assert!(!dir.path().join(&first).exists());
        assert!(std::fs::symlink_metadata(dir.path().join("sub")).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a")).unwrap(),
            "changed"
        );

        // A mode change alone rewrites.
        assert!(w.write(&payload(&[("a", "changed", 0o400)])).unwrap());
    }

    #[test]
    fn rejects_paths_that_escape() {
        for bad in ["/abs", "../x", "a/../b", "..hidden", ""] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        assert!(validate_path("a/b.txt").is_ok());
        let dir = tempfile::tempdir().unwrap();
        assert!(AtomicWriter::new(dir.path())
            .write(&payload(&[("../x", "1", 0o644)]))
            .is_err());
    }
}
