//! `rbac.authorization.k8s.io/v1` resources (roles print with the default table).

use super::ResourceStrategy;
use crate::printers::{rbac as p, DEFAULT};

const RBAC_V1: (&str, &str) = ("rbac.authorization.k8s.io", "v1");

/// The RBAC resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(
            RBAC_V1,
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &p::CLUSTER_ROLE_BINDING,
        ),
        ResourceStrategy::new(RBAC_V1, "ClusterRole", "clusterroles", false, &DEFAULT),
        ResourceStrategy::new(
            RBAC_V1,
            "RoleBinding",
            "rolebindings",
            true,
            &p::ROLE_BINDING,
        ),
        ResourceStrategy::new(RBAC_V1, "Role", "roles", true, &DEFAULT),
    ]
}
