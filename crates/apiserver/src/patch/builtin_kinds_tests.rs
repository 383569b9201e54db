//! The engines over the generated upstream schemas of built-in kinds.

use k8rs_api::schema::Schema;
use serde_json::{json, Value};

use super::{apply, patch, update_managed_fields, PatchType};

fn schema(group: &str, version: &str, kind: &str) -> Schema {
    Schema::for_kind(group, version, kind).expect("built-in kind")
}

fn smp(schema: Schema, original: &Value, body: Value) -> Value {
    patch(
        Some(schema),
        original,
        body.to_string().as_bytes(),
        PatchType::StrategicMerge,
    )
    .unwrap()
}

fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}],
                     "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                    {"name": "log", "image": "busybox"}
                ]}
            }
        }
    })
}

#[test]
fn deployment_containers_merge_by_name() {
    let deployment = schema("apps", "v1", "Deployment");
    // `kubectl set image deployment/web web=nginx:2` and an env change.
    let patched = smp(
        deployment,
        &live_deployment(),
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}
        ]}}}}),
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"],
        json!([
            {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "log", "image": "busybox"}
        ])
    );
}

#[test]
fn deployment_strategy_retains_keys() {
    let deployment = schema("apps", "v1", "Deployment");
    // What `kubectl apply` sends when switching to Recreate.
    let patched = smp(
        deployment,
        &live_deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    );
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn service_ports_merge_by_port() {
    let service = schema("", "v1", "Service");
    let live = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ]}
    });
    let patched = smp(
        service,
        &live,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
    );
    assert_eq!(
        patched["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ])
    );
}

#[test]
fn pod_tolerations_are_replaced_and_finalizers_merged() {
    let pod = schema("", "v1", "Pod");
    let live = json!({
        "metadata": {"name": "p", "finalizers": ["a"]},
        "spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}
    });
    let patched = smp(
        pod,
        &live,
        json!({"metadata": {"finalizers": ["b"]}, "spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}),
    );
    assert_eq!(
        patched["spec"]["tolerations"],
        json!([{"key": "y", "operator": "Exists"}])
    );
    assert_eq!(patched["metadata"]["finalizers"], json!(["b", "a"]));
}

#[test]
fn server_side_apply_of_a_deployment_records_upstream_field_sets() {
    let deployment = schema("apps", "v1", "Deployment");
    let config = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    let created = apply(
        Some(deployment),
        None,
        &config,
        "kubectl",
        false,
        "2025-01-01T00:00:00Z",
    )
    .unwrap();
    let expected = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {},
                        "f:containerPort": {}
                    }}
                }}}
            }
        }
    });
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"].to_string(),
        expected.to_string()
    );

    // `kubectl scale` then a plain re-apply conflicts on replicas.
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    update_managed_fields(
        Some(deployment),
        Some(&created),
        &mut scaled,
        "kubectl",
        "",
        "2025-01-01T00:01:00Z",
    );
    let err = apply(
        Some(deployment),
        Some(&scaled),
        &config,
        "kubectl",
        false,
        "2025-01-01T00:02:00Z",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn server_side_apply_keys_service_ports_by_port_and_protocol() {
    let service = schema("", "v1", "Service");
    let config = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}
    });
    let created = apply(
        Some(service),
        None,
        &config,
        "kubectl",
        false,
        "2025-01-01T00:00:00Z",
    )
    .unwrap();
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
            ".": {}, "f:port": {}, "f:targetPort": {}
        }}}})
    );
}
