//! `policy/v1` resources.

use serde_json::json;

use super::{CreateStatus, ResourceStrategy};
use crate::printers::cluster as p;

/// The policy resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(("policy", "v1"), "PodDisruptionBudget", "poddisruptionbudgets", true, &p::POD_DISRUPTION_BUDGET)
        .short(&["pdb"])
        .status(CreateStatus::Reset(|_| {
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
        }))
        .generation()]
}
