//! OpenAPI schemas shaped like upstream's, for unit tests that must not depend on the
//! generated schema data.

use serde_json::{json, Value};

/// An `apps/v1` Deployment schema with upstream's list and map metadata on the fields the
/// tests touch.
pub(crate) fn deployment() -> Value {
    let labels = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let container = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "image": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "containerPort",
                "items": {"type": "object", "properties": {
                    "containerPort": {"type": "integer"},
                    "protocol": {"type": "string", "default": "TCP"},
                    "name": {"type": "string"}
                }}
            },
            "env": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "value": {"type": "string"}
                }}
            }
        }
    });
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "labels": labels,
                    "annotations": labels,
                    "resourceVersion": {"type": "string"},
                    "finalizers": {
                        "type": "array",
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "managedFields": {"type": "array", "items": {"type": "object"}}
                }
            },
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "paused": {"type": "boolean"},
                    "selector": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "properties": {"matchLabels": labels}
                    },
                    "template": {
                        "type": "object",
                        "properties": {
                            "metadata": {"type": "object", "properties": {"labels": labels}},
                            "spec": {"type": "object", "properties": {
                                "containers": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["name"],
                                    "x-kubernetes-patch-strategy": "merge",
                                    "x-kubernetes-patch-merge-key": "name",
                                    "items": container
                                }
                            }}
                        }
                    }
                }
            },
            "status": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "readyReplicas": {"type": "integer"}
            }}
        }
    })
}
