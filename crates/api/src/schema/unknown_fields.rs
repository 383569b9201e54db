//! Unknown-field detection, as upstream's strict decoding (`sigs.k8s.io/json` `UnmarshalStrict`)
//! reports it: one path per field the kind's schema does not declare, fields joined with `.`,
//! list items as `[i]`, map keys as `.key`; `unknown field "spec.containers[0].foo"`.

use serde_json::Value;

use super::Schema;

/// Upstream stops collecting strict errors after this many.
const MAX_ERRORS: usize = 100;

/// The paths of every field in `obj` that the schema of `group/version, Kind=kind` does not
/// declare, in document order, e.g. `["spec.foo", "spec.template.spec.containers[0].imagee"]`.
/// Free-form nodes (RawExtension, `x-kubernetes-preserve-unknown-fields`, JSON values) are not
/// looked into. An unknown kind yields no paths.
pub fn unknown_fields(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(schema) = Schema::for_kind(group, version, kind) {
        let mut path = String::new();
        walk(schema, obj, &mut path, &mut found);
    }
    found
}

fn walk(schema: Schema, value: &Value, path: &mut String, found: &mut Vec<String>) {
    if found.len() >= MAX_ERRORS || schema.preserves_unknown_fields() {
        return;
    }
    match value {
        Value::Object(map) => {
            let declares_fields = !schema.inner.properties.is_empty();
            let values = schema.additional_properties();
            for (key, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if declares_fields {
                    match schema.property(key) {
                        Some(field) => walk(field, child, path, found),
                        None if found.len() < MAX_ERRORS => found.push(path.clone()),
                        None => {}
                    }
                } else if let Some(values) = values {
                    walk(values, child, path, found);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.items() {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    walk(item, child, path, found);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_fields_pass() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"},
                         "annotations": {"a": "b"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx",
                                      "ports": [{"containerPort": 80}],
                                      "resources": {"limits": {"cpu": "1"}}}]}}},
            "status": {"replicas": 2}
        });
        assert!(unknown_fields("apps", "v1", "Deployment", &deployment).is_empty());
    }

    #[test]
    fn nested_and_list_paths() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "nmae": "x"},
            "foo": 1,
            "spec": {"bar": {"deep": true},
                     "template": {"spec": {"containers": [
                         {"name": "a", "image": "x"},
                         {"name": "b", "imagee": "x", "ports": [{"containerPort": 1, "x": 2}]}
                     ]}}}
        });
        assert_eq!(
            unknown_fields("apps", "v1", "Deployment", &deployment),
            [
                "metadata.nmae",
                "foo",
                "spec.bar",
                "spec.template.spec.containers[1].imagee",
                "spec.template.spec.containers[1].ports[0].x",
            ]
        );
    }

    #[test]
    fn field_names_are_case_sensitive() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "Spec": {}});
        assert_eq!(unknown_fields("", "v1", "Pod", &pod), ["Spec"]);
    }

    #[test]
    fn map_values_and_nested_lists_are_checked() {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
                                "data": {"k": "v"}, "binaryData": {"b": "AA=="}});
        assert!(unknown_fields("", "v1", "ConfigMap", &config_map).is_empty());
        let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota",
                           "spec": {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                               {"scopeName": "x", "operator": "In", "valuez": []}]}}});
        assert_eq!(
            unknown_fields("", "v1", "ResourceQuota", &quota),
            ["spec.scopeSelector.matchExpressions[0].valuez"]
        );
    }

    #[test]
    fn free_form_nodes_are_skipped() {
        // managedFields[].fieldsV1 is free-form JSON; so are CRD default values.
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "managedFields": [
                {"manager": "m", "fieldsV1": {"f:spec": {"f:anything": {}}}}]}});
        assert!(unknown_fields("", "v1", "Pod", &pod).is_empty());
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "x.io", "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "default": {"any": {"thing": 1}},
                                        "x-kubernetes-preserve-unknown-fields": true,
                                        "typo": 2}},
                "bogus": 1}}}]}});
        // `properties` is a map of schemas: its keys join the path with a dot.
        assert_eq!(
            unknown_fields(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                &crd
            ),
            [
                "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo",
                "spec.versions[0].schema.openAPIV3Schema.bogus"
            ]
        );
    }

    #[test]
    fn unknown_kind_reports_nothing() {
        assert!(unknown_fields("nope.io", "v1", "Thing", &json!({"x": 1})).is_empty());
    }
}
