//! Conversion between versions that share storage: upstream stores one version of a
//! resource and serves the others by converting. Objects are stored in the version first
//! registered (core `v1` Events, `autoscaling/v2` HorizontalPodAutoscalers) and converted
//! on the way in and out (upstream: `pkg/apis/events/v1/conversion.go`,
//! `pkg/apis/autoscaling/v1/conversion.go`).

use serde_json::{json, Map, Value};

use k8rs_api::ResourceInfo;

/// Whether objects of `a` and `b` can share storage through conversion.
pub fn convertible(a: &ResourceInfo, b: &ResourceInfo) -> bool {
    a.kind == b.kind
        && matches!(
            (a.group, b.group),
            ("", "events.k8s.io") | ("events.k8s.io", "") | ("autoscaling", "autoscaling")
        )
}

/// Convert `obj` to `to_api_version` (same kind). Objects already there are returned as is.
pub fn convert(obj: &Value, to_api_version: &str) -> Value {
    let from = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if from == to_api_version {
        return obj.clone();
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut out = match (kind, from, to_api_version) {
        ("Event", "v1", "events.k8s.io/v1") => rename(obj, CORE_TO_EVENTS),
        ("Event", "events.k8s.io/v1", "v1") => rename(obj, &invert(CORE_TO_EVENTS)),
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(obj),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(obj),
        _ => obj.clone(),
    };
    out["apiVersion"] = json!(to_api_version);
    out
}

/// core/v1 Event field → events.k8s.io/v1 Event field (top level); the rest is shared.
const CORE_TO_EVENTS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn invert(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    pairs.iter().map(|(a, b)| (*b, *a)).collect()
}

fn rename(obj: &Value, pairs: &[(&str, &str)]) -> Value {
    let Some(m) = obj.as_object() else {
        return obj.clone();
    };
    let out: Map<String, Value> = m
        .iter()
        .map(|(k, v)| {
            let k = pairs
                .iter()
                .find(|(from, _)| from == k)
                .map(|(_, to)| to.to_string())
                .unwrap_or_else(|| k.clone());
            (k, v.clone())
        })
        .collect();
    Value::Object(out)
}

/// Annotations through which v1 carries what only v2 can express (upstream's names).
const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric.get("type").and_then(Value::as_str) == Some("Resource")
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric
            .pointer("/resource/target/type")
            .and_then(Value::as_str)
            == Some("Utilization")
}

fn set_annotation(obj: &mut Value, key: &str, value: &Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"]
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value.to_string());
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let annotations = obj.pointer_mut("/metadata/annotations")?.as_object_mut()?;
    let raw = annotations.remove(key)?;
    if annotations.is_empty() {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("annotations");
        }
    }
    serde_json::from_str(raw.as_str()?).ok()
}

/// Fields v1 and v2 HPAs spell the same way.
const HPA_SHARED_SPEC: &[&str] = &["scaleTargetRef", "minReplicas", "maxReplicas"];
const HPA_SHARED_STATUS: &[&str] = &[
    "observedGeneration",
    "lastScaleTime",
    "currentReplicas",
    "desiredReplicas",
];

/// An object with just `fields` copied from `from`.
fn shared_fields(from: &Value, fields: &[&str]) -> Value {
    Value::Object(
        fields
            .iter()
            .filter_map(|f| from.get(*f).map(|v| (f.to_string(), v.clone())))
            .collect(),
    )
}

fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut out = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler"});
    out["metadata"] = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec = obj.get("spec").cloned().unwrap_or_default();
    let mut v1_spec = shared_fields(&spec, HPA_SHARED_SPEC);
    let metrics: Vec<Value> = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (cpu, other): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(u) = cpu
        .first()
        .and_then(|m| m.pointer("/resource/target/averageUtilization"))
    {
        v1_spec["targetCPUUtilizationPercentage"] = u.clone();
    }
    if !other.is_empty() {
        set_annotation(&mut out, METRICS_ANNOTATION, &json!(other));
    }
    if let Some(b) = spec.get("behavior") {
        set_annotation(&mut out, BEHAVIOR_ANNOTATION, b);
    }
    out["spec"] = v1_spec;
    if let Some(status) = obj.get("status") {
        let mut v1_status = shared_fields(status, HPA_SHARED_STATUS);
        let current: Vec<Value> = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (cpu, other): (Vec<Value>, Vec<Value>) = current.into_iter().partition(|m| {
            m.get("type").and_then(Value::as_str) == Some("Resource")
                && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        });
        if let Some(u) = cpu
            .first()
            .and_then(|m| m.pointer("/resource/current/averageUtilization"))
        {
            v1_status["currentCPUUtilizationPercentage"] = u.clone();
        }
        if !other.is_empty() {
            set_annotation(&mut out, CURRENT_METRICS_ANNOTATION, &json!(other));
        }
        if let Some(c) = status
            .get("conditions")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            set_annotation(&mut out, CONDITIONS_ANNOTATION, c);
        }
        if v1_status.get("desiredReplicas").is_none() {
            v1_status["desiredReplicas"] = json!(0);
        }
        if v1_status.get("currentReplicas").is_none() {
            v1_status["currentReplicas"] = json!(0);
        }
        out["status"] = v1_status;
    }
    out
}

fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut src = obj.clone();
    let other_metrics = take_annotation(&mut src, METRICS_ANNOTATION);
    let behavior = take_annotation(&mut src, BEHAVIOR_ANNOTATION);
    let conditions = take_annotation(&mut src, CONDITIONS_ANNOTATION);
    let current_other = take_annotation(&mut src, CURRENT_METRICS_ANNOTATION);
    let mut out = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"});
    out["metadata"] = src.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec = src.get("spec").cloned().unwrap_or_default();
    let mut v2_spec = shared_fields(&spec, HPA_SHARED_SPEC);
    let mut metrics = Vec::new();
    if let Some(u) = spec.get("targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": u}}}));
    }
    if let Some(Value::Array(other)) = other_metrics {
        metrics.extend(other);
    }
    if !metrics.is_empty() {
        v2_spec["metrics"] = json!(metrics);
    }
    if let Some(b) = behavior {
        v2_spec["behavior"] = b;
    }
    out["spec"] = v2_spec;
    if let Some(status) = src.get("status") {
        let mut v2_status = shared_fields(status, HPA_SHARED_STATUS);
        let mut current = Vec::new();
        if let Some(u) = status.get("currentCPUUtilizationPercentage") {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}));
        }
        if let Some(Value::Array(other)) = current_other {
            current.extend(other);
        }
        if !current.is_empty() {
            v2_status["currentMetrics"] = json!(current);
        }
        if let Some(c) = conditions {
            v2_status["conditions"] = c;
        }
        out["status"] = v2_status;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_groups() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "Started", "count": 2});
        let ev = convert(&core, "events.k8s.io/v1");
        assert_eq!(ev["regarding"]["name"], "p");
        assert_eq!(ev["note"], "hi");
        assert_eq!(ev["deprecatedCount"], 2);
        assert_eq!(ev["reason"], "Started");
        assert_eq!(convert(&ev, "v1"), core);
    }

    #[test]
    fn hpa_cpu_target_maps_both_ways_and_other_metrics_survive_v1() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}});
        let v1 = convert(&v2, "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
        assert!(v1["spec"].get("metrics").is_none());
        assert!(v1["metadata"]["annotations"][METRICS_ANNOTATION]
            .as_str()
            .unwrap()
            .contains("memory"));
        let back = convert(&v1, "autoscaling/v2");
        assert_eq!(back["spec"], v2["spec"]);
        assert!(back["metadata"].get("annotations").is_none());
    }
}
