use super::*;
use crate::patch::test_schemas::deployment;
use crate::patch::OpenApiMeta;
use serde_json::json;

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-01T00:01:00Z";
const T3: &str = "2025-01-01T00:02:00Z";

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("test YAML")
}

fn applied_config(replicas: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}
            }
        }
    })
}

fn with_schema<T>(f: impl FnOnce(&OpenApiMeta) -> T) -> T {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    f(&meta)
}

fn ssa(
    meta: &OpenApiMeta,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_with_meta(Some(meta), live, config, manager, "", force, now)
}

fn entries(object: &Value) -> Vec<Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn apply_creates_with_an_apply_entry() {
    with_schema(|meta| {
        let config = applied_config(2, json!({"app": "web"}));
        let created = ssa(meta, None, &config, "kubectl", false, T1).unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        let expected = json!([{
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {}
                        }}}
                    }
                }
            }
        }]);
        assert_eq!(
            created["metadata"]["managedFields"].to_string(),
            expected.to_string()
        );
    });
}

#[test]
fn reapplying_without_a_field_removes_it() {
    with_schema(|meta| {
        let first = applied_config(2, json!({"app": "web", "tier": "fe"}));
        let live = ssa(meta, None, &first, "kubectl", false, T1).unwrap();
        let second = applied_config(2, json!({"app": "web"}));
        let updated = ssa(meta, Some(&live), &second, "kubectl", false, T2).unwrap();
        assert_eq!(updated["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(entries(&updated).len(), 1);
        assert_eq!(entries(&updated)[0]["time"], T2);
    });
}

#[test]
fn fields_owned_by_someone_else_survive_the_applier_dropping_them() {
    with_schema(|meta| {
        let first = applied_config(2, json!({"app": "web", "tier": "fe"}));
        let live = ssa(meta, None, &first, "kubectl", false, T1).unwrap();
        // Another applier also sets tier to the same value: shared ownership, no conflict.
        let other = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": "fe"}}
        });
        let live = ssa(meta, Some(&live), &other, "other", false, T2).unwrap();
        let second = applied_config(2, json!({"app": "web"}));
        let updated = ssa(meta, Some(&live), &second, "kubectl", false, T3).unwrap();
        assert_eq!(
            updated["metadata"]["labels"],
            json!({"app": "web", "tier": "fe"})
        );
    });
}

#[test]
fn conflicting_update_owner_gives_upstream_409() {
    with_schema(|meta| {
        let config = applied_config(2, json!({"app": "web"}));
        let live = ssa(meta, None, &config, "kubectl", false, T1).unwrap();
        // kubectl scale (an Update by "kubectl-scale") changes replicas.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(5);
        update_managed_fields_with_meta(
            Some(meta),
            Some(&live),
            &mut scaled,
            "kubectl-scale",
            "",
            T2,
        );
        let owners: Vec<&str> = entries(&scaled)
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .map(|m| {
                if m == "kubectl" {
                    "kubectl"
                } else {
                    "kubectl-scale"
                }
            })
            .collect();
        assert_eq!(owners, vec!["kubectl", "kubectl-scale"]);
        assert_eq!(
            entries(&scaled)[1]["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(
            entries(&scaled)[0]["fieldsV1"]["f:spec"].get("f:replicas"),
            None,
            "the applier lost replicas"
        );

        let err = ssa(meta, Some(&scaled), &config, "kubectl", false, T3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
        );
        let status = PatchError::from(err).to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["reason"], "Conflict");
        assert_eq!(
            status["details"]["causes"],
            json!([{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-scale\" using apps/v1",
                "field": ".spec.replicas"
            }])
        );

        // Forcing takes the field over; the other manager's entry disappears once empty.
        let forced = ssa(meta, Some(&scaled), &config, "kubectl", true, T3).unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        let managers: Vec<String> = entries(&forced)
            .iter()
            .map(|e| e["manager"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(managers, vec!["kubectl"]);
        assert!(entries(&forced)[0]["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some());
    });
}

#[test]
fn many_conflicts_are_grouped_by_manager() {
    let conflicts = vec![
        Conflict {
            manager: "b".into(),
            operation: "Apply".into(),
            api_version: "v1".into(),
            subresource: String::new(),
            field: ".spec.replicas".into(),
        },
        Conflict {
            manager: "a".into(),
            operation: "Update".into(),
            api_version: "apps/v1".into(),
            subresource: "status".into(),
            field: ".status.replicas".into(),
        },
        Conflict {
            manager: "b".into(),
            operation: "Apply".into(),
            api_version: "v1".into(),
            subresource: String::new(),
            field: ".spec.paused".into(),
        },
    ];
    assert_eq!(
        ApplyError::Conflicts(conflicts).to_string(),
        "Apply failed with 3 conflicts: conflicts with \"a\" with subresource \"status\" using apps/v1:\n\
         - .status.replicas\n\
         conflicts with \"b\":\n\
         - .spec.replicas\n\
         - .spec.paused"
    );
}

#[test]
fn update_on_create_owns_everything_set() {
    with_schema(|meta| {
        let mut created = yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, resourceVersion: "1", labels: {app: web}}
spec: {replicas: 1}
"#,
        );
        update_managed_fields_with_meta(Some(meta), None, &mut created, "kubectl-create", "", T1);
        assert_eq!(
            created["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": T1,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {".": {}, "f:replicas": {}}
                }
            }])
        );
        // An update that changes nothing keeps the entry and its time.
        let mut same = created.clone();
        update_managed_fields_with_meta(Some(meta), Some(&created), &mut same, "other", "", T2);
        assert_eq!(
            same["metadata"]["managedFields"],
            created["metadata"]["managedFields"]
        );
    });
}

#[test]
fn status_writes_record_the_subresource() {
    with_schema(|meta| {
        let live =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        let mut updated = live.clone();
        updated["status"] = json!({"replicas": 1});
        update_managed_fields_with_meta(
            Some(meta),
            Some(&live),
            &mut updated,
            "kube-controller-manager",
            "status",
            T1,
        );
        let entry = &entries(&updated)[0];
        assert_eq!(entry["subresource"], "status");
        assert_eq!(entry["operation"], "Update");
        assert_eq!(
            entry["fieldsV1"],
            json!({"f:status": {".": {}, "f:replicas": {}}})
        );
    });
}

#[test]
fn client_can_reset_managed_fields() {
    with_schema(|meta| {
        let config = applied_config(2, json!({"app": "web"}));
        let live = ssa(meta, None, &config, "kubectl", false, T1).unwrap();
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([]);
        update_managed_fields_with_meta(Some(meta), Some(&live), &mut reset, "edit", "", T2);
        assert!(reset["metadata"].get("managedFields").is_none());
    });
}

#[test]
fn apply_rejects_managed_fields_in_the_config() {
    with_schema(|meta| {
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "web", "managedFields": []}});
        let err = ssa(meta, None, &config, "kubectl", false, T1).unwrap_err();
        assert_eq!(
            err,
            ApplyError::BadRequest("metadata.managedFields must be nil".into())
        );
    });
}

#[test]
fn update_managers_are_capped_at_ten() {
    with_schema(|meta| {
        let mut live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": {}}});
        for index in 0..12 {
            let mut next = live.clone();
            next["metadata"]["annotations"][format!("a{index}")] = json!("x");
            let time = format!("2025-01-01T00:00:{index:02}Z");
            update_managed_fields_with_meta(
                Some(meta),
                Some(&live),
                &mut next,
                &format!("m{index:02}"),
                "",
                &time,
            );
            live = next;
        }
        let managers: Vec<String> = entries(&live)
            .iter()
            .map(|e| e["manager"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(managers.len(), 10, "{managers:?}");
        assert!(
            managers.contains(&"ancient-changes".to_string()),
            "{managers:?}"
        );
    });
}

#[test]
fn default_manager_is_the_user_agent_prefix() {
    assert_eq!(
        default_manager("kubectl/v1.33.1 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(
        default_manager("kube-controller-manager/v1.33"),
        "kube-controller-manager"
    );
    assert_eq!(default_manager(&"x".repeat(200)).len(), 128);
}

#[test]
fn apply_body_accepts_yaml_and_json() {
    assert_eq!(
        parse_apply_body(b"apiVersion: v1\nkind: ConfigMap\n").unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        parse_apply_body(br#"{"kind":"ConfigMap"}"#).unwrap(),
        json!({"kind": "ConfigMap"})
    );
    assert_eq!(parse_apply_body(b"- a\n").unwrap_err().code, 400);
}
