//! `node.k8s.io/v1` resources.

use super::ResourceStrategy;
use crate::printers::cluster as p;

/// The node resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(
        ("node.k8s.io", "v1"),
        "RuntimeClass",
        "runtimeclasses",
        false,
        &p::RUNTIME_CLASS,
    )]
}
