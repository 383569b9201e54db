//! `autoscaling` resources: HorizontalPodAutoscalers in `v2` (preferred) and `v1`.

use serde_json::json;

use super::{CreateStatus, ResourceStrategy};
use crate::printers::autoscaling as p;

/// The autoscaling resources, preferred version first.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(
            ("autoscaling", "v2"),
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &p::HPA_V2,
        )
        .short(&["hpa"])
        .in_all()
        .status(CreateStatus::Reset(|_| json!({"desiredReplicas": 0}))),
        ResourceStrategy::new(
            ("autoscaling", "v1"),
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &p::HPA_V1,
        )
        .short(&["hpa"])
        .in_all()
        .status(CreateStatus::Reset(
            |_| json!({"currentReplicas": 0, "desiredReplicas": 0}),
        )),
    ]
}
