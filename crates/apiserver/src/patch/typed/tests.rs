use super::*;
use crate::patch::test_schemas::deployment;
use crate::patch::OpenApiMeta;
use serde_json::json;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("test YAML")
}

const APPLIED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
"#;

#[test]
fn field_set_of_an_applied_deployment_matches_upstream() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let set = to_field_set(&yaml(APPLIED), Some(&meta)).unwrap();
    let expected = json!({
        "f:apiVersion": {},
        "f:kind": {},
        "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
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
    assert_eq!(set.to_fields_v1().to_string(), expected.to_string());
}

#[test]
fn deduced_objects_own_every_member() {
    let set = to_field_set::<OpenApiMeta>(&json!({"a": {"b": 1}, "c": [1, 2]}), None).unwrap();
    assert_eq!(
        set.to_fields_v1(),
        json!({"f:a": {".": {}, "f:b": {}}, "f:c": {}})
    );
}

#[test]
fn comparison_reports_new_maps_with_themselves() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "paused": true}});
    let new =
        json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 2}});
    let comparison = compare(&old, &new, Some(&meta)).unwrap();
    assert_eq!(
        comparison.added.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
    );
    assert_eq!(
        comparison.modified.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(
        comparison.removed.to_fields_v1(),
        json!({"f:spec": {"f:paused": {}}})
    );
}

#[test]
fn merge_keeps_live_only_items_in_place_and_follows_applied_order() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let live = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "1"}, {"name": "live-only"}, {"name": "b", "image": "2"}
    ]}}}});
    let applied = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "b", "image": "3"}, {"name": "a"}, {"name": "new"}
    ]}}}});
    let merged = merge(&live, &applied, Some(&meta)).unwrap();
    assert_eq!(
        merged["spec"]["template"]["spec"]["containers"],
        json!([{"name": "live-only"}, {"name": "b", "image": "3"}, {"name": "a", "image": "1"}, {"name": "new"}])
    );
}

#[test]
fn atomic_fields_are_replaced_and_sets_unioned() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let live = json!({
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"selector": {"matchLabels": {"app": "x", "tier": "y"}}}
    });
    let applied = json!({
        "metadata": {"finalizers": ["c"]},
        "spec": {"selector": {"matchLabels": {"app": "z"}}}
    });
    let merged = merge(&live, &applied, Some(&meta)).unwrap();
    assert_eq!(merged["metadata"]["finalizers"], json!(["a", "b", "c"]));
    assert_eq!(
        merged["spec"]["selector"],
        json!({"matchLabels": {"app": "z"}})
    );
}

#[test]
fn duplicate_keys_in_applied_lists_are_errors() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let applied =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
    let err = merge(&json!({}), &applied, Some(&meta)).unwrap_err();
    assert_eq!(
        err,
        ".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"
    );
}

#[test]
fn remove_items_and_named_fields() {
    let schema = deployment();
    let meta = OpenApiMeta::new(&schema);
    let object = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
    let mut set = FieldSet::new();
    set.insert(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into()),
        PathElement::Field("a".into()),
    ]);
    set.insert(&[
        PathElement::Field("spec".into()),
        PathElement::Field("replicas".into()),
    ]);
    let ensured = ensure_named_fields_are_members(&set, Some(&meta));
    assert!(ensured.has(&[PathElement::Field("spec".into())]));
    assert!(ensured.has(&[
        PathElement::Field("metadata".into()),
        PathElement::Field("labels".into())
    ]));
    let removed = remove_items(&object, &set, Some(&meta)).unwrap().unwrap();
    assert_eq!(removed, json!({"metadata": {"labels": {"b": "2"}}}));
}
