//! `scheduling.k8s.io/v1` resources.

use super::ResourceStrategy;
use crate::printers::cluster as p;

/// The scheduling resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(
        ("scheduling.k8s.io", "v1"),
        "PriorityClass",
        "priorityclasses",
        false,
        &p::PRIORITY_CLASS,
    )
    .short(&["pc"])]
}
