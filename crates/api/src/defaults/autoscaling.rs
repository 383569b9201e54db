//! `autoscaling/v1` and `autoscaling/v2` defaults.

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::autoscaling::{v1, v2};

pub(super) fn hpa_v1(hpa: &mut v1::HorizontalPodAutoscaler) {
    hpa.spec
        .get_or_insert_with(Default::default)
        .min_replicas
        .get_or_insert(1);
}

/// Min replicas 1, an 80% CPU target when no metric is given, and, when `behavior` is set,
/// its unset rules filled from upstream's scale-up and scale-down defaults.
pub(super) fn hpa_v2(hpa: &mut v2::HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(|m| m.is_empty()) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(b) = spec.behavior.as_mut() {
        let up = HPAScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some("Max".into()),
            policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
            ..Default::default()
        };
        let down = HPAScalingRules {
            stabilization_window_seconds: None,
            select_policy: Some("Max".into()),
            policies: Some(vec![policy("Percent", 100)]),
            ..Default::default()
        };
        b.scale_up = Some(fill_rules(b.scale_up.take(), up));
        b.scale_down = Some(fill_rules(b.scale_down.take(), down));
    }
}

fn policy(type_: &str, value: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    }
}

fn fill_rules(given: Option<HPAScalingRules>, defaults: HPAScalingRules) -> HPAScalingRules {
    let Some(mut r) = given else { return defaults };
    if r.select_policy.is_none() {
        r.select_policy = defaults.select_policy;
    }
    if r.policies.is_none() {
        r.policies = defaults.policies;
    }
    if r.stabilization_window_seconds.is_none() {
        r.stabilization_window_seconds = defaults.stabilization_window_seconds;
    }
    r
}
