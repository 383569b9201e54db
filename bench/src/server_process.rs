//! A real `k8rs server` process for benchmarks: spawn it, time its start-up, read its
//! memory from `/proc`, stop it.

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::api_client;

/// How often start-up is polled (kubeconfig file, then `GET /readyz`).
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// A spawned `k8rs server`; killed when dropped unless stopped before.
pub struct ServerProcess {
    child: Child,
    spawned_at: Instant,
    data_dir: PathBuf,
    log_path: PathBuf,
}

/// How long a server took to start, measured from the spawn.
#[derive(Debug, Clone, Copy)]
pub struct StartTimes {
    /// Until `DATA/admin.kubeconfig` appeared.
    pub kubeconfig: Duration,
    /// Until the first `GET /readyz` answered 200 (with the admin credentials).
    pub ready: Duration,
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size now, in bytes.
    pub rss: u64,
    /// `VmHWM`: peak resident set size, in bytes.
    pub peak_rss: u64,
}

impl ServerProcess {
    /// Spawns `binary server` on `127.0.0.1:port` with `data_dir`; its output goes to
    /// `log_path`. A stale `admin.kubeconfig` is removed first so that start-up can be
    /// timed by the file's reappearance.
    pub fn spawn(
        binary: &Path,
        data_dir: &Path,
        port: u16,
        log_path: &Path,
    ) -> io::Result<ServerProcess> {
        Self::spawn_with_args(binary, data_dir, port, log_path, &[])
    }

    /// Like [`spawn`](ServerProcess::spawn) with extra `server` flags (`--disable …`).
    pub fn spawn_with_args(
        binary: &Path,
        data_dir: &Path,
        port: u16,
        log_path: &Path,
        extra: &[&str],
    ) -> io::Result<ServerProcess> {
        match std::fs::remove_file(data_dir.join("admin.kubeconfig")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let log = File::create(log_path)?;
        let spawned_at = Instant::now();
        let child = Command::new(binary)
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind-address", "127.0.0.1", "--secure-port"])
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(ServerProcess {
            child,
            spawned_at,
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the admin kubeconfig the server writes.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    /// Waits until `GET /readyz` answers 200 with the admin kubeconfig's credentials.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<StartTimes, String> {
        let deadline = self.spawned_at + timeout;
        let kubeconfig_path = self.kubeconfig();
        let mut kubeconfig_seen = None;
        let mut client = None;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("the server exited ({status}); {}", self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after {timeout:?}; {}", self.log_tail()));
            }
            if kubeconfig_seen.is_none() && kubeconfig_path.exists() {
                kubeconfig_seen = Some(self.spawned_at.elapsed());
            }
            // The file may be seen half-written; parsing is retried until it succeeds.
            if kubeconfig_seen.is_some() && client.is_none() {
                if let Ok(config) = api_client::load_config(&kubeconfig_path).await {
                    client = Some(api_client::http1_client(&config).map_err(|e| e.to_string())?);
                }
            }
            if let (Some(client), Some(kubeconfig)) = (&client, kubeconfig_seen) {
                if api_client::readyz(client).await {
                    return Ok(StartTimes {
                        kubeconfig,
                        ready: self.spawned_at.elapsed(),
                    });
                }
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The server's current and peak resident memory.
    pub fn memory(&self) -> io::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        parse_memory(&status).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no VmRSS/VmHWM in /proc/<pid>/status",
            )
        })
    }

    /// CPU time (user + system) the server has used so far.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        process_cpu_time(&self.pid().to_string())
    }

    /// Stops the server with SIGTERM (SIGKILL after `grace`); returns how long it took.
    pub fn stop(mut self, grace: Duration) -> io::Result<Duration> {
        let begun = Instant::now();
        let pid = libc::pid_t::try_from(self.pid()).map_err(io::Error::other)?;
        // SAFETY: sends a signal to our own child, whose pid is not reused before wait().
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        while begun.elapsed() < grace {
            if self.child.try_wait()?.is_some() {
                return Ok(begun.elapsed());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        self.child.kill()?;
        self.child.wait()?;
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the server did not stop within {grace:?} of SIGTERM; killed"),
        ))
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("log {}:\n{tail}", self.log_path.display())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `VmRSS` and `VmHWM` (reported in kB, meaning KiB) from a `/proc/<pid>/status`.
pub fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?.trim();
            let kib: u64 = value.strip_suffix("kB")?.trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    Some(Memory {
        rss: field("VmRSS")?,
        peak_rss: field("VmHWM")?,
    })
}

/// CPU time (user + system) used so far by process `pid` (a number, or `self`).
pub fn process_cpu_time(pid: &str) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_cpu_ticks(&stat)
        .filter(|_| ticks_per_second > 0)
        .map(|ticks| Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/<pid>/stat"))
}

/// `utime + stime` in clock ticks from a `/proc/<pid>/stat` line.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `k8rs` binary a benchmark starts: `--k8rs PATH` when given, else the `k8rs` next to
/// the benchmark's own executable (same `target/<profile>/`); an error says how to build it.
pub fn k8rs_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    let binary = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find the bench binary: {e}"))?
            .parent()
            .ok_or("the bench binary has no parent directory")?
            .join("k8rs"),
    };
    if !binary.is_file() {
        return Err(format!(
            "{} is not a file; build it (cargo build --release -p k8rs) or pass --k8rs PATH",
            binary.display()
        ));
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_from_proc_status() {
        let status = "Name:\tk8rs\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\n\
                      VmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss: 20 * 1024 * 1024,
                peak_rss: 40 * 1024 * 1024
            })
        );
        assert_eq!(parse_memory("Name:\tk8rs\nVmRSS:\t 1 kB\n"), None);
    }

    #[test]
    fn cpu_ticks_from_proc_stat() {
        let stat = "4242 (k8rs (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 31 0 0 20 0 9 0 12345 900000 5000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
        assert_eq!(parse_cpu_ticks("4242 (k8rs) S 1"), None);
    }

    #[test]
    fn own_process_memory_is_readable() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let memory = parse_memory(&status).unwrap();
        assert!(memory.rss > 0 && memory.peak_rss >= memory.rss);
    }
}
