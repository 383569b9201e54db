//! The data directory: where it is by default, and making sure it is usable (and used by
//! one server only) before anything else starts.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::bail;

/// `/var/lib/k8rs` as root, else `$XDG_DATA_HOME/k8rs`, else `~/.local/share/k8rs`.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    choose_default(
        root,
        std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn choose_default(
    root: bool,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if root {
        return Ok(PathBuf::from("/var/lib/k8rs"));
    }
    // The XDG spec says relative values are to be ignored.
    if let Some(xdg) = xdg_data_home.filter(|p| p.is_absolute()) {
        return Ok(xdg.join("k8rs"));
    }
    match home.filter(|p| p.is_absolute()) {
        Some(home) => Ok(home.join(".local/share/k8rs")),
        None => bail!("cannot choose a data directory: neither XDG_DATA_HOME nor HOME is set; pass --data-dir"),
    }
}

/// Holds the data directory's lock for as long as it lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Create `dir` if needed (mode 0700), check that it can be read and written, and lock it
/// so a second server on the same directory fails at once.
pub fn prepare(dir: &Path) -> anyhow::Result<DataDirLock> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => bail!(
            "data directory {} is not a directory; pass --data-dir with a directory",
            dir.display()
        ),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Err(e) = fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
                bail!(
                    "cannot create data directory {}: {}; pass --data-dir with a directory you can write{}",
                    dir.display(),
                    reason(&e),
                    or_run_as_root(&e)
                );
            }
        }
        Err(e) => bail!(
            "cannot access data directory {}: {}; pass --data-dir with a directory you can read and write",
            dir.display(),
            reason(&e)
        ),
    }
    if let Err(e) = fs::read_dir(dir) {
        bail!(
            "cannot read data directory {}: {}; fix its permissions or pass another --data-dir{}",
            dir.display(),
            reason(&e),
            or_run_as_root(&e)
        );
    }
    let lock_path = dir.join("lock");
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
    {
        Ok(file) => file,
        Err(e) => bail!(
            "cannot write in data directory {}: {}; fix its permissions or pass another --data-dir{}",
            dir.display(),
            reason(&e),
            or_run_as_root(&e)
        ),
    };
    // SAFETY: flock on a file descriptor we own; it does not touch memory.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == ErrorKind::WouldBlock {
            bail!(
                "data directory {} is in use by another k8rs process; stop it or pass another --data-dir",
                dir.display()
            );
        }
        bail!(
            "cannot lock data directory {}: {}; pass another --data-dir",
            dir.display(),
            reason(&e)
        );
    }
    Ok(DataDirLock { _file: file })
}

fn reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        ErrorKind::NotADirectory => "a parent is not a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

fn or_run_as_root(e: &std::io::Error) -> &'static str {
    if e.kind() == ErrorKind::PermissionDenied {
        ", or run as root"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn default_dir_follows_root_then_xdg_then_home() {
        let xdg = Some(PathBuf::from("/x"));
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            choose_default(true, xdg.clone(), home.clone()).unwrap(),
            PathBuf::from("/var/lib/k8rs")
        );
        assert_eq!(
            choose_default(false, xdg, home.clone()).unwrap(),
            PathBuf::from("/x/k8rs")
        );
        assert_eq!(
            choose_default(false, Some("rel".into()), home.clone()).unwrap(),
            PathBuf::from("/home/u/.local/share/k8rs")
        );
        let err = choose_default(false, None, None).unwrap_err().to_string();
        assert!(err.ends_with("pass --data-dir"), "{err}");
    }

    #[test]
    fn prepare_creates_the_directory_and_locks_it() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("a/b");
        let lock = prepare(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let err = prepare(&dir).unwrap_err().to_string();
        assert!(err.contains("in use by another k8rs process"), "{err}");
        drop(lock);
        prepare(&dir).unwrap();
    }

    #[test]
    fn a_file_is_not_a_data_directory() {
        let parent = tempfile::tempdir().unwrap();
        let file = parent.path().join("f");
        fs::write(&file, "").unwrap();
        let err = prepare(&file).unwrap_err().to_string();
        assert!(err.contains("is not a directory; pass --data-dir"), "{err}");
        let err = prepare(&file.join("sub")).unwrap_err().to_string();
        assert!(err.contains("a parent is not a directory"), "{err}");
    }
}
