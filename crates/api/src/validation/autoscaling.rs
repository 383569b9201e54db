//! `autoscaling/v1` and `v2` HorizontalPodAutoscalers (`pkg/apis/autoscaling/validation`).

use k8s_openapi::api::autoscaling::{v1, v2};

use super::names::is_valid_path_segment_name;
use super::path::FieldPath;
use crate::FieldError;

/// Lowest allowed `minReplicas` (scale-to-zero is an alpha feature, off).
const MIN_REPLICAS_LOWER_BOUND: i32 = 1;

fn validate_common(min: Option<i32>, max: i32, kind: &str, name: &str) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    if let Some(min) = min.filter(|m| *m < MIN_REPLICAS_LOWER_BOUND) {
        errs.push(FieldError::invalid(
            sp.child("minReplicas"),
            min,
            format!("must be greater than or equal to {MIN_REPLICAS_LOWER_BOUND}"),
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let rp = sp.child("scaleTargetRef");
    for (field, v) in [("kind", kind), ("name", name)] {
        if v.is_empty() {
            errs.push(FieldError::required(rp.child(field), ""));
        } else {
            errs.extend(
                is_valid_path_segment_name(v)
                    .into_iter()
                    .map(|m| FieldError::invalid(rp.child(field), v, m)),
            );
        }
    }
    errs
}

pub fn validate_hpa_v1(
    h: &v1::HorizontalPodAutoscaler,
    _old: Option<&v1::HorizontalPodAutoscaler>,
) -> Vec<FieldError> {
    let empty = Default::default();
    let spec = h.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_common(
        spec.min_replicas,
        spec.max_replicas,
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
    );
    if let Some(t) = spec.target_cpu_utilization_percentage.filter(|t| *t < 1) {
        errs.push(FieldError::invalid(
            FieldPath::new("spec").child("targetCPUUtilizationPercentage"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

pub fn validate_hpa_v2(
    h: &v2::HorizontalPodAutoscaler,
    _old: Option<&v2::HorizontalPodAutoscaler>,
) -> Vec<FieldError> {
    let empty = Default::default();
    let spec = h.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_common(
        spec.min_replicas,
        spec.max_replicas,
        &spec.scale_target_ref.kind,
        &spec.scale_target_ref.name,
    );
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        let mp = FieldPath::new("spec").child("metrics").index(i);
        const TYPES: &[&str] = &[
            "ContainerResource",
            "External",
            "Object",
            "Pods",
            "Resource",
        ];
        if m.type_.is_empty() {
            errs.push(FieldError::required(
                mp.child("type"),
                "must specify a metric source type",
            ));
        } else if !TYPES.contains(&m.type_.as_str()) {
            errs.push(FieldError::not_supported(
                mp.child("type"),
                m.type_.as_str(),
                TYPES,
            ));
        }
    }
    errs
}
