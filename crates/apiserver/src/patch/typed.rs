//! Schema-driven walks over objects, as structured-merge-diff's `typed` package: the field set
//! of a value, the comparison of two values, the merge of an applied configuration into a live
//! object, and the removal of a set of fields.
//!
//! A node is a leaf (scalar, atomic list or map), a granular object (struct or map, walked by
//! member) or an associative list (walked by item key: list-map keys, or the value for sets).
//! Without schema a node is "deduced": objects are granular, lists atomic.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, PathElement};
use super::PatchMeta;

/// How the items of an associative list are identified.
#[derive(Debug, Clone)]
enum ListKind {
    /// Scalars identified by value.
    Set,
    /// Objects identified by these key fields.
    Map(Vec<String>),
}

/// What a value is at a schema node.
enum Node<M> {
    Leaf,
    Object(Option<M>),
    List(ListKind, Option<M>),
}

impl<M> Node<M> {
    fn shape(&self) -> u8 {
        match self {
            Node::Leaf => 0,
            Node::Object(_) => 1,
            Node::List(..) => 2,
        }
    }
}

fn list_kind<M: PatchMeta>(meta: &M) -> Option<ListKind> {
    match meta.list_type() {
        Some("atomic") => None,
        Some("set") => Some(ListKind::Set),
        Some("map") => {
            let keys = meta.list_map_keys();
            if keys.is_empty() {
                meta.patch_merge_key()
                    .map(|key| ListKind::Map(vec![key.to_string()]))
            } else {
                Some(ListKind::Map(keys))
            }
        }
        // Without a list type, upstream's schema conversion falls back to the patch strategy.
        _ => {
            let merges = meta
                .patch_strategy()
                .is_some_and(|strategy| strategy.split(',').any(|s| s == "merge"));
            if !merges {
                return None;
            }
            Some(match meta.patch_merge_key() {
                Some(key) => ListKind::Map(vec![key.to_string()]),
                None => ListKind::Set,
            })
        }
    }
}

fn classify<M: PatchMeta>(meta: Option<&M>, value: &Value) -> Node<M> {
    match (value, meta) {
        (Value::Object(_), None) => Node::Object(None),
        (Value::Object(_), Some(meta)) => {
            if meta.map_type() == Some("atomic") {
                return Node::Leaf;
            }
            match meta.type_() {
                Some("object") | None => Node::Object(Some(meta.clone())),
                _ => Node::Leaf,
            }
        }
        (Value::Array(_), Some(meta)) => match list_kind(meta) {
            Some(kind) => Node::List(kind, meta.items()),
            None => Node::Leaf,
        },
        _ => Node::Leaf,
    }
}

fn child_meta<M: PatchMeta>(meta: Option<&M>, name: &str) -> Option<M> {
    meta.and_then(|meta| meta.field(name))
}

fn is_declared<M: PatchMeta>(meta: Option<&M>, name: &str) -> bool {
    meta.is_some_and(|meta| meta.property(name).is_some())
}

/// The path element of a list item.
fn item_element<M: PatchMeta>(
    kind: &ListKind,
    items: Option<&M>,
    item: &Value,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListKind::Map(keys) => {
            let Value::Object(map) = item else {
                return Err(if item.is_null() {
                    "associative list with keys may not have a null element".into()
                } else {
                    "associative list with keys may not have non-map elements".into()
                });
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(value) = map.get(key) {
                    fields.push((key.clone(), value.clone()));
                } else if let Some(default) = key_default(items, key) {
                    fields.push((key.clone(), default));
                }
            }
            if fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {} \
                     (and doesn't have default values for any key fields)",
                    go_quoted_list(keys)
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

/// The schema default of a list-map key. Built-in kinds carry no defaults in our schema
/// data; `protocol` (default `TCP` on container and service ports) is the only defaulted
/// list-map key among them.
fn key_default<M: PatchMeta>(items: Option<&M>, key: &str) -> Option<Value> {
    items
        .and_then(|items| items.property(key))
        .and_then(|field| field.default_value())
        .or_else(|| (key == "protocol").then(|| Value::String("TCP".into())))
}

fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Items of a list indexed by path element, in first-seen order; duplicates collect together.
fn index_items<'v, M: PatchMeta>(
    kind: &ListKind,
    items_meta: Option<&M>,
    list: &'v [Value],
) -> Result<Vec<(PathElement, Vec<&'v Value>)>, String> {
    let mut order: Vec<(PathElement, Vec<&Value>)> = Vec::new();
    let mut positions: BTreeMap<PathElement, usize> = BTreeMap::new();
    for (index, item) in list.iter().enumerate() {
        let element = item_element(kind, items_meta, item)
            .map_err(|err| format!("element {index}: {err}"))?;
        match positions.get(&element) {
            Some(&position) => order[position].1.push(item),
            None => {
                positions.insert(element.clone(), order.len());
                order.push((element, vec![item]));
            }
        }
    }
    Ok(order)
}

/// The fields set in `value` (upstream `ToFieldSet`).
pub(crate) fn to_field_set<M: PatchMeta>(
    value: &Value,
    meta: Option<&M>,
) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    field_set_walk(value, meta, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn field_set_walk<M: PatchMeta>(
    value: &Value,
    meta: Option<&M>,
    path: &mut Vec<PathElement>,
    set: &mut FieldSet,
) -> Result<(), String> {
    match classify(meta, value) {
        Node::Leaf => set.insert(path),
        Node::Object(meta) => {
            let map = value.as_object().expect("classified as object");
            for (name, child) in map {
                path.push(PathElement::Field(name.clone()));
                let child_schema = child_meta(meta.as_ref(), name);
                field_set_walk(child, child_schema.as_ref(), path, set)?;
                let empty_object = child.as_object().is_some_and(Map::is_empty);
                if child.is_null() || empty_object || !is_declared(meta.as_ref(), name) {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Node::List(kind, items) => {
            let list = value.as_array().expect("classified as list");
            for (element, values) in
                index_items(&kind, items.as_ref(), list).map_err(|err| with_path(path, err))?
            {
                path.push(element);
                if values.len() == 1 {
                    field_set_walk(values[0], items.as_ref(), path, set)?;
                }
                set.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

fn with_path(path: &[PathElement], err: String) -> String {
    let path: String = path.iter().map(ToString::to_string).collect();
    format!("{path}: {err}")
}

/// The differences between two values (upstream `typed.Comparison`).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// Compares `lhs` (old) with `rhs` (new).
pub(crate) fn compare<M: PatchMeta>(
    lhs: &Value,
    rhs: &Value,
    meta: Option<&M>,
) -> Result<Comparison, String> {
    let mut comparison = Comparison::default();
    compare_walk(Some(lhs), Some(rhs), meta, &mut Vec::new(), &mut comparison)?;
    Ok(comparison)
}

fn is_empty_container(value: Option<&Value>) -> bool {
    match value {
        None => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(list)) => list.is_empty(),
        Some(_) => false,
    }
}

fn compare_leaf(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &[PathElement],
    comparison: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, Some(_)) => comparison.added.insert(path),
        (Some(_), None) => comparison.removed.insert(path),
        (Some(l), Some(r)) if l != r => comparison.modified.insert(path),
        _ => {}
    }
}

fn compare_walk<M: PatchMeta>(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    meta: Option<&M>,
    path: &mut Vec<PathElement>,
    comparison: &mut Comparison,
) -> Result<(), String> {
    let node = classify(meta, rhs.or(lhs).expect("one side present"));
    let same_shape = match (lhs, rhs) {
        (Some(l), Some(r)) => classify(meta, l).shape() == classify(meta, r).shape(),
        _ => true,
    };
    let leaf = !same_shape
        || matches!(node, Node::Leaf)
        || (is_empty_container(lhs) && is_empty_container(rhs));
    if leaf {
        compare_leaf(lhs, rhs, path, comparison);
        return Ok(());
    }
    match node {
        Node::Leaf => unreachable!("handled above"),
        Node::Object(meta) => {
            let empty = Map::new();
            let left = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let right = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let names = left
                .keys()
                .chain(right.keys().filter(|name| !left.contains_key(*name)));
            for name in names {
                path.push(PathElement::Field(name.clone()));
                let child_schema = child_meta(meta.as_ref(), name);
                compare_walk(
                    left.get(name),
                    right.get(name),
                    child_schema.as_ref(),
                    path,
                    comparison,
                )?;
                path.pop();
            }
        }
        Node::List(kind, items) => {
            let empty = Vec::new();
            let left = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let right = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let left_items =
                index_items(&kind, items.as_ref(), left).map_err(|err| with_path(path, err))?;
            let right_items =
                index_items(&kind, items.as_ref(), right).map_err(|err| with_path(path, err))?;
            let right_index: BTreeMap<&PathElement, &Vec<&Value>> =
                right_items.iter().map(|(e, v)| (e, v)).collect();
            let left_index: BTreeMap<&PathElement, &Vec<&Value>> =
                left_items.iter().map(|(e, v)| (e, v)).collect();
            let elements = left_items.iter().map(|(e, _)| e).chain(
                right_items
                    .iter()
                    .map(|(e, _)| e)
                    .filter(|e| !left_index.contains_key(e)),
            );
            for element in elements {
                let l = left_index.get(element).map(|v| v.as_slice()).unwrap_or(&[]);
                let r = right_index
                    .get(element)
                    .map(|v| v.as_slice())
                    .unwrap_or(&[]);
                path.push(element.clone());
                match (l.len(), r.len()) {
                    (0..=1, 0..=1) => compare_walk(
                        l.first().copied(),
                        r.first().copied(),
                        items.as_ref(),
                        path,
                        comparison,
                    )?,
                    (_, 2..) if l.len() >= 2 => {
                        if l != r {
                            comparison.modified.insert(path);
                        }
                    }
                    (2.., _) => {
                        if let Some(first) = r.first() {
                            compare_walk(None, Some(first), items.as_ref(), path, comparison)?;
                        }
                        comparison.removed.insert(path);
                    }
                    _ => {
                        if let Some(first) = l.first() {
                            compare_walk(Some(first), None, items.as_ref(), path, comparison)?;
                        }
                        comparison.added.insert(path);
                    }
                }
                path.pop();
            }
        }
    }
    match (lhs, rhs) {
        (None, Some(_)) => comparison.added.insert(path),
        (Some(_), None) => comparison.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// Merges the applied configuration `rhs` into the live object `lhs`: `rhs` wins on leaves,
/// granular objects merge by member, associative lists by item (upstream `TypedValue.Merge`).
pub(crate) fn merge<M: PatchMeta>(
    lhs: &Value,
    rhs: &Value,
    meta: Option<&M>,
) -> Result<Value, String> {
    Ok(merge_walk(Some(lhs), Some(rhs), meta, &mut Vec::new())?.unwrap_or(Value::Null))
}

fn merge_walk<M: PatchMeta>(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    meta: Option<&M>,
    path: &mut Vec<PathElement>,
) -> Result<Option<Value>, String> {
    let node = classify(meta, rhs.or(lhs).expect("one side present"));
    let same_shape = match (lhs, rhs) {
        (Some(l), Some(r)) => classify(meta, l).shape() == classify(meta, r).shape(),
        _ => true,
    };
    if !same_shape
        || matches!(node, Node::Leaf)
        || (is_empty_container(lhs) && is_empty_container(rhs))
    {
        return Ok(rhs.or(lhs).cloned());
    }
    match node {
        Node::Leaf => unreachable!("handled above"),
        Node::Object(meta) => {
            let empty = Map::new();
            let left = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let right = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut out = Map::new();
            let names = left
                .keys()
                .chain(right.keys().filter(|name| !left.contains_key(*name)));
            for name in names {
                path.push(PathElement::Field(name.clone()));
                let child_schema = child_meta(meta.as_ref(), name);
                if let Some(merged) =
                    merge_walk(left.get(name), right.get(name), child_schema.as_ref(), path)?
                {
                    out.insert(name.clone(), merged);
                }
                path.pop();
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Node::List(kind, items) => {
            let empty = Vec::new();
            let left = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let right = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let merged = merge_list_items(left, right, &kind, items.as_ref(), path)?;
            Ok((!merged.is_empty()).then_some(Value::Array(merged)))
        }
    }
}

/// Upstream `mergingWalker.visitListItems`: the result follows the applied order for items it
/// names, keeping live-only items where they were relative to the shared ones.
fn merge_list_items<M: PatchMeta>(
    lhs: &[Value],
    rhs: &[Value],
    kind: &ListKind,
    items: Option<&M>,
    path: &mut Vec<PathElement>,
) -> Result<Vec<Value>, String> {
    let rhs_items = index_items(kind, items, rhs).map_err(|err| with_path(path, err))?;
    if let Some((element, _)) = rhs_items.iter().find(|(_, values)| values.len() > 1) {
        return Err(with_path(
            path,
            format!("duplicate entries for key {element}"),
        ));
    }
    let mut lhs_elements = Vec::with_capacity(lhs.len());
    let mut lhs_index: BTreeMap<PathElement, Option<&Value>> = BTreeMap::new();
    for (index, item) in lhs.iter().enumerate() {
        let element = item_element(kind, items, item)
            .map_err(|err| with_path(path, format!("element {index}: {err}")))?;
        // A duplicated live item has no single value to merge with.
        lhs_index
            .entry(element.clone())
            .and_modify(|value| *value = None)
            .or_insert(Some(item));
        lhs_elements.push(element);
    }
    let rhs_elements: Vec<&PathElement> = rhs_items.iter().map(|(e, _)| e).collect();
    let rhs_index: BTreeMap<&PathElement, &Value> =
        rhs_items.iter().map(|(e, v)| (e, v[0])).collect();

    let mut shared = rhs_elements
        .iter()
        .copied()
        .filter(|element| lhs_index.contains_key(*element));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeMap<&PathElement, ()> = BTreeMap::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    let mut merge_item = |element: &PathElement,
                          l: Option<&Value>,
                          r: Option<&Value>,
                          out: &mut Vec<Value>|
     -> Result<(), String> {
        path.push(element.clone());
        let merged = merge_walk(l, r, items, path);
        path.pop();
        out.extend(merged?);
        Ok(())
    };
    while li < lhs_elements.len() || ri < rhs_elements.len() {
        if li < lhs_elements.len() && ri < rhs_elements.len() {
            let element = &lhs_elements[li];
            if element == rhs_elements[ri] {
                merged_rhs.insert(rhs_elements[ri], ());
                let l = lhs_index.get(element).copied().flatten();
                merge_item(element, l, Some(rhs_index[element]), &mut out)?;
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rhs_index.contains_key(element) && next_shared.is_some_and(|s| s != element) {
                li += 1;
                continue;
            }
        }
        if li < lhs_elements.len() {
            let element = &lhs_elements[li];
            if !rhs_index.contains_key(element) {
                merge_item(element, Some(&lhs[li]), None, &mut out)?;
                li += 1;
                continue;
            } else if merged_rhs.contains_key(element) {
                li += 1;
            }
        }
        if ri < rhs_elements.len() {
            let element = rhs_elements[ri];
            merged_rhs.insert(element, ());
            let l = lhs_index.get(element).copied().flatten();
            merge_item(element, l, Some(rhs_index[element]), &mut out)?;
            ri += 1;
            if next_shared.is_some_and(|s| s == element) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// `value` without the fields in `set` (upstream `RemoveItems`). Objects and lists left empty
/// by the removal disappear.
pub(crate) fn remove_items<M: PatchMeta>(
    value: &Value,
    set: &FieldSet,
    meta: Option<&M>,
) -> Result<Option<Value>, String> {
    match classify(meta, value) {
        Node::Leaf => Ok(Some(value.clone())),
        Node::Object(meta) => {
            let map = value.as_object().expect("classified as object");
            if map.is_empty() {
                return Ok(Some(value.clone()));
            }
            let mut out = Map::new();
            for (name, child) in map {
                let element = PathElement::Field(name.clone());
                if set.members().contains(&element) {
                    continue;
                }
                match set.with_prefix(&element) {
                    Some(subset) => {
                        let child_schema = child_meta(meta.as_ref(), name);
                        if let Some(kept) = remove_items(child, subset, child_schema.as_ref())? {
                            out.insert(name.clone(), kept);
                        }
                    }
                    None => {
                        out.insert(name.clone(), child.clone());
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        Node::List(kind, items) => {
            let list = value.as_array().expect("classified as list");
            if list.is_empty() {
                return Ok(Some(value.clone()));
            }
            let mut out = Vec::with_capacity(list.len());
            for item in list {
                let element = item_element(&kind, items.as_ref(), item)?;
                if set.members().contains(&element) {
                    continue;
                }
                match set.with_prefix(&element) {
                    Some(subset) => out.extend(remove_items(item, subset, items.as_ref())?),
                    None => out.push(item.clone()),
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
    }
}

/// `set` plus, as members, the declared struct fields it descends into (upstream
/// `EnsureNamedFieldsAreMembers`): a set holding `.spec.replicas` then also holds `.spec`;
/// keys of maps (such as label names) are never promoted.
pub(crate) fn ensure_named_fields_are_members<M: PatchMeta>(
    set: &FieldSet,
    meta: Option<&M>,
) -> FieldSet {
    let mut out = FieldSet::new();
    for member in set.members() {
        out.insert_member(member.clone());
    }
    for (element, child) in set.children() {
        let child_schema = match element {
            PathElement::Field(name) => {
                if is_declared(meta, name) {
                    out.insert_member(element.clone());
                }
                child_meta(meta, name)
            }
            PathElement::Key(_) => meta.and_then(|meta| meta.items()),
            _ => None,
        };
        let promoted = ensure_named_fields_are_members(child, child_schema.as_ref());
        out = out.union(&prefixed(element, &promoted));
    }
    out
}

fn prefixed(element: &PathElement, set: &FieldSet) -> FieldSet {
    let mut out = FieldSet::new();
    for path in set.paths() {
        let mut full = vec![element.clone()];
        full.extend(path.0);
        out.insert(&full);
    }
    out
}

#[cfg(test)]
mod tests;
