//! The node's own usage from `/proc` (what cAdvisor's root container reports upstream):
//! cumulative busy CPU time, memory, boot time.

/// The node's cumulative busy CPU time in nanoseconds (`/proc/stat`, USER_HZ = 100).
pub fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()?
        + v.get(1)?
        + v.get(2)?
        + v.get(5).unwrap_or(&0)
        + v.get(6).unwrap_or(&0)
        + v.get(7).unwrap_or(&0);
    Some(busy * 10_000_000)
}

/// Boot time, seconds since the epoch.
pub fn boot_time() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The node's memory in bytes from `/proc/meminfo`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Memory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable`.
    pub available: u64,
    /// `MemFree`.
    pub free: u64,
}

/// Reads `/proc/meminfo`.
pub fn memory() -> Option<Memory> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let get = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some(Memory {
        total: get("MemTotal:")?,
        available: get("MemAvailable:")?,
        free: get("MemFree:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readers_work_here() {
        assert!(cpu_ns().unwrap() > 0);
        let m = memory().unwrap();
        assert!(m.total >= m.available && m.available > 0);
        assert!(boot_time().unwrap() > 1_000_000_000);
    }
}
