//! Cases ported from upstream's `strategicpatch/patch_test.go` (the `MergeItem` schema), plus
//! kubectl-shaped patches.

use super::*;
use crate::patch::OpenApiMeta;
use serde_json::json;

/// Upstream's `MergeItem` test type as an OpenAPI schema, nested `depth` levels.
fn merge_item_schema(depth: usize) -> Value {
    let nested = if depth == 0 {
        json!({"type": "object"})
    } else {
        merge_item_schema(depth - 1)
    };
    let merge_list = |strategy: &str| {
        json!({
            "type": "array",
            "items": nested,
            "x-kubernetes-patch-strategy": strategy,
            "x-kubernetes-patch-merge-key": "name"
        })
    };
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "mergingList": merge_list("merge"),
            "nonMergingList": {"type": "array", "items": nested},
            "mergingIntList": {
                "type": "array",
                "items": {"type": "integer"},
                "x-kubernetes-patch-strategy": "merge"
            },
            "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
            "mergeItemPtr": merge_list("merge"),
            "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
            "replacingItem": {"x-kubernetes-patch-strategy": "replace"},
            "retainKeysMap": {
                "type": "object",
                "x-kubernetes-patch-strategy": "retainKeys",
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "other": {"type": "string"},
                    "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                    "mergingIntList": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "mergingList": merge_list("merge"),
                    "nonMergingList": {"type": "array", "items": nested}
                }
            },
            "retainKeysMergingList": merge_list("merge,retainKeys")
        }
    })
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("test YAML")
}

/// Applies `patch` to `original` with the `MergeItem` schema and compares with `expected`
/// (order included: upstream's ordering rules are part of the behaviour).
fn check(description: &str, original: &str, patch: &str, expected: &str) {
    let schema = merge_item_schema(3);
    let meta = OpenApiMeta::new(&schema);
    let result = strategic_merge(&yaml(original), &yaml(patch), Some(&meta))
        .unwrap_or_else(|err| panic!("{description}: {err:?}"));
    assert_eq!(result, yaml(expected), "{description}");
}

fn check_error(original: &str, patch: &str) -> PatchError {
    let schema = merge_item_schema(3);
    let meta = OpenApiMeta::new(&schema);
    strategic_merge(&yaml(original), &yaml(patch), Some(&meta)).unwrap_err()
}

#[test]
fn unique_scalars_when_merging_lists() {
    check(
        "unique scalars",
        "mergingIntList: [1, 2]",
        "mergingIntList: [2, 3]",
        "mergingIntList: [1, 2, 3]",
    );
}

#[test]
fn delete_map_from_nested_map() {
    check(
        "delete map",
        "simpleMap: {key1: '1', key2: '1'}",
        "simpleMap: {$patch: delete}",
        "simpleMap: {}",
    );
}

#[test]
fn delete_all_items_from_merging_list() {
    check(
        "replace list",
        "mergingList: [{name: 1}, {name: 2}]",
        "mergingList: [{$patch: replace}]",
        "mergingList: []",
    );
    check(
        "empty lists",
        "mergingList: []",
        "mergingList: []",
        "mergingList: []",
    );
}

#[test]
fn replace_directive_on_maps() {
    check(
        "delete all keys",
        "{name: 1, value: 1}",
        "$patch: replace",
        "{}",
    );
    check(
        "add key and delete all keys",
        "{name: 1, value: 1}",
        "{other: a, $patch: replace}",
        "other: a",
    );
}

#[test]
fn delete_directive_removes_every_duplicate() {
    check(
        "de-duplicate",
        "mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]",
        "mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]",
        "mergingList: [{name: 2, value: a}]",
    );
}

#[test]
fn retain_keys_without_directive_merges() {
    check(
        "add",
        "retainKeysMap: {name: foo}",
        "retainKeysMap: {value: bar}",
        "retainKeysMap: {name: foo, value: bar}",
    );
    check(
        "delete",
        "retainKeysMap: {name: foo, value: a}",
        "retainKeysMap: {value: null}",
        "retainKeysMap: {name: foo}",
    );
    check(
        "list change",
        "retainKeysMergingList: [{name: bar}, {name: foo, value: a}]",
        "retainKeysMergingList: [{name: foo, value: b}]",
        "retainKeysMergingList: [{name: bar}, {name: foo, value: b}]",
    );
}

#[test]
fn retain_keys_directive_clears_unlisted_fields() {
    check(
        "retainKeys",
        "retainKeysMap: {name: foo, value: a, other: b}",
        "retainKeysMap: {$retainKeys: [name, other], other: c}",
        "retainKeysMap: {name: foo, other: c}",
    );
    let err = check_error(
        "retainKeysMap: {name: foo}",
        "retainKeysMap: {$retainKeys: [name], value: x}",
    );
    assert_eq!(err.code, 400);
    assert_eq!(err.message, "invalid patch format of retainKeys");
}

#[test]
fn patch_order_is_preserved_in_merging_lists() {
    check(
        "order 1",
        "mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]",
        "mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]",
        "mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]",
    );
    check(
        "order 2",
        "mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]",
        "mergingList: [{name: 3, value: c}, {name: 1, value: a}]",
        "mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]",
    );
    check(
        "int order 1",
        "mergingIntList: [1, 2, 3]",
        "mergingIntList: [3, 1, 2]",
        "mergingIntList: [3, 1, 2]",
    );
    check(
        "int order 2",
        "mergingIntList: [1, 2, 3]",
        "mergingIntList: [3, 1]",
        "mergingIntList: [2, 3, 1]",
    );
}

#[test]
fn set_element_order_with_items_missing_from_the_list() {
    check(
        "maps",
        "mergingList: [{name: 1}, {name: 3}]",
        "{$setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}], \
          mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}",
        "mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]",
    );
    check(
        "ints",
        "mergingIntList: [1, 3]",
        "$setElementOrder/mergingIntList: [3, 2, 1]",
        "mergingIntList: [3, 1]",
    );
}

#[test]
fn set_element_order_reorders_and_adds() {
    // kubectl apply adding container "b" between "a" and "c".
    check(
        "insert",
        "mergingList: [{name: a, value: '1'}, {name: c, value: '3'}]",
        "{$setElementOrder/mergingList: [{name: a}, {name: b}, {name: c}], \
          mergingList: [{name: b, value: '2'}]}",
        "mergingList: [{name: a, value: '1'}, {name: b, value: '2'}, {name: c, value: '3'}]",
    );
    // Server-only items go before the next patch item the live list places after them.
    check(
        "server only",
        "mergingList: [{name: a}, {name: s}, {name: c}]",
        "{$setElementOrder/mergingList: [{name: c}, {name: a}], mergingList: [{name: c, value: x}]}",
        "mergingList: [{name: s}, {name: c, value: x}, {name: a}]",
    );
}

#[test]
fn set_element_order_mismatch_is_an_error() {
    let err = check_error(
        "mergingList: [{name: 1}]",
        "{$setElementOrder/mergingList: [{name: 1}, {name: 2}], \
          mergingList: [{name: 2}, {name: 1}]}",
    );
    assert_eq!(err.code, 500);
    assert!(
        err.message
            .starts_with("The order in patch list:\n[map[name:2] map[name:1]]\n doesn't match $setElementOrder list:"),
        "{}",
        err.message
    );
}

#[test]
fn delete_from_primitive_list() {
    check(
        "delete",
        "mergingIntList: [1, 2, 3]",
        "$deleteFromPrimitiveList/mergingIntList: [2]",
        "mergingIntList: [1, 3]",
    );
    // kubectl apply removing a finalizer-like entry while keeping order.
    check(
        "with order",
        "mergingIntList: [1, 2, 3]",
        "{$setElementOrder/mergingIntList: [3, 1], $deleteFromPrimitiveList/mergingIntList: [2]}",
        "mergingIntList: [3, 1]",
    );
    let err = check_error("mergingIntList: [1]", "$deleteFromPrimitiveList: [1]");
    assert_eq!(err.code, 400);
    assert_eq!(err.message, "invalid patch format of primitive list");
}

#[test]
fn non_merging_lists_are_replaced() {
    check(
        "non merging",
        "nonMergingList: [{name: 1, value: a}, {name: 2}]",
        "nonMergingList: [{name: 3}]",
        "nonMergingList: [{name: 3}]",
    );
    check(
        "non merging ints",
        "nonMergingIntList: [1, 2]",
        "nonMergingIntList: [2, 3]",
        "nonMergingIntList: [2, 3]",
    );
}

#[test]
fn nested_merging_lists_merge_by_key() {
    check(
        "nested",
        "mergingList: [{name: 1, mergingList: [{name: a, value: x}]}, {name: 2}]",
        "mergingList: [{name: 1, mergingList: [{name: b}, {name: a, other: y}]}]",
        "mergingList: [{name: 1, mergingList: [{name: b}, {name: a, value: x, other: y}]}, {name: 2}]",
    );
}

#[test]
fn replace_strategy_replaces_maps() {
    check(
        "replacingItem",
        "replacingItem: {a: 1, b: {c: 2}}",
        "replacingItem: {b: {d: 3}}",
        "replacingItem: {b: {d: 3}}",
    );
}

#[test]
fn nulls_delete_and_unmatched_nulls_are_ignored() {
    check(
        "nulls",
        "{name: a, simpleMap: {x: '1', y: '2'}}",
        "{value: null, name: null, simpleMap: {x: null}, other: {deep: null, kept: 1}}",
        "{simpleMap: {y: '2'}, other: {kept: 1}}",
    );
}

#[test]
fn bad_directives_are_errors() {
    let err = check_error(
        "mergingList: [{name: 1}]",
        "mergingList: [{name: 1, $patch: merge}]",
    );
    assert_eq!(
        err.message,
        "merging lists cannot yet be specified in the patch"
    );
    let err = check_error("mergingList: [{name: 1}]", "mergingList: [{value: 1}]");
    assert_eq!(
        err.message,
        "map: map[value:1] does not contain declared merge key: name"
    );
    let err = check_error("simpleMap: {}", "simpleMap: {$patch: frob}");
    assert_eq!(
        err.message,
        "unknown patch type: frob in map: map[$patch:frob]"
    );
    let err = check_error("mergingIntList: [1]", "mergingIntList: [[1]]");
    assert_eq!(err.code, 422);
    assert_eq!(err.causes[0].message, "lists of lists are not supported");
}

#[test]
fn body_must_be_an_object() {
    let err = apply_strategic_merge_patch::<OpenApiMeta>(&json!({}), b"[1]", None).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
}

/// A pod-like schema with upstream's metadata for the fields kubectl patches most.
fn pod_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "finalizers": {
                        "type": "array",
                        "items": {"type": "string"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-list-type": "set"
                    }
                }
            },
            "spec": {
                "type": "object",
                "properties": {
                    "containers": {
                        "type": "array",
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "image": {"type": "string"},
                                "env": {
                                    "type": "array",
                                    "x-kubernetes-patch-strategy": "merge",
                                    "x-kubernetes-patch-merge-key": "name",
                                    "items": {"type": "object"}
                                },
                                "ports": {
                                    "type": "array",
                                    "x-kubernetes-patch-strategy": "merge",
                                    "x-kubernetes-patch-merge-key": "containerPort",
                                    "items": {"type": "object"}
                                }
                            }
                        }
                    },
                    "strategy": {
                        "type": "object",
                        "x-kubernetes-patch-strategy": "retainKeys",
                        "properties": {
                            "type": {"type": "string"},
                            "rollingUpdate": {"type": "object"}
                        }
                    }
                }
            }
        }
    })
}

#[test]
fn kubectl_shaped_patches() {
    let schema = pod_schema();
    let meta = OpenApiMeta::new(&schema);
    let live = json!({
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}],
                 "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "busybox"}
            ],
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
        }
    });
    // kubectl label web tier=fe; kubectl set image; kubectl apply switching to Recreate.
    let patch = json!({
        "metadata": {"labels": {"tier": "fe"}, "finalizers": ["b"]},
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{"name": "web", "image": "nginx:2",
                            "env": [{"name": "A", "$patch": "delete"}, {"name": "B", "value": "2"}]}],
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"}
        }
    });
    let patched = strategic_merge(&live, &patch, Some(&meta)).unwrap();
    assert_eq!(
        patched,
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["b", "a"]},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}],
                     "env": [{"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "busybox"}
                ],
                "strategy": {"type": "Recreate"}
            }
        })
    );
}
