//! `autoscaling/v1` and `v2` HorizontalPodAutoscalers (`pkg/apis/autoscaling/validation`).

use k8s_openapi::api::autoscaling::{v1, v2};

use super::names::is_valid_path_segment_name;
use super::path::FieldPath;
use crate::quantity::Quantity;
use crate::FieldError;

/// `validMetricSourceTypes.List()` (sorted).
const METRIC_SOURCE_TYPES: &[&str] = &[
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];
const MUST_POPULATE: &str = "must populate information for the given metric source";

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
    errs.extend(validate_object_reference(
        kind,
        name,
        &sp.child("scaleTargetRef"),
    ));
    errs
}

/// `ValidateCrossVersionObjectReference`: kind and name, each a path segment.
fn validate_object_reference(kind: &str, name: &str, rp: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
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
        errs.extend(validate_metric_spec(
            m,
            &FieldPath::new("spec").child("metrics").index(i),
        ));
    }
    errs
}

/// `validateMetricSpec`: the type names exactly one populated source, which must be valid.
fn validate_metric_spec(m: &v2::MetricSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = m.type_.as_str();
    if ty.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric source type",
        ));
    }
    let supported = METRIC_SOURCE_TYPES.contains(&ty);
    if !supported {
        errs.push(FieldError::not_supported(
            path.child("type"),
            ty,
            METRIC_SOURCE_TYPES,
        ));
    }
    // Only the first populated source is checked in depth, as upstream does.
    let mut present: Vec<&str> = Vec::new();
    if let Some(o) = &m.object {
        present.push("object");
        let op = path.child("object");
        errs.extend(validate_object_reference(
            &o.described_object.kind,
            &o.described_object.name,
            &op.child("describedObject"),
        ));
        errs.extend(validate_metric_identifier(&o.metric, &op.child("metric")));
        errs.extend(validate_metric_target(&o.target, &op.child("target")));
        if o.target.value.is_none() && o.target.average_value.is_none() {
            errs.push(FieldError::required(
                op.child("target").child("averageValue"),
                "must set either a target value or averageValue",
            ));
        }
    }
    if let Some(e) = &m.external {
        present.push("external");
        if present.len() == 1 {
            let ep = path.child("external");
            let tp = ep.child("target");
            errs.extend(validate_metric_identifier(&e.metric, &ep.child("metric")));
            errs.extend(validate_metric_target(&e.target, &tp));
            match (&e.target.value, &e.target.average_value) {
                (None, None) => errs.push(FieldError::required(
                    tp.child("averageValue"),
                    "must set either a target value for metric or a per-pod target",
                )),
                (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                    tp.child("value"),
                    "may not set both a target value for metric and a per-pod target",
                )),
                _ => {}
            }
        }
    }
    if let Some(p) = &m.pods {
        present.push("pods");
        if present.len() == 1 {
            let pp = path.child("pods");
            errs.extend(validate_metric_identifier(&p.metric, &pp.child("metric")));
            errs.extend(validate_metric_target(&p.target, &pp.child("target")));
            if p.target.average_value.is_none() {
                errs.push(FieldError::required(
                    pp.child("target").child("averageValue"),
                    "must specify a positive target averageValue",
                ));
            }
        }
    }
    if let Some(r) = &m.resource {
        present.push("resource");
        if present.len() == 1 {
            let rp = path.child("resource");
            if r.name.is_empty() {
                errs.push(FieldError::required(
                    rp.child("name"),
                    "must specify a resource name",
                ));
            }
            errs.extend(validate_utilization_target(&r.target, &rp.child("target")));
        }
    }
    let expected = match ty {
        "Object" => Some(("object", m.object.is_some())),
        "Pods" => Some(("pods", m.pods.is_some())),
        "Resource" => Some(("resource", m.resource.is_some())),
        "ContainerResource" => Some(("containerResource", m.container_resource.is_some())),
        "External" => Some(("external", m.external.is_some())),
        _ => None,
    };
    match expected {
        Some((field, false)) => errs.push(FieldError::required(path.child(field), MUST_POPULATE)),
        Some(_) => {}
        // Upstream reports an unknown type a second time here.
        None => errs.push(FieldError::not_supported(
            path.child("type"),
            ty,
            METRIC_SOURCE_TYPES,
        )),
    }
    if present.len() != 1 {
        let expected_field = expected.map(|(f, _)| f).unwrap_or("");
        for field in present.into_iter().filter(|f| *f != expected_field) {
            errs.push(FieldError::forbidden(
                path.child(field),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

/// Resource targets: a raw average value or a utilization, not both.
fn validate_utilization_target(t: &v2::MetricTarget, tp: &FieldPath) -> Vec<FieldError> {
    let mut errs = validate_metric_target(t, tp);
    match (&t.average_utilization, &t.average_value) {
        (None, None) => errs.push(FieldError::required(
            tp.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            tp.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        )),
        _ => {}
    }
    errs
}

/// `validateMetricTarget`: a known type, at least one value, values positive.
fn validate_metric_target(t: &v2::MetricTarget, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = t.type_.as_str();
    if ty.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            path.child("type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if t.average_utilization.is_none() && t.average_value.is_none() && t.value.is_none() {
        // Upstream's field name, leading space included.
        errs.push(FieldError::invalid(
            path.child(" utilization, value and averageValue"),
            ty,
            "at least one not nil",
        ));
    }
    for (field, q) in [("value", &t.value), ("averageValue", &t.average_value)] {
        let Some(q) = q else { continue };
        let positive = Quantity::parse(&q.0).is_ok_and(|q| !q.is_zero() && !q.is_negative());
        if !positive {
            // A Quantity prints through its String(), unquoted.
            errs.push(FieldError::invalid_repr(
                path.child(field),
                q.0.as_str(),
                "must be positive",
            ));
        }
    }
    if let Some(u) = t.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

/// `validateMetricIdentifier`: a name that is a path segment.
fn validate_metric_identifier(id: &v2::MetricIdentifier, path: &FieldPath) -> Vec<FieldError> {
    let np = path.child("name");
    if id.name.is_empty() {
        return vec![FieldError::required(np, "must specify a metric name")];
    }
    is_valid_path_segment_name(&id.name)
        .into_iter()
        .map(|m| FieldError::invalid(&np, id.name.as_str(), m))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn metric(m: Value) -> Vec<String> {
        let m: v2::MetricSpec = serde_json::from_value(m).unwrap();
        validate_metric_spec(&m, &FieldPath::new("spec.metrics").index(0))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn valid_metrics_pass() {
        for m in [
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}),
            json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}),
            json!({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "web", "apiVersion": "v1"},
                "metric": {"name": "hits"}, "target": {"type": "Value", "value": "10"}}}),
            json!({"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}),
        ] {
            assert_eq!(metric(m.clone()), Vec::<String>::new(), "{m}");
        }
    }

    #[test]
    fn metric_errors_match_upstream() {
        let p = "spec.metrics[0]";
        assert_eq!(
            metric(json!({"type": "Resource"})),
            [format!("{p}.resource: Required value: must populate information for the given metric source")]
        );
        assert_eq!(
            metric(
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}})
            ),
            [format!(
                "{p}.resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            )]
        );
        assert_eq!(
            metric(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50, "averageValue": "1"}}})),
            [format!("{p}.resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization")]
        );
        assert_eq!(
            metric(json!({"type": "Resource", "resource": {"name": "", "target": {"type": "Bogus"}}})),
            [
                format!("{p}.resource.name: Required value: must specify a resource name"),
                format!("{p}.resource.target.type: Invalid value: \"Bogus\": must be either Utilization, Value, or AverageValue"),
                format!("{p}.resource.target. utilization, value and averageValue: Invalid value: \"Bogus\": at least one not nil"),
                format!("{p}.resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization"),
            ]
        );
        assert_eq!(
            metric(
                json!({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "0"}}})
            ),
            [format!(
                "{p}.pods.target.averageValue: Invalid value: 0: must be positive"
            )]
        );
        assert_eq!(
            metric(json!({"type": "External", "external": {"metric": {"name": ""}, "target": {"type": "Value", "value": "1", "averageValue": "1"}}})),
            [
                format!("{p}.external.metric.name: Required value: must specify a metric name"),
                format!("{p}.external.target.value: Forbidden: may not set both a target value for metric and a per-pod target"),
            ]
        );
        assert_eq!(
            metric(json!({"type": "Pods",
                "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}},
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}})),
            [format!(
                "{p}.resource: Forbidden: must populate the given metric source only"
            )]
        );
        assert_eq!(
            metric(json!({"type": "Custom"})),
            [
                format!("{p}.type: Unsupported value: \"Custom\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""),
                format!("{p}.type: Unsupported value: \"Custom\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""),
            ]
        );
    }
}
