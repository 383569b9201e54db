//! Eviction signals and thresholds (upstream `pkg/kubelet/eviction/api/types.go` and
//! `helpers.go` `ParseThresholdConfig`): `--eviction-hard memory.available<100Mi,…`.

use std::fmt;

/// An eviction signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// `memory.available`: node memory capacity minus its working set.
    MemoryAvailable,
    /// `allocatableMemory.available`: allocatable memory minus the pods' working set.
    AllocatableMemoryAvailable,
    /// `nodefs.available`: free bytes on the kubelet's filesystem.
    NodeFsAvailable,
    /// `nodefs.inodesFree`.
    NodeFsInodesFree,
    /// `imagefs.available`: free bytes on the runtime's image filesystem.
    ImageFsAvailable,
    /// `imagefs.inodesFree`.
    ImageFsInodesFree,
    /// `pid.available`: process ids left.
    PidAvailable,
}

impl Signal {
    /// Every signal, in upstream's eviction priority (memory first).
    pub const ALL: [Signal; 7] = [
        Signal::MemoryAvailable,
        Signal::AllocatableMemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    /// The flag spelling.
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::AllocatableMemoryAvailable => "allocatableMemory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    /// The node condition the signal drives (`signalToNodeCondition`).
    pub fn condition(self) -> &'static str {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => "MemoryPressure",
            Signal::PidAvailable => "PIDPressure",
            _ => "DiskPressure",
        }
    }

    /// The resource reclaimed by evicting pods (`signalToResource`).
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// Whether observations of the signal are bytes (printed as binary quantities).
    fn bytes(self) -> bool {
        !matches!(
            self,
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree | Signal::PidAvailable
        )
    }

    fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A threshold's value: an absolute quantity or a percentage of capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdValue {
    /// Bytes or a count.
    Quantity(i64),
    /// A fraction of the signal's capacity (0 < p ≤ 1).
    Percentage(f64),
}

/// One hard threshold: the signal is under pressure when its available amount is below
/// the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The signal.
    pub signal: Signal,
    /// The value.
    pub value: ThresholdValue,
}

impl Threshold {
    /// The threshold as an amount, given the signal's capacity.
    pub fn quantity(&self, capacity: i64) -> i64 {
        match self.value {
            ThresholdValue::Quantity(q) => q,
            ThresholdValue::Percentage(p) => (capacity as f64 * p) as i64,
        }
    }

    /// Whether an observation crosses the threshold (upstream `thresholdsMet`).
    pub fn met(&self, observed: Observation) -> bool {
        observed.available < self.quantity(observed.capacity)
    }

    /// A quantity of this signal as upstream prints it (`resource.Quantity.String()`).
    pub fn format(&self, amount: i64) -> String {
        if self.signal.bytes() {
            binary_si(amount)
        } else {
            amount.to_string()
        }
    }
}

/// One observed signal: what is available out of what capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observation {
    /// Available now.
    pub available: i64,
    /// Capacity.
    pub capacity: i64,
}

/// Upstream's default hard thresholds on Linux (`DefaultEvictionHard`).
pub fn default_hard() -> Vec<Threshold> {
    parse_hard("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%")
        .expect("upstream defaults parse")
}

/// Parses `--eviction-hard` (`signal<value` statements, comma-separated) with upstream's
/// errors. An empty string disables hard eviction.
pub fn parse_hard(flag: &str) -> Result<Vec<Threshold>, String> {
    let mut thresholds: Vec<Threshold> = Vec::new();
    for statement in flag.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, value)) = statement.split_once('<') else {
            if statement.contains('>') || statement.contains('=') {
                return Err(format!(
                    "unsupported eviction operator in {statement:?}; only < is supported"
                ));
            }
            return Err(format!(
                "invalid eviction threshold syntax {statement}, expected <signal><operator><value>"
            ));
        };
        let signal = Signal::parse(name.trim())
            .ok_or_else(|| format!("unsupported eviction signal {}", name.trim()))?;
        if thresholds.iter().any(|t| t.signal == signal) {
            return Err(format!(
                "found duplicate eviction threshold for signal {signal}"
            ));
        }
        let value = value.trim();
        let value = if let Some(pct) = value.strip_suffix('%') {
            let p: f64 = pct
                .parse()
                .map_err(|_| format!("invalid percentage: {value}"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "eviction percentage threshold {signal} must be > 0%, and <= 100%: {value}"
                ));
            }
            ThresholdValue::Percentage(p / 100.0)
        } else {
            let q = k8rs_api::quantity::Quantity::parse(value)
                .map_err(|e| format!("invalid eviction threshold {statement}: {e}"))?;
            if q.is_negative() {
                return Err(format!(
                    "eviction threshold {signal} must be positive: {value}"
                ));
            }
            ThresholdValue::Quantity(q.value())
        };
        thresholds.push(Threshold { signal, value });
    }
    Ok(thresholds)
}

/// `resource.NewQuantity(n, BinarySI).String()` for whole numbers: the largest binary
/// suffix that divides `n` exactly, else the plain number.
pub fn binary_si(n: i64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if n == 0 {
        return "0".into();
    }
    let mut value = n;
    let mut suffix = "";
    for s in SUFFIXES {
        if value % 1024 != 0 {
            break;
        }
        value /= 1024;
        suffix = s;
    }
    format!("{value}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_defaults() {
        let d = default_hard();
        assert_eq!(d.len(), 5);
        assert_eq!(d[0].signal, Signal::MemoryAvailable);
        assert_eq!(d[0].value, ThresholdValue::Quantity(100 << 20));
        assert_eq!(d[1].value, ThresholdValue::Percentage(0.10));
        assert_eq!(d[3].signal, Signal::ImageFsAvailable);
        assert_eq!(d[3].value, ThresholdValue::Percentage(0.15));
    }

    #[test]
    fn parse_errors_are_upstreams() {
        assert_eq!(
            parse_hard("memory.free<1Gi").unwrap_err(),
            "unsupported eviction signal memory.free"
        );
        assert!(parse_hard("memory.available>1Gi")
            .unwrap_err()
            .contains("unsupported eviction operator"));
        assert!(parse_hard("memory.available<1Gi,memory.available<2Gi")
            .unwrap_err()
            .contains("duplicate"));
        assert!(parse_hard("nodefs.available<0%").is_err());
        assert!(parse_hard("nodefs.available<101%").is_err());
        assert!(parse_hard("memory.available<lots").is_err());
        assert!(parse_hard("").unwrap().is_empty());
    }

    #[test]
    fn thresholds_are_met_below_their_quantity() {
        let t = parse_hard("memory.available<100Mi,nodefs.available<10%").unwrap();
        let obs = |available, capacity| Observation {
            available,
            capacity,
        };
        assert!(t[0].met(obs(99 << 20, 1 << 30)));
        assert!(!t[0].met(obs(100 << 20, 1 << 30)));
        assert_eq!(t[1].quantity(1000), 100);
        assert!(t[1].met(obs(99, 1000)));
        assert!(!t[1].met(obs(100, 1000)));
    }

    #[test]
    fn binary_quantities_print_as_go_does() {
        assert_eq!(binary_si(100 << 20), "100Mi");
        assert_eq!(binary_si(1536), "1536");
        assert_eq!(binary_si(3 << 30), "3Gi");
        assert_eq!(binary_si(5 * 1024 + 1024 * 1024), "1029Ki");
        assert_eq!(binary_si(0), "0");
    }
}
