//! Shared helpers of the k8rs benchmarks (each benchmark is a binary in `src/bin`).

use std::time::Duration;

pub mod api_client;
pub mod server_process;

/// Latency percentiles of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    /// Computes percentiles by the nearest-rank method; `None` without samples.
    pub fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = (p * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        Some(Percentiles {
            p50: rank(0.50),
            p99: rank(0.99),
        })
    }
}

/// Formats a duration as milliseconds with two decimals.
pub fn millis(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        samples.reverse();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!(
            (p.p50, p.p99),
            (Duration::from_millis(50), Duration::from_millis(99))
        );
        assert_eq!(Percentiles::of(&mut []), None);
        let one = Percentiles::of(&mut [Duration::from_millis(7)]).unwrap();
        assert_eq!(one.p99, Duration::from_millis(7));
    }
}
