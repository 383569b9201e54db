//! Observing the eviction signals on a real node (upstream `helpers.go`
//! `makeSignalObservations` over the stats summary): memory from `/proc/meminfo` as
//! cAdvisor computes the root working set, filesystems from `statvfs`, process ids from
//! `/proc`; `allocatableMemory.available` from the pods' working sets in the summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::thresholds::{Observation, Signal};

/// Observed signals.
pub type Observations = BTreeMap<Signal, Observation>;

/// Where a node's signals come from.
#[derive(Clone, Debug)]
pub struct HostSignals {
    /// The kubelet's filesystem (nodefs: pod logs, volumes, its data).
    pub nodefs: PathBuf,
    /// The runtime's image filesystem (imagefs).
    pub imagefs: PathBuf,
}

impl HostSignals {
    /// Observes every signal it can; `pods_working_set` and `allocatable_memory` give
    /// `allocatableMemory.available`.
    pub fn observe(&self, pods_working_set: i64, allocatable_memory: Option<i64>) -> Observations {
        let mut obs = Observations::new();
        if let Some(meminfo) = read("/proc/meminfo") {
            if let Some(m) = memory_available(&meminfo) {
                obs.insert(Signal::MemoryAvailable, m);
            }
        }
        if let Some(allocatable) = allocatable_memory {
            obs.insert(
                Signal::AllocatableMemoryAvailable,
                Observation {
                    available: allocatable - pods_working_set,
                    capacity: allocatable,
                },
            );
        }
        for (path, bytes, inodes) in [
            (
                &self.nodefs,
                Signal::NodeFsAvailable,
                Signal::NodeFsInodesFree,
            ),
            (
                &self.imagefs,
                Signal::ImageFsAvailable,
                Signal::ImageFsInodesFree,
            ),
        ] {
            if let Some((b, i)) = filesystem(path) {
                obs.insert(bytes, b);
                obs.insert(inodes, i);
            }
        }
        if let Some(p) = pids() {
            obs.insert(Signal::PidAvailable, p);
        }
        obs
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `memory.available` = capacity − working set, where the root working set is usage
/// (total − free) minus inactive file pages, as cAdvisor reports it.
pub fn memory_available(meminfo: &str) -> Option<Observation> {
    let get = |key: &str| -> Option<i64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<i64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    let total = get("MemTotal:")?;
    let free = get("MemFree:")?;
    let inactive_file = get("Inactive(file):").unwrap_or(0);
    let working_set = (total - free - inactive_file).max(0);
    Some(Observation {
        available: total - working_set,
        capacity: total,
    })
}

/// `(bytes, inodes)` of the filesystem holding `path`.
fn filesystem(path: &Path) -> Option<(Observation, Observation)> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    Some((
        Observation {
            available: st.f_bavail as i64 * frsize,
            capacity: st.f_blocks as i64 * frsize,
        },
        Observation {
            available: st.f_ffree as i64,
            capacity: st.f_files as i64,
        },
    ))
}

/// `pid.available`: the smaller of `kernel.pid_max` and `kernel.threads-max`, minus the
/// tasks running now (upstream counts processes through `sysinfo`).
fn pids() -> Option<Observation> {
    let max = |p: &str| read(p)?.trim().parse::<i64>().ok();
    let capacity = match (
        max("/proc/sys/kernel/pid_max"),
        max("/proc/sys/kernel/threads-max"),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    // The fourth field of /proc/loadavg is `running/total` scheduling entities.
    let loadavg = read("/proc/loadavg")?;
    let total: i64 = loadavg
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()?;
    Some(Observation {
        available: capacity - total,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_available_is_capacity_minus_working_set() {
        let meminfo = "MemTotal:       8000000 kB\nMemFree:        1000000 kB\nMemAvailable:   5000000 kB\nInactive(file):  2000000 kB\n";
        let m = memory_available(meminfo).unwrap();
        assert_eq!(m.capacity, 8_000_000 * 1024);
        // Working set = 8e6 − 1e6 − 2e6 = 5e6 kB; available = 3e6 kB.
        assert_eq!(m.available, 3_000_000 * 1024);
    }

    #[test]
    fn host_observations_here() {
        let dir = tempfile::tempdir().unwrap();
        let signals = HostSignals {
            nodefs: dir.path().into(),
            imagefs: dir.path().into(),
        };
        let obs = signals.observe(100, Some(1000));
        assert_eq!(
            obs[&Signal::AllocatableMemoryAvailable],
            Observation {
                available: 900,
                capacity: 1000
            }
        );
        for s in [
            Signal::MemoryAvailable,
            Signal::NodeFsAvailable,
            Signal::NodeFsInodesFree,
            Signal::ImageFsAvailable,
            Signal::PidAvailable,
        ] {
            let o = obs[&s];
            assert!(o.capacity > 0 && o.available <= o.capacity, "{s}: {o:?}");
        }
    }
}
