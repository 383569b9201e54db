//! containerd as a supervised child: started with our configuration, restarted with
//! back-off if it dies, stopped with SIGTERM on shutdown. Containers survive a stop
//! (their shims are separate processes, as with k3s) and containerd finds them again
//! at the next start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use super::ContainerdConfig;
use crate::cri::CriRuntime;

/// How long containerd gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running, supervised containerd.
#[derive(Debug)]
pub struct Containerd {
    socket: PathBuf,
    stop: watch::Sender<bool>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Containerd {
    /// Writes the configuration, stops a containerd left running by an earlier k8rs
    /// that was killed, starts containerd and waits until its CRI service answers.
    pub async fn start(config: &ContainerdConfig, binary: &Path) -> anyhow::Result<Containerd> {
        config.write().with_context(|| {
            format!(
                "cannot write containerd's configuration in {}",
                config.dir.display()
            )
        })?;
        let pid_file = config.dir.join("containerd.pid");
        stop_stale(&pid_file, &config.config_path()).await;
        let command = Launch {
            binary: binary.to_path_buf(),
            config: config.config_path(),
            log: config.log_path(),
            pid_file,
        };
        // Start once here so a containerd that cannot start at all fails `up` at once.
        let child = command.spawn()?;
        let (stop, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(command, child, stopped));
        let containerd = Containerd {
            socket: config.socket(),
            stop,
            supervisor,
        };
        let runtime = CriRuntime::connect(&containerd.socket)?;
        if let Err(e) = runtime.wait_ready(Duration::from_secs(60)).await {
            containerd.stop().await;
            anyhow::bail!(
                "containerd did not answer on {} within 60s ({e}); see {}",
                config.socket().display(),
                config.log_path().display()
            );
        }
        Ok(containerd)
    }

    /// containerd's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops containerd (SIGTERM, SIGKILL after 10 s) and its supervision; containers
    /// keep running.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

struct Launch {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
}

impl Launch {
    fn spawn(&self) -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let child = tokio::process::Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C at the terminal reaches k8rs, which stops
            // containerd in order, instead of reaching containerd directly.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        if let Some(pid) = child.id() {
            let _ = std::fs::write(&self.pid_file, format!("{pid}\n"));
        }
        Ok(child)
    }
}

/// Restarts containerd whenever it exits, with back-off (1 s doubling to 30 s, reset
/// after a minute of running), until told to stop.
async fn supervise(
    launch: Launch,
    mut child: tokio::process::Child,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        tokio::select! {
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                tracing::warn!(%status, restart_in = ?backoff, log = %launch.log.display(), "containerd exited; restarting it");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                match launch.spawn() {
                    Ok(next) => child = next,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "cannot restart containerd");
                        // Keep trying: the failure may be transient (fd limits, disk).
                        loop {
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = stop.changed() => return,
                            }
                            if let Ok(next) = launch.spawn() {
                                child = next;
                                break;
                            }
                        }
                    }
                }
            }
            _ = stop.changed() => {
                terminate(&mut child).await;
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&launch.pid_file);
}

async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!("containerd did not stop within 10s; killing it");
    }
    let _ = child.kill().await;
}

/// A containerd left by an earlier k8rs that did not stop it (killed with SIGKILL)
/// would hold the root's lock; stop it if it is ours (same config on its command line).
async fn stop_stale(pid_file: &Path, config: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == config.as_os_str().as_encoded_bytes());
    if !ours {
        return;
    }
    tracing::info!(
        pid,
        "stopping the containerd left running by an earlier k8rs"
    );
    // SAFETY: kill(2) with a pid we checked is our containerd.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
