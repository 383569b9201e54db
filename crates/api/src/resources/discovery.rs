//! `discovery.k8s.io/v1` resources.

use super::ResourceStrategy;
use crate::printers::cluster as p;

/// The discovery resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(
        ("discovery.k8s.io", "v1"),
        "EndpointSlice",
        "endpointslices",
        true,
        &p::ENDPOINT_SLICE,
    )
    .generation()]
}
