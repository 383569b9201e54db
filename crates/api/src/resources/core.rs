//! Core group (`v1`) resources (upstream `pkg/registry/core/*`).

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::qos::pod_qos_class;
use super::{CreateStatus, ResourceStrategy};
use crate::printers::{core as p, events, pod, DEFAULT};
use crate::selectors::fields::{common_field, name_field, str_at};

const V1: (&str, &str) = ("", "v1");
const NAMESPACED: bool = true;
const CLUSTER: bool = false;

/// The core resources, alphabetical as upstream's `/api/v1` lists them.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(V1, "Binding", "bindings", NAMESPACED, &DEFAULT).verbs(&["create"]),
        ResourceStrategy::new(V1, "ConfigMap", "configmaps", NAMESPACED, &p::CONFIG_MAP).short(&["cm"]),
        ResourceStrategy::new(V1, "Endpoints", "endpoints", NAMESPACED, &p::ENDPOINTS)
            .short(&["ep"])
            .deprecated("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
        ResourceStrategy::new(V1, "Event", "events", NAMESPACED, &events::EVENT).short(&["ev"]).fields(event_field),
        ResourceStrategy::new(V1, "LimitRange", "limitranges", NAMESPACED, &DEFAULT).short(&["limits"]),
        ResourceStrategy::new(V1, "Namespace", "namespaces", CLUSTER, &p::NAMESPACE)
            .short(&["ns"])
            .verbs(&["create", "delete", "get", "list", "patch", "update", "watch"])
            .status(CreateStatus::Reset(|_| json!({"phase": "Active"})))
            .extra(&["finalize"])
            .fields(namespace_field)
            .on_create(require_kubernetes_finalizer)
            .on_update(|obj, old| {
                // Finalizers change only through namespaces/finalize.
                let finalizers = old.pointer("/spec/finalizers").cloned();
                if let Some(spec) = obj.as_object_mut().map(|m| m.entry("spec").or_insert_with(|| json!({}))) {
                    match (spec.as_object_mut(), finalizers) {
                        (Some(s), Some(f)) => {
                            s.insert("finalizers".into(), f);
                        }
                        (Some(s), None) => {
                            s.remove("finalizers");
                        }
                        _ => {}
                    }
                }
            }),
        ResourceStrategy::new(V1, "Node", "nodes", CLUSTER, &p::NODE)
            .short(&["no"])
            .status(CreateStatus::Keep)
            .extra(&["proxy"])
            .fields(node_field),
        ResourceStrategy::new(V1, "PersistentVolumeClaim", "persistentvolumeclaims", NAMESPACED, &p::PERSISTENT_VOLUME_CLAIM)
            .short(&["pvc"])
            .status(CreateStatus::Reset(|_| json!({"phase": "Pending"}))),
        ResourceStrategy::new(V1, "PersistentVolume", "persistentvolumes", CLUSTER, &p::PERSISTENT_VOLUME)
            .short(&["pv"])
            .status(CreateStatus::Reset(|_| {
                json!({"phase": "Pending", "lastPhaseTransitionTime": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)})
            })),
        ResourceStrategy::new(V1, "Pod", "pods", NAMESPACED, &pod::POD)
            .short(&["po"])
            .in_all()
            .status(CreateStatus::Reset(initial_pod_status))
            .extra(&["attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy", "resize"])
            .fields(pod_field)
            .generation(),
        ResourceStrategy::new(V1, "PodTemplate", "podtemplates", NAMESPACED, &p::POD_TEMPLATE).generation(),
        ResourceStrategy::new(V1, "ReplicationController", "replicationcontrollers", NAMESPACED, &p::REPLICATION_CONTROLLER)
            .short(&["rc"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({"replicas": 0})))
            .scale()
            .fields(|obj, path| match path {
                "status.replicas" => Some(obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0).to_string()),
                _ => common_field(obj, path),
            })
            .generation(),
        ResourceStrategy::new(V1, "ResourceQuota", "resourcequotas", NAMESPACED, &p::RESOURCE_QUOTA)
            .short(&["quota"])
            .status(CreateStatus::Reset(|_| json!({}))),
        ResourceStrategy::new(V1, "Secret", "secrets", NAMESPACED, &p::SECRET).fields(|obj, path| match path {
            "type" => Some(str_at(obj, "/type")),
            _ => common_field(obj, path),
        }),
        ResourceStrategy::new(V1, "ServiceAccount", "serviceaccounts", NAMESPACED, &p::SERVICE_ACCOUNT)
            .short(&["sa"])
            .extra(&["token"]),
        ResourceStrategy::new(V1, "Service", "services", NAMESPACED, &p::SERVICE)
            .short(&["svc"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({"loadBalancer": {}})))
            .extra(&["proxy"])
            .fields(|obj, path| match path {
                "spec.clusterIP" => Some(str_at(obj, "/spec/clusterIP")),
                "spec.type" => Some(str_at(obj, "/spec/type")),
                _ => common_field(obj, path),
            }),
    ]
}

/// Upstream pod `PrepareForCreate`: `{phase: Pending, qosClass}`, plus the `PodScheduled=False`
/// `SchedulingGated` condition when the pod has scheduling gates.
fn initial_pod_status(pod: &Value) -> Value {
    let mut status = Map::new();
    status.insert("phase".into(), "Pending".into());
    let gated = pod
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    if gated {
        status.insert(
            "conditions".into(),
            json!([{
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": null,
                "lastTransitionTime": null,
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
            }]),
        );
    }
    status.insert("qosClass".into(), pod_qos_class(pod).into());
    Value::Object(status)
}

/// Namespaces are created with the `kubernetes` finalizer (upstream namespace strategy).
fn require_kubernetes_finalizer(ns: &mut Value) {
    let Some(obj) = ns.as_object_mut() else {
        return;
    };
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let finalizers = spec.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(list) = finalizers.as_array_mut() {
        if !list.iter().any(|f| f == "kubernetes") {
            list.push("kubernetes".into());
        }
    }
}

/// Pod field selectors (upstream `pod.ToSelectableFields` and the v1 conversion).
pub fn pod_field(pod: &Value, path: &str) -> Option<String> {
    Some(match path {
        "spec.nodeName" | "spec.host" => str_at(pod, "/spec/nodeName"),
        "spec.restartPolicy" => str_at(pod, "/spec/restartPolicy"),
        "spec.schedulerName" => str_at(pod, "/spec/schedulerName"),
        "spec.serviceAccountName" => str_at(pod, "/spec/serviceAccountName"),
        "spec.hostNetwork" => pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "status.phase" => str_at(pod, "/status/phase"),
        "status.podIP" => pod
            .pointer("/status/podIPs/0/ip")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        "status.nominatedNodeName" => str_at(pod, "/status/nominatedNodeName"),
        // Accepted by the conversion but absent from the field set: always "".
        "status.podIPs" => String::new(),
        _ => return common_field(pod, path),
    })
}

/// `v1` Event field selectors (upstream `event.ToSelectableFields`).
pub fn event_field(ev: &Value, path: &str) -> Option<String> {
    Some(match path {
        "involvedObject.kind" => str_at(ev, "/involvedObject/kind"),
        "involvedObject.namespace" => str_at(ev, "/involvedObject/namespace"),
        "involvedObject.name" => str_at(ev, "/involvedObject/name"),
        "involvedObject.uid" => str_at(ev, "/involvedObject/uid"),
        "involvedObject.apiVersion" => str_at(ev, "/involvedObject/apiVersion"),
        "involvedObject.resourceVersion" => str_at(ev, "/involvedObject/resourceVersion"),
        "involvedObject.fieldPath" => str_at(ev, "/involvedObject/fieldPath"),
        "reason" => str_at(ev, "/reason"),
        "reportingComponent" => str_at(ev, "/reportingComponent"),
        "source" => {
            let component = str_at(ev, "/source/component");
            if component.is_empty() {
                str_at(ev, "/reportingComponent")
            } else {
                component
            }
        }
        "type" => str_at(ev, "/type"),
        _ => return common_field(ev, path),
    })
}

fn namespace_field(ns: &Value, path: &str) -> Option<String> {
    match path {
        "status.phase" => Some(str_at(ns, "/status/phase")),
        _ => name_field(ns, path),
    }
}

fn node_field(node: &Value, path: &str) -> Option<String> {
    match path {
        "spec.unschedulable" => Some(
            node.pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
        ),
        _ => name_field(node, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    fn strategy(plural: &str) -> ResourceStrategy {
        resources()
            .into_iter()
            .find(|r| r.info().plural == plural)
            .unwrap()
    }

    #[test]
    fn pod_create_sets_pending_status_and_qos() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}], "schedulingGates": [{"name": "g"}]},
            "status": {"phase": "Running"}});
        strategy("pods").prepare_for_create(&mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(pod["status"]["conditions"][0]["reason"], "SchedulingGated");
        assert!(strategy("pods").tracks_generation());
    }

    #[test]
    fn namespace_create_and_update() {
        let ns = strategy("namespaces");
        let mut obj = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["x"]}});
        ns.prepare_for_create(&mut obj);
        assert_eq!(obj["spec"]["finalizers"], json!(["x", "kubernetes"]));
        assert_eq!(obj["status"], json!({"phase": "Active"}));
        let mut new = json!({"metadata": {"name": "n"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}});
        ns.prepare_for_update(&mut new, &obj);
        assert_eq!(new["spec"]["finalizers"], json!(["x", "kubernetes"]));
        assert_eq!(new["status"]["phase"], "Active");
    }

    #[test]
    fn field_selectors() {
        let pods = strategy("pods");
        let pod = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}});
        assert_eq!(pods.field(&pod, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(pods.field(&pod, "spec.host").as_deref(), Some("n1"));
        assert_eq!(
            pods.field(&pod, "spec.hostNetwork").as_deref(),
            Some("false")
        );
        assert_eq!(
            pods.field(&pod, "status.podIP").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(pods.field(&pod, "metadata.namespace").as_deref(), Some("d"));
        assert_eq!(pods.field(&pod, "spec.containers"), None);
        let nodes = strategy("nodes");
        assert_eq!(
            nodes.field(&json!({}), "spec.unschedulable").as_deref(),
            Some("false")
        );
        assert_eq!(nodes.field(&json!({}), "metadata.namespace"), None);
        let events = strategy("events");
        let ev = json!({"involvedObject": {"kind": "Pod"}, "reportingComponent": "kubelet"});
        assert_eq!(
            events.field(&ev, "involvedObject.kind").as_deref(),
            Some("Pod")
        );
        assert_eq!(events.field(&ev, "source").as_deref(), Some("kubelet"));
        assert_eq!(
            strategy("secrets")
                .field(&json!({"type": "Opaque"}), "type")
                .as_deref(),
            Some("Opaque")
        );
        assert_eq!(strategy("configmaps").field(&json!({}), "data"), None);
    }
}
