//! `networking.k8s.io/v1` resources.

use serde_json::json;

use super::{CreateStatus, ResourceStrategy};
use crate::printers::networking as p;

const NETWORKING_V1: (&str, &str) = ("networking.k8s.io", "v1");

/// The networking resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(
            NETWORKING_V1,
            "IngressClass",
            "ingressclasses",
            false,
            &p::INGRESS_CLASS,
        )
        .generation(),
        ResourceStrategy::new(NETWORKING_V1, "Ingress", "ingresses", true, &p::INGRESS)
            .short(&["ing"])
            .status(CreateStatus::Reset(|_| json!({"loadBalancer": {}})))
            .generation(),
        ResourceStrategy::new(
            NETWORKING_V1,
            "NetworkPolicy",
            "networkpolicies",
            true,
            &p::NETWORK_POLICY,
        )
        .short(&["netpol"])
        .generation(),
    ]
}
