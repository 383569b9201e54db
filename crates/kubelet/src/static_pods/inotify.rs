//! inotify on the manifest directory (upstream `file_linux.go` watches it with fsnotify),
//! so an added, edited or removed manifest is picked up at once rather than at the next
//! 20 s poll. Failing to watch only leaves the poll.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// Watches `dir` in a background task, notifying `changes` on every event batch.
pub fn watch(dir: &Path, changes: Arc<Notify>) {
    let fd = match open(dir) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "cannot watch the pod manifest path; polling only");
            return;
        }
    };
    tokio::spawn(async move {
        // SAFETY: the OwnedFd moves into the AsyncFd, which deregisters it before it is
        // closed; nothing else refers to the descriptor.
        let Ok(fd) = (unsafe { AsyncFd::register(fd) }) else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            // Drain every queued event; their content does not matter, only that the
            // directory changed.
            loop {
                // SAFETY: reads into our buffer from the inotify descriptor we own.
                let n = unsafe {
                    libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n <= 0 {
                    break;
                }
            }
            ready.clear_ready();
            changes.notify_one();
        }
    });
}

fn open(dir: &Path) -> std::io::Result<OwnedFd> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: plain syscalls; the descriptor is owned by the returned OwnedFd.
    unsafe {
        let raw = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let mask = libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_CLOSE_WRITE
            | libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_MODIFY
            | libc::IN_ATTRIB;
        if libc::inotify_add_watch(raw, path.as_ptr(), mask) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}
