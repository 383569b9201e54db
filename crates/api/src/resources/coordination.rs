//! `coordination.k8s.io/v1` resources.

use super::ResourceStrategy;
use crate::printers::cluster as p;

/// The coordination resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(
        ("coordination.k8s.io", "v1"),
        "Lease",
        "leases",
        true,
        &p::LEASE,
    )]
}
