//! Strategic merge patch, as upstream's `apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch`, i.e. `mergeMap` with `MergeParallelList` and
//! `IgnoreUnmatchedNulls`).
//!
//! Maps merge recursively and `null` deletes; lists whose field has patch strategy `merge` merge
//! by their patch merge key (lists of maps) or are unioned (lists of scalars); other lists are
//! replaced. Directives: `$patch: replace|delete|merge`, `$retainKeys`,
//! `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`.

use serde_json::{Map, Value};

use super::error::go_json_error;
use super::{PatchError, PatchMeta};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

// Upstream's `mergepatch` error values; their HTTP status follows
// `interpretStrategicMergePatchError`.
const ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER: &str =
    "invalid patch format of setElementOrder list";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

type Result<T> = std::result::Result<T, PatchError>;

/// Applies a strategic merge patch `body` (JSON object) to `original`. `meta` is the kind's
/// schema root; fields without metadata merge as plain maps and replace as lists.
pub fn apply_strategic_merge_patch<M: PatchMeta>(
    original: &Value,
    body: &[u8],
    meta: Option<M>,
) -> Result<Value> {
    let patch: Value = match serde_json::from_slice(body) {
        Ok(patch @ Value::Object(_)) => patch,
        _ => {
            return Err(PatchError::bad_request(go_json_error(
                body,
                "map[string]interface {}",
            )))
        }
    };
    strategic_merge(original, &patch, meta.as_ref())
}

/// Strategic merge of an already decoded `patch` object into `original`.
pub fn strategic_merge<M: PatchMeta>(
    original: &Value,
    patch: &Value,
    meta: Option<&M>,
) -> Result<Value> {
    let original = match original {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::bad_request("invalid JSON document")),
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::bad_request(go_json_error(
            patch.to_string().as_bytes(),
            "map[string]interface {}",
        )));
    };
    merge_map(original, patch.clone(), meta).map(Value::Object)
}

fn bad_request(message: &str) -> PatchError {
    PatchError::bad_request(message)
}

/// The patch strategy of a field, split as upstream's `extractRetainKeysPatchStrategy`:
/// whether `retainKeys` is set, and the other strategy (`merge`, `replace` or empty).
fn field_strategy<M: PatchMeta>(meta: Option<&M>) -> Result<(bool, String)> {
    let Some(strategy) = meta.and_then(|meta| meta.patch_strategy()) else {
        return Ok((false, String::new()));
    };
    let strategies: Vec<&str> = strategy.split(',').collect();
    match strategies.as_slice() {
        [single] if *single == RETAIN_KEYS_STRATEGY => Ok((true, String::new())),
        [single] => Ok((false, single.to_string())),
        [first, second] if *first == RETAIN_KEYS_STRATEGY => Ok((true, second.to_string())),
        [first, second] if *second == RETAIN_KEYS_STRATEGY => Ok((true, first.to_string())),
        _ => Err(PatchError::internal(format!(
            "unexpected patch strategy: [{}]",
            strategies.join(" ")
        ))),
    }
}

fn merge_key_of<M: PatchMeta>(meta: Option<&M>) -> String {
    meta.and_then(|meta| meta.patch_merge_key())
        .unwrap_or_default()
        .to_string()
}

fn merge_map<M: PatchMeta>(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    meta: Option<&M>,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.shift_remove(DIRECTIVE_MARKER);
                Ok(clean_map(patch))
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys_directive(&mut original, &mut patch)?;
    merge_set_element_order_lists(&mut original, &mut patch, meta)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let field = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?;
            (field, true)
        } else if key.starts_with('$') {
            // Unknown directives never reach a typed object upstream (they are not fields).
            continue;
        } else {
            (key, false)
        };

        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let Some(original_value) = original.get_mut(&key) else {
            original.insert(key, clean(patch_value));
            continue;
        };
        let child = meta.and_then(|meta| meta.field(&key));
        let (_, strategy) = field_strategy(child.as_ref())?;
        let merged = match (original_value.take(), patch_value) {
            (Value::Object(original_map), Value::Object(patch_map)) => {
                if strategy == REPLACE_DIRECTIVE {
                    Value::Object(clean_map(patch_map))
                } else {
                    Value::Object(merge_map(original_map, patch_map, child.as_ref())?)
                }
            }
            (Value::Array(original_list), Value::Array(patch_list)) => {
                Value::Array(merge_slice_handler(
                    original_list,
                    patch_list,
                    child.as_ref(),
                    &strategy,
                    &merge_key_of(child.as_ref()),
                    is_delete_list,
                )?)
            }
            (_, patch_value) => clean(patch_value),
        };
        *original_value = merged;
    }
    Ok(original)
}

/// `$retainKeys`: drop the members of `original` not listed, after checking that the patch
/// only sets listed members.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain_keys) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain_keys) = retain_keys else {
        return Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS));
    };
    let retained = |key: &str| retain_keys.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(key) {
            return Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_RETAIN_KEYS));
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `$setElementOrder/<field>`: merge the field's list now and order the result by the given
/// order, then by the patch, then by the live list (upstream `mergePatchIntoOriginal`).
fn merge_set_element_order_lists<M: PatchMeta>(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    meta: Option<&M>,
) -> Result<()> {
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for order_key in order_keys {
        let order = patch.shift_remove(&order_key).expect("key listed above");
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let field = extract_key(&order_key, SET_ELEMENT_ORDER_PREFIX)?;
        let original_list = match original.get(&field) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&field) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let child = meta.and_then(|meta| meta.field(&field));
        let (_, strategy) = field_strategy(child.as_ref())?;
        let merge_key = merge_key_of(child.as_ref());
        validate_patch_with_set_order_list(patch_list.as_deref(), &order, &merge_key)?;

        let merged = match (&original_list, &patch_list) {
            (Some(original_list), None) => original_list.clone(),
            (None, Some(patch_list)) => patch_list.iter().cloned().map(clean).collect(),
            (Some(original_list), Some(patch_list)) => merge_slice_handler(
                original_list.clone(),
                patch_list.clone(),
                child.as_ref(),
                &strategy,
                &merge_key,
                false,
            )?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = partition_by_presence(merged, &order, &merge_key)?;
        let original_items = original_list.unwrap_or_default();
        let patch_items_all = patch_list.unwrap_or_default();
        let kind = slice_element_kind(&[&original_items, &patch_items_all])?;
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &original_items,
            &merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// Checks that the patch list's items appear in the `$setElementOrder` list in the same
/// relative order.
fn validate_patch_with_set_order_list(
    patch_list: Option<&[Value]>,
    order: &[Value],
    merge_key: &str,
) -> Result<()> {
    let patch_list = patch_list.unwrap_or_default();
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut kept = Vec::new();
        for item in patch_list {
            let Value::Object(map) = item else {
                return Err(bad_arg_type("map[string]interface {}", item));
            };
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE) {
                kept.push(item);
            }
        }
        kept
    };
    let (mut patch_index, mut order_index) = (0, 0);
    while patch_index < non_delete.len() && order_index < order.len() {
        if non_delete[patch_index]
            .as_object()
            .is_some_and(|map| map.contains_key(DIRECTIVE_MARKER))
        {
            patch_index += 1;
            continue;
        }
        if merge_key_value_equal(non_delete[patch_index], &order[order_index], merge_key)? {
            patch_index += 1;
        }
        order_index += 1;
    }
    if patch_index < non_delete.len() && order_index >= order.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let left_map = left
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", left))?;
    let right_map = right
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", right))?;
    let left_key = left_map
        .get(merge_key)
        .ok_or_else(|| no_merge_key(left_map, merge_key))?;
    let right_key = right_map
        .get(merge_key)
        .ok_or_else(|| no_merge_key(right_map, merge_key))?;
    Ok(left_key == right_key)
}

fn merge_slice_handler<M: PatchMeta>(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: Option<&M>,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if strategy == MERGE_DIRECTIVE {
        let items = meta.and_then(|meta| meta.items());
        merge_slice(original, patch, items.as_ref(), merge_key, is_delete_list)
    } else {
        Ok(patch.into_iter().map(clean).collect())
    }
}

/// The element kinds upstream tells apart (`reflect.Kind` of decoded JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Int,
    Float,
    Bool,
    Nil,
}

fn element_kind(value: &Value) -> Option<ElementKind> {
    match value {
        Value::Object(_) => Some(ElementKind::Map),
        Value::String(_) => Some(ElementKind::String),
        Value::Number(n) if n.is_f64() => Some(ElementKind::Float),
        Value::Number(_) => Some(ElementKind::Int),
        Value::Bool(_) => Some(ElementKind::Bool),
        Value::Null => Some(ElementKind::Nil),
        Value::Array(_) => None,
    }
}

/// The common element kind of the given lists (upstream `sliceElementType`).
fn slice_element_kind(slices: &[&[Value]]) -> Result<ElementKind> {
    let mut kind = None;
    for slice in slices {
        for value in slice.iter() {
            let Some(current) = element_kind(value) else {
                return Err(PatchError::unprocessable(ERR_NO_LIST_OF_LISTS));
            };
            match kind {
                None => kind = Some(current),
                Some(previous) if previous != current => {
                    let all: Vec<Value> = slices
                        .iter()
                        .map(|slice| Value::Array(slice.to_vec()))
                        .collect();
                    return Err(PatchError::internal(format!(
                        "list element types are not identical: {}",
                        go_fmt(&Value::Array(all))
                    )));
                }
                Some(_) => {}
            }
        }
    }
    kind.ok_or_else(|| PatchError::internal("no elements in any of the given slices"))
}

fn merge_slice<M: PatchMeta>(
    original: Vec<Value>,
    patch: Vec<Value>,
    items: Option<&M>,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_kind(&[&original, &patch])?;
    let (merged, patch, original) = if kind != ElementKind::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|item| !patch.contains(item))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch.iter()) {
            if !merged.contains(item) {
                merged.push(clean(item.clone()));
            }
        }
        (merged, patch, original)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::internal(
                "cannot merge lists without merge key for type struct",
            ));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, items)?;
        (merged, patch, original)
    };
    let key = if kind == ElementKind::Map {
        merge_key
    } else {
        ""
    };
    let (patch_items, server_only) = partition_by_presence(merged, &patch, key)?;
    normalize_element_order(patch_items, server_only, &patch, &original, key, kind)
}

/// Applies `$patch: delete|replace` list items; returns the remaining original items and the
/// patch items without directives.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let map = item.as_object().expect("element kind checked: map");
        match map.get(DIRECTIVE_MARKER) {
            None => plain.push(item),
            Some(directive) => match directive.as_str() {
                Some(DELETE_DIRECTIVE) => {
                    let Some(key_value) = map.get(merge_key) else {
                        return Err(no_merge_key(map, merge_key));
                    };
                    for (index, candidate) in original.iter().enumerate() {
                        if !candidate.is_object() {
                            return Err(PatchError::internal(format!(
                                "value for key {index} is not a map."
                            )));
                        }
                    }
                    original.retain(|candidate| candidate.get(merge_key) != Some(key_value));
                }
                Some(REPLACE_DIRECTIVE) => replace = true,
                Some(MERGE_DIRECTIVE) => {
                    return Err(PatchError::internal(
                        "merging lists cannot yet be specified in the patch",
                    ))
                }
                _ => return Err(bad_patch_type(directive, map)),
            },
        }
    }
    if replace {
        return Ok((plain.into_iter().map(clean).collect(), Vec::new()));
    }
    Ok((original, plain))
}

fn merge_slice_without_special_elements<M: PatchMeta>(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: Option<&M>,
) -> Result<Vec<Value>> {
    for item in patch {
        let map = item.as_object().expect("element kind checked: map");
        let Some(key_value) = map.get(merge_key) else {
            return Err(no_merge_key(map, merge_key));
        };
        match find_by_merge_key(&original, merge_key, key_value)? {
            Some(index) => {
                let Value::Object(existing) = original[index].take() else {
                    unreachable!("find_by_merge_key only matches maps")
                };
                original[index] = Value::Object(merge_map(existing, map.clone(), items)?);
            }
            None => original.push(clean(item.clone())),
        }
    }
    Ok(original)
}

fn find_by_merge_key(list: &[Value], merge_key: &str, key_value: &Value) -> Result<Option<usize>> {
    for (index, item) in list.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(PatchError::internal(format!(
                "value for key {index} is not a map."
            )));
        };
        if map.get(merge_key) == Some(key_value) {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Splits `merged` into the items present in `present_in` (by merge key for maps, by value for
/// scalars) and the others.
fn partition_by_presence(
    merged: Vec<Value>,
    present_in: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for item in merged {
        let found = if merge_key.is_empty() {
            present_in.contains(&item)
        } else {
            let Value::Object(map) = &item else {
                return Err(bad_arg_type("map[string]interface {}", &item));
            };
            let Some(key_value) = map.get(merge_key) else {
                return Err(no_merge_key(map, merge_key));
            };
            find_by_merge_key(present_in, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// The position of `item` in `list`: by merge key value for maps, by value otherwise.
fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: ElementKind) -> Option<usize> {
    let lookup = |value: &Value| -> Option<Value> {
        if kind == ElementKind::Map {
            Some(
                value
                    .as_object()?
                    .get(merge_key)
                    .cloned()
                    .unwrap_or(Value::Null),
            )
        } else {
            Some(value.clone())
        }
    };
    let wanted = lookup(item);
    list.iter()
        .position(|candidate| lookup(candidate) == wanted)
}

/// Orders patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them keeping both relative orders (upstream `normalizeElementOrder`).
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slices(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>> {
    let (mut items, to_delete) = if kind == ElementKind::Map {
        for item in items.iter().chain(order.iter()) {
            let Value::Object(map) = item else {
                return Err(bad_arg_type("map[string]interface {}", item));
            };
            if !map.contains_key(merge_key) {
                return Err(no_merge_key(map, merge_key));
            }
        }
        items.into_iter().partition::<Vec<Value>, _>(|item| {
            item.get(DIRECTIVE_MARKER).and_then(Value::as_str) != Some(DELETE_DIRECTIVE)
        })
    } else {
        (items, Vec::new())
    };
    items.sort_by_key(|item| index_of(order, item, merge_key, kind).unwrap_or(usize::MAX));
    items.extend(to_delete);
    Ok(items)
}

/// Interleaves two sorted lists: an item of `left` goes first only when `server_order` places
/// it before the next item of `right`.
fn merge_sorted_slices(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Vec<Value> {
    let mut result = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        result.extend(next);
    }
    result
}

/// Strips what never survives upstream's decoding into a typed object from a value taken from
/// the patch as is: `null` members and directive keys.
fn clean(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_map(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(clean).collect()),
        other => other,
    }
}

fn clean_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(key, value)| !value.is_null() && !key.starts_with('$'))
        .map(|(key, value)| (key, clean(value)))
        .collect()
}

/// `$deleteFromPrimitiveList/<field>` → `<field>`.
fn extract_key(directive_key: &str, prefix: &str) -> Result<String> {
    match directive_key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_PRIMITIVE_LIST))
        }
        _ => Err(bad_request(ERR_BAD_PATCH_FORMAT_FOR_SET_ELEMENT_ORDER)),
    }
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let directive = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({})", go_fmt(other)),
    };
    PatchError::internal(format!(
        "unknown patch type: {directive} in map: {}",
        go_fmt(&Value::Object(map.clone()))
    ))
}

fn no_merge_key(map: &Map<String, Value>, merge_key: &str) -> PatchError {
    PatchError::internal(format!(
        "map: {} does not contain declared merge key: {merge_key}",
        go_fmt(&Value::Object(map.clone()))
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    let actual = match actual {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    PatchError::internal(format!("expected a {expected}, but received a {actual}"))
}

/// Go's `%v` rendering of a decoded JSON value, used in upstream's error messages.
fn go_fmt(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_fmt).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(key, value)| format!("{key}:{}", go_fmt(value)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

#[cfg(test)]
mod tests;
