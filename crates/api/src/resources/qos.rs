//! Pod QoS class (upstream `qos.GetPodQOS`), set by the pod strategy on create.

use std::collections::BTreeMap;

use serde_json::Value;

/// A quantity in nano-units, exact for the values QoS compares (requests vs limits).
fn nano_units(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (mut pow10, pow2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse().ok()?, 0),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let mut mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    pow10 += 9 - frac_part.len() as i32;
    if pow10 >= 0 {
        mantissa = mantissa.checked_mul(10i128.checked_pow(pow10 as u32)?)?;
    } else {
        mantissa /= 10i128.checked_pow((-pow10) as u32)?;
    }
    mantissa = mantissa.checked_mul(1i128 << pow2)?;
    Some(if negative { -mantissa } else { mantissa })
}

/// Sum of positive cpu/memory quantities in `resources.<which>` over all containers.
fn add(sum: &mut BTreeMap<String, i128>, list: Option<&Value>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, q) in list.and_then(Value::as_object).into_iter().flatten() {
        if name != "cpu" && name != "memory" {
            continue;
        }
        let Some(v) = q
            .as_str()
            .and_then(nano_units)
            .or_else(|| q.as_i64().map(|n| n as i128 * 1_000_000_000))
        else {
            continue;
        };
        if v > 0 {
            *sum.entry(name.clone()).or_default() += v;
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
    fn quantities() {
        assert_eq!(nano_units("500m"), nano_units("0.5"));
        assert_eq!(nano_units("1Gi"), nano_units("1073741824"));
        assert_eq!(nano_units("1k"), nano_units("1e3"));
        assert_eq!(nano_units("bogus"), None);
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
