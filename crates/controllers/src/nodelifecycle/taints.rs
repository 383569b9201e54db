//! The taints the node lifecycle controller owns (upstream `nodeConditionToTaintKeyStatusMap`,
//! `doNoScheduleTaintingPass`, `markNodeForTainting`).

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// `node.kubernetes.io/not-ready`.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// `node.kubernetes.io/unreachable`.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `node.kubernetes.io/unschedulable`.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// `node.kubernetes.io/memory-pressure`.
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// `node.kubernetes.io/disk-pressure`.
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// `node.kubernetes.io/pid-pressure`.
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// `node.kubernetes.io/network-unavailable`.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Every NoSchedule taint key this controller manages.
const NO_SCHEDULE_KEYS: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

/// The status of a node condition (`None` if absent).
pub fn condition_status<'a>(node: &'a Node, kind: &str) -> Option<&'a str> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

fn taint(key: &str, effect: &str, added: Option<Time>) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        time_added: added,
        value: None,
    }
}

/// The NoSchedule taints the node's conditions and `spec.unschedulable` call for.
pub fn wanted_no_schedule(node: &Node) -> Vec<&'static str> {
    let mut keys = vec![];
    match condition_status(node, "Ready") {
        Some("False") => keys.push(NOT_READY),
        Some("Unknown") => keys.push(UNREACHABLE),
        _ => {}
    }
    for (kind, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, kind) == Some("True") {
            keys.push(key);
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        keys.push(UNSCHEDULABLE);
    }
    keys
}

/// The node's taints with the managed NoSchedule ones replaced by `wanted`; `None` if
/// nothing changes.
pub fn with_no_schedule(node: &Node, wanted: &[&str]) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let managed =
        |t: &Taint| t.effect == "NoSchedule" && NO_SCHEDULE_KEYS.contains(&t.key.as_str());
    let have: Vec<&str> = current
        .iter()
        .filter(|t| managed(t))
        .map(|t| t.key.as_str())
        .collect();
    if have.len() == wanted.len() && wanted.iter().all(|k| have.contains(k)) {
        return None;
    }
    let mut taints: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
    for key in wanted {
        taints.push(taint(key, "NoSchedule", None));
    }
    Some(taints)
}

/// The node's taints with the NoExecute not-ready/unreachable taint set to `wanted`
/// (or both removed for `None`); `None` if nothing changes.
pub fn with_no_execute(node: &Node, wanted: Option<&str>, now: Time) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let managed =
        |t: &Taint| t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE);
    let have: Vec<&Taint> = current.iter().filter(|t| managed(t)).collect();
    match wanted {
        Some(key) if have.len() == 1 && have[0].key == key => return None,
        None if have.is_empty() => return None,
        _ => {}
    }
    let mut taints: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
    if let Some(key) = wanted {
        taints.push(taint(key, "NoExecute", Some(now)));
    }
    Some(taints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn conditions_map_to_no_schedule_taints() {
        let n = node(serde_json::json!({"metadata": {"name": "n"},
            "spec": {"unschedulable": true, "taints": [{"key": "user", "effect": "NoSchedule"}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "MemoryPressure", "status": "True"},
                {"type": "DiskPressure", "status": "False"}]}}));
        let wanted = wanted_no_schedule(&n);
        assert_eq!(wanted, [UNREACHABLE, MEMORY_PRESSURE, UNSCHEDULABLE]);
        let taints = with_no_schedule(&n, &wanted).unwrap();
        let keys: Vec<_> = taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["user", UNREACHABLE, MEMORY_PRESSURE, UNSCHEDULABLE]);
        let mut tainted = n.clone();
        tainted.spec.as_mut().unwrap().taints = Some(taints);
        assert_eq!(with_no_schedule(&tainted, &wanted), None);
        // Uncordoned and healthy: only the user's taint stays.
        let taints = with_no_schedule(&tainted, &[]).unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "user");
    }

    #[test]
    fn no_execute_taints_swap() {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let n = node(serde_json::json!({"metadata": {"name": "n"}, "spec": {}}));
        let taints = with_no_execute(&n, Some(UNREACHABLE), now.clone()).unwrap();
        assert_eq!(
            (taints[0].key.as_str(), taints[0].effect.as_str()),
            (UNREACHABLE, "NoExecute")
        );
        assert!(taints[0].time_added.is_some());
        let mut tainted = n.clone();
        tainted.spec.as_mut().unwrap().taints = Some(taints);
        assert_eq!(
            with_no_execute(&tainted, Some(UNREACHABLE), now.clone()),
            None
        );
        let swapped = with_no_execute(&tainted, Some(NOT_READY), now.clone()).unwrap();
        assert_eq!(swapped.len(), 1);
        assert_eq!(swapped[0].key, NOT_READY);
        assert_eq!(with_no_execute(&tainted, None, now).unwrap().len(), 0);
    }
}
