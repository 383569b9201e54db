//! HorizontalPodAutoscalers (`autoscaling/v2`, and `v1` viewed as `v2`).

use serde_json::{json, Value};

use super::{age_cell, arr_at, col, int_at, name, quantity, str_at, Printer, AGE, NAME};
use crate::Column;

const COLUMNS: &[Column] = &[
    NAME,
    col("Reference", "string", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.", 0),
    col("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.", 0),
    col("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.", 0),
    col("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.", 0),
    col("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.", 0),
    AGE,
];

/// `autoscaling/v2` HorizontalPodAutoscalers.
pub static HPA_V2: Printer = Printer {
    columns: COLUMNS,
    row: hpa_row,
};

/// `autoscaling/v1` HorizontalPodAutoscalers.
pub static HPA_V1: Printer = Printer {
    columns: COLUMNS,
    row: |obj, now| hpa_row(&v1_as_v2(obj), now),
};

/// The `v2` view of a `v1` HPA: the CPU utilization target becomes a Resource metric (80%
/// when unset, as the stored `v2` object is defaulted).
pub fn v1_as_v2(hpa: &Value) -> Value {
    let target = hpa
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
        .unwrap_or(80);
    let mut current = json!([]);
    if let Some(c) = hpa
        .pointer("/status/currentCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        current = json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]);
    }
    json!({
        "metadata": hpa.get("metadata").cloned().unwrap_or(Value::Null),
        "spec": {
            "scaleTargetRef": hpa.pointer("/spec/scaleTargetRef").cloned().unwrap_or(Value::Null),
            "minReplicas": hpa.pointer("/spec/minReplicas").cloned().unwrap_or(Value::Null),
            "maxReplicas": hpa.pointer("/spec/maxReplicas").cloned().unwrap_or(Value::Null),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}],
        },
        "status": {"currentReplicas": hpa.pointer("/status/currentReplicas").cloned().unwrap_or(Value::Null), "currentMetrics": current},
    })
}

fn percent(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_i64).map(|p| format!("{p}%"))
}

/// One metric as `current/target` (upstream `formatHPAMetrics`).
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    let st = |source: &str| status.and_then(|s| s.get(source)).filter(|v| !v.is_null());
    match str_at(spec, "/type") {
        t @ ("External" | "Object") => {
            let source = if t == "External" {
                "external"
            } else {
                "object"
            };
            let target = spec
                .pointer(&format!("/{source}/target"))
                .unwrap_or(&Value::Null);
            if let Some(avg) = target.get("averageValue") {
                let current = st(source)
                    .and_then(|s| s.pointer("/current/averageValue"))
                    .map(|v| quantity(Some(v)))
                    .unwrap_or_else(unknown);
                format!("{current}/{} (avg)", quantity(Some(avg)))
            } else {
                let current = st(source)
                    .map(|s| quantity(s.pointer("/current/value")))
                    .unwrap_or_else(unknown);
                format!("{current}/{}", quantity(target.get("value")))
            }
        }
        "Pods" => {
            let current = st("pods")
                .map(|s| quantity(s.pointer("/current/averageValue")))
                .unwrap_or_else(unknown);
            format!(
                "{current}/{}",
                quantity(spec.pointer("/pods/target/averageValue"))
            )
        }
        t @ ("Resource" | "ContainerResource") => {
            let source = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let name = str_at(spec, &format!("/{source}/name"));
            let target = spec
                .pointer(&format!("/{source}/target"))
                .unwrap_or(&Value::Null);
            if let Some(avg) = target.get("averageValue") {
                let current = st(source)
                    .map(|s| quantity(s.pointer("/current/averageValue")))
                    .unwrap_or_else(unknown);
                format!("{name}: {current}/{}", quantity(Some(avg)))
            } else {
                let current = st(source)
                    .and_then(|s| percent(s.pointer("/current/averageUtilization")))
                    .unwrap_or_else(unknown);
                let target =
                    percent(target.get("averageUtilization")).unwrap_or_else(|| "<auto>".into());
                format!("{name}: {current}/{target}")
            }
        }
        _ => "<unknown type>".into(),
    }
}

/// The TARGETS cell: at most two metrics, then `+ N more...`.
pub fn format_metrics(hpa: &Value) -> String {
    let specs = arr_at(hpa, "/spec/metrics");
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = arr_at(hpa, "/status/currentMetrics");
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| format_metric(s, statuses.get(i)))
        .collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

fn hpa_row(hpa: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(hpa, "/spec/scaleTargetRef/kind"),
        str_at(hpa, "/spec/scaleTargetRef/name")
    );
    let min = hpa
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map(|m| m.to_string())
        .unwrap_or("<unset>".into());
    vec![
        name(hpa).into(),
        reference.into(),
        format_metrics(hpa).into(),
        min.into(),
        int_at(hpa, "/spec/maxReplicas").into(),
        int_at(hpa, "/status/currentReplicas").into(),
        age_cell(hpa, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_cells() {
        let hpa = json!({"spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}]},
            "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 10}}}]}});
        assert_eq!(
            format_metrics(&hpa),
            "cpu: 10%/50%, memory: <unknown>/100Mi + 1 more..."
        );
        let v1 = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
        let row = (HPA_V1.row)(&v1, chrono::Utc::now());
        assert_eq!(
            &row[1..6],
            &[
                json!("Deployment/web"),
                json!("cpu: <unknown>/80%"),
                json!("<unset>"),
                json!(5),
                json!(0)
            ]
        );
    }
}
