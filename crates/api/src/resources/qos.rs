//! Pod QoS class (upstream `qos.GetPodQOS`), set by the pod strategy on create.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::Quantity;

/// Sum of positive cpu/memory quantities in `resources.<which>` over all containers.
fn add(sum: &mut BTreeMap<String, Quantity>, list: Option<&Value>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, q) in list.and_then(Value::as_object).into_iter().flatten() {
        if name != "cpu" && name != "memory" {
            continue;
        }
        let text = match q {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        let Ok(v) = Quantity::parse(&text) else {
            continue;
        };
        if !v.is_zero() && !v.is_negative() {
            let total = match sum.get(name) {
                Some(s) => s.add(&v),
                None => v,
            };
            sum.insert(name.clone(), total);
            found.push(name.clone());
        }
    }
    found
}

/// `Guaranteed`, `Burstable` or `BestEffort` for a pod, as upstream computes it.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["/spec/containers", "/spec/initContainers"]
        .into_iter()
        .flat_map(|p| {
            pod.pointer(p)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        });
    for c in containers {
        add(&mut requests, c.pointer("/resources/requests"));
        let found = add(&mut limits, c.pointer("/resources/limits"));
        if !(found.iter().any(|n| n == "cpu") && found.iter().any(|n| n == "memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests
            .iter()
            .any(|(name, req)| limits.get(name) != Some(req))
    {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_amounts_in_other_units_are_guaranteed() {
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "0.5", "memory": "1Gi"},
            "limits": {"cpu": "500m", "memory": "1073741824"}}}]}});
        assert_eq!(pod_qos_class(&pod), "Guaranteed");
    }

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(pod_qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            pod_qos_class(&pod(
                json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            pod_qos_class(&pod(
                json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
            )),
            "Burstable"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"limits": {"cpu": "1"}}))),
            "Burstable"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"ephemeral-storage": "1Gi"}}))),
            "BestEffort"
        );
    }
}
