//! `NodeResourcesFit` (requests must fit the node's allocatable minus what its pods
//! request; scored by a strategy) and `NodeResourcesBalancedAllocation` (prefers nodes
//! whose CPU and memory use stay even).

mod balanced;
mod fit;

pub use balanced::BalancedAllocation;
pub use fit::{Fit, ScoringStrategy};

use crate::framework::{NodeInfo, PodInfo};

/// A resource to score and its weight (`scoringStrategy.resources`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSpec {
    /// `cpu`, `memory`, or an extended resource.
    pub name: String,
    /// Its weight.
    pub weight: i64,
}

/// Upstream's default: CPU and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    ["cpu", "memory"]
        .iter()
        .map(|n| ResourceSpec {
            name: n.to_string(),
            weight: 1,
        })
        .collect()
}

/// Upstream's `calculateResourceAllocatableRequest`: the node's allocatable amount and
/// what would be requested with the pod there. `non_zero` uses the default requests for
/// CPU and memory of containers that set none. `(0, 0)` for an extended resource the pod
/// does not ask for.
pub fn allocatable_and_requested(
    node: &NodeInfo,
    pod: &PodInfo,
    resource: &str,
    non_zero: bool,
) -> (i64, i64) {
    let is_basic = matches!(resource, "cpu" | "memory");
    let pod_request = if non_zero && is_basic {
        pod.non_zero_requests.get(resource)
    } else {
        pod.requests.get(resource)
    };
    if !is_basic && resource != "ephemeral-storage" && pod_request == 0 {
        return (0, 0);
    }
    let requested = if non_zero && is_basic {
        node.non_zero_requested.get(resource)
    } else {
        node.requested.get(resource)
    };
    (node.allocatable.get(resource), requested + pod_request)
}
