//! Zone health and the rate limits of NoExecute tainting (upstream
//! `node_lifecycle_controller.go` `ComputeZoneState`, `handleDisruption`,
//! `setLimiterInZone`, and `scheduler.RateLimitedTimedQueue`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use k8s_openapi::api::core::v1::Node;

/// `--node-eviction-rate`: nodes tainted per second in a healthy zone.
pub const EVICTION_QPS: f64 = 0.1;
/// `--secondary-node-eviction-rate`: in a mostly unhealthy zone of a large cluster.
pub const SECONDARY_EVICTION_QPS: f64 = 0.01;
/// `--unhealthy-zone-threshold`.
pub const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
/// `--large-cluster-size-threshold`: smaller zones stop evicting when partially disrupted.
pub const LARGE_CLUSTER_THRESHOLD: usize = 50;

/// A zone's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Few nodes not ready.
    Normal,
    /// More than two nodes and at least 55 % not ready.
    PartialDisruption,
    /// Every node not ready.
    FullDisruption,
}

/// `ComputeZoneState`: from the Ready condition statuses of a zone's nodes.
pub fn zone_state(ready: &[bool]) -> ZoneState {
    let ready_nodes = ready.iter().filter(|r| **r).count();
    let not_ready = ready.len() - ready_nodes;
    if ready_nodes == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= UNHEALTHY_ZONE_THRESHOLD {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The tainting rate for a zone (`setLimiterInZone`): the normal rate when healthy and
/// when fully disrupted (`HealthyQPSFunc`), the secondary rate for a large partially
/// disrupted zone and none for a small one (`ReducedQPSFunc`).
pub fn zone_qps(state: ZoneState, zone_size: usize) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => EVICTION_QPS,
        ZoneState::PartialDisruption if zone_size > LARGE_CLUSTER_THRESHOLD => {
            SECONDARY_EVICTION_QPS
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// `GetZoneKey`: region and zone labels.
pub fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let get = |new: &str, old: &str| {
        labels
            .get(new)
            .or_else(|| labels.get(old))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    format!("{region}:\x00:{zone}")
}

/// A queue of nodes to taint, drained at a token-bucket rate with burst 1.
#[derive(Debug)]
pub struct RateLimitedQueue {
    queue: VecDeque<String>,
    qps: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimitedQueue {
    /// An empty queue at the normal rate.
    pub fn new(now: Instant) -> Self {
        RateLimitedQueue {
            queue: VecDeque::new(),
            qps: EVICTION_QPS,
            tokens: 1.0,
            last: now,
        }
    }

    /// Queues a node unless it is already queued.
    pub fn add(&mut self, node: &str) {
        if !self.queue.iter().any(|n| n == node) {
            self.queue.push_back(node.to_string());
        }
    }

    /// Drops a node (it became ready again).
    pub fn remove(&mut self, node: &str) {
        self.queue.retain(|n| n != node);
    }

    /// Changes the rate (`SwapLimiter`: a new bucket, full).
    pub fn set_qps(&mut self, qps: f64, now: Instant) {
        if (qps - self.qps).abs() > f64::EPSILON {
            self.qps = qps;
            self.tokens = if qps > 0.0 { 1.0 } else { 0.0 };
            self.last = now;
        }
    }

    /// The nodes whose turn has come.
    pub fn pop_ready(&mut self, now: Instant) -> Vec<String> {
        if self.qps > 0.0 {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.qps).min(1.0);
        }
        self.last = now;
        let mut out = vec![];
        while self.tokens >= 1.0 {
            let Some(node) = self.queue.pop_front() else {
                break;
            };
            self.tokens -= 1.0;
            out.push(node);
        }
        out
    }

    /// Queued nodes.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Zone states of a set of `(zone, ready)` pairs, and whether every zone is fully
/// disrupted (then upstream stops all evictions: "master disruption mode").
pub fn zone_states(nodes: &[(String, bool)]) -> (BTreeMap<String, (ZoneState, usize)>, bool) {
    let mut by_zone: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for (zone, ready) in nodes {
        by_zone.entry(zone.clone()).or_default().push(*ready);
    }
    let states: BTreeMap<String, (ZoneState, usize)> = by_zone
        .into_iter()
        .map(|(zone, ready)| (zone, (zone_state(&ready), ready.len())))
        .collect();
    let all_full = !states.is_empty()
        && states
            .values()
            .all(|(s, _)| *s == ZoneState::FullDisruption);
    (states, all_full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn zone_states_follow_upstream_thresholds() {
        assert_eq!(zone_state(&[true, true, false]), ZoneState::Normal);
        assert_eq!(
            zone_state(&[false, false, true]),
            ZoneState::Normal,
            "two are tolerated"
        );
        assert_eq!(
            zone_state(&[false, false, false, true]),
            ZoneState::PartialDisruption
        );
        assert_eq!(
            zone_state(&[false, false, false, true, true, true]),
            ZoneState::Normal,
            "50 % < 55 %"
        );
        assert_eq!(zone_state(&[false, false]), ZoneState::FullDisruption);
        assert_eq!(zone_qps(ZoneState::Normal, 10), 0.1);
        assert_eq!(zone_qps(ZoneState::FullDisruption, 10), 0.1);
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 10), 0.0);
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 51), 0.01);

        let nodes = vec![
            ("a".to_string(), false),
            ("a".to_string(), false),
            ("b".to_string(), true),
        ];
        let (states, all_full) = zone_states(&nodes);
        assert_eq!(states["a"].0, ZoneState::FullDisruption);
        assert!(!all_full);
        let (_, all_full) = zone_states(&nodes[..2]);
        assert!(all_full, "every zone down: master disruption mode");
    }

    #[test]
    fn tainting_is_paced_one_node_per_ten_seconds() {
        let t0 = Instant::now();
        let mut q = RateLimitedQueue::new(t0);
        for n in ["a", "b", "c", "a"] {
            q.add(n);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop_ready(t0), ["a"], "burst of one");
        assert!(q.pop_ready(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(q.pop_ready(t0 + Duration::from_secs(10)), ["b"]);
        q.set_qps(0.0, t0 + Duration::from_secs(10));
        assert!(
            q.pop_ready(t0 + Duration::from_secs(100)).is_empty(),
            "stopped"
        );
        q.set_qps(0.01, t0 + Duration::from_secs(100));
        assert_eq!(q.pop_ready(t0 + Duration::from_secs(100)), ["c"]);
    }
}
