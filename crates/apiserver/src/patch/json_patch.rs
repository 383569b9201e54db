//! JSON patch (RFC 6902) as upstream's API server applies it.
//!
//! Upstream uses `gopkg.in/evanphx/json-patch.v4`, whose behaviour differs from the RFC in ways
//! clients can observe: `replace` of a missing object member adds it, negative array indices
//! count from the end, `null` members count as missing, and every failure has its own wording
//! (returned in a 422). The `json-patch` crate follows the RFC strictly and reports errors in
//! its own words, so the operations are written out here to keep upstream's behaviour exactly.

use serde_json::Value;

use super::error::go_json_error;
use super::PatchError;

/// Upstream's `maxJSONPatchOperations`.
const MAX_OPERATIONS: usize = 10_000;

/// Applies an RFC 6902 patch `body` to `original`. Errors: 400 for a body that is not a list of
/// operations, 413 for more than 10,000 operations, 422 (with upstream's message as cause) for
/// an operation that does not apply.
pub fn apply_json_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let operations = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(operations)) => operations,
        _ => {
            return Err(PatchError::bad_request(go_json_error(
                body,
                "jsonpatch.Patch",
            )))
        }
    };
    if let Some(bad) = operations
        .iter()
        .find(|op| !matches!(op, Value::Object(_) | Value::Null))
    {
        return Err(PatchError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            json_kind(bad)
        )));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(PatchError::too_large(format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            operations.len()
        )));
    }
    let mut doc = original.clone();
    for operation in &operations {
        apply_operation(&mut doc, operation).map_err(PatchError::unprocessable)?;
    }
    Ok(doc)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One operation, read leniently as Go reads `map[string]*json.RawMessage`.
struct Operation<'a> {
    raw: &'a Value,
}

impl<'a> Operation<'a> {
    fn kind(&self) -> &'a str {
        self.raw
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    }
    fn string_field(&self, name: &str) -> Option<&'a str> {
        self.raw.get(name).and_then(Value::as_str)
    }
    fn path(&self) -> Option<&'a str> {
        self.string_field("path")
    }
    fn from(&self) -> Option<&'a str> {
        self.string_field("from")
    }
    /// The `value` member; Go decodes an explicit `null` and a missing member alike.
    fn value(&self) -> Option<&'a Value> {
        self.raw.get("value").filter(|value| !value.is_null())
    }
}

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";
const MISSING_PATH_FIELD: &str = "operation missing path field: missing value";
const MISSING_FROM_FIELD: &str = "operation, missing from field: missing value";

fn apply_operation(doc: &mut Value, raw: &Value) -> Result<(), String> {
    let op = Operation { raw };
    match op.kind() {
        "add" => add(doc, &op),
        "remove" => remove(doc, &op),
        "replace" => replace(doc, &op),
        "move" => move_value(doc, &op),
        "test" => test(doc, &op),
        "copy" => copy(doc, &op),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn add(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op
        .path()
        .ok_or_else(|| format!("add operation failed to decode path: {MISSING}"))?;
    let value = op.value().cloned().unwrap_or(Value::Null);
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    container_add(container, &key, value)
        .map_err(|err| format!("error in add for path: '{path}': {err}"))
}

fn remove(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op
        .path()
        .ok_or_else(|| format!("remove operation failed to decode path: {MISSING}"))?;
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    container_remove(container, &key)
        .map(drop)
        .map_err(|err| format!("error in remove for path: '{path}': {err}"))
}

fn replace(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op
        .path()
        .ok_or_else(|| format!("replace operation failed to decode path: {MISSING_PATH_FIELD}"))?;
    if path.is_empty() {
        // Upstream replaces the whole document only with an object or array and silently
        // ignores anything else.
        if let Some(value @ (Value::Object(_) | Value::Array(_))) = op.value() {
            *doc = value.clone();
        }
        return Ok(());
    }
    let value = op.value().cloned().unwrap_or(Value::Null);
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: {MISSING}")
    })?;
    if container_get(container, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: {MISSING}"
        ));
    }
    // A missing object member is simply set, as upstream does.
    container_set(container, &key, value)
        .map_err(|err| format!("error in remove for path: '{path}': {err}"))
}

fn move_value(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let from = op
        .from()
        .ok_or_else(|| format!("move operation failed to decode from: {MISSING_FROM_FIELD}"))?;
    let (container, key) = find_parent(doc, from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    container_get(container, &key)
        .map_err(|err| format!("error in move for path: '{key}': {err}"))?;
    let value = container_remove(container, &key)
        .map_err(|err| format!("error in move for path: '{key}': {err}"))?;
    let path = op
        .path()
        .ok_or_else(|| format!("move operation failed to decode path: {MISSING_PATH_FIELD}"))?;
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("move operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    container_add(container, &key, value)
        .map_err(|err| format!("error in move for path: '{path}': {err}"))
}

fn copy(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let from = op
        .from()
        .ok_or_else(|| format!("copy operation failed to decode from: {MISSING_FROM_FIELD}"))?;
    let (container, key) = find_parent(doc, from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    let value = container_get(container, &key)
        .map_err(|err| format!("error in copy for from: '{from}': {err}"))?
        .cloned()
        .unwrap_or(Value::Null);
    let path = op
        .path()
        .ok_or_else(|| format!("copy operation failed to decode path: {MISSING}"))?;
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    container_add(container, &key, value)
        .map_err(|err| format!("error while adding value during copy: {err}"))
}

fn test(doc: &mut Value, op: &Operation) -> Result<(), String> {
    let path = op
        .path()
        .ok_or_else(|| format!("test operation failed to decode path: {MISSING_PATH_FIELD}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    if path.is_empty() {
        return match op.value() {
            Some(expected) if expected == doc => Ok(()),
            _ => Err(failed()),
        };
    }
    let (container, key) = find_parent(doc, path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: {MISSING}")
    })?;
    let actual = container_get(container, &key)
        .map_err(|err| format!("error in test for path: '{path}': {err}"))?;
    match (actual, op.value()) {
        (None, None) => Ok(()),
        (Some(actual), Some(expected)) if actual == expected => Ok(()),
        _ => Err(failed()),
    }
}

/// RFC 6901 reference-token unescaping.
fn decode_key(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The container holding the last token of `path` and that token, or `None` when a step on the
/// way is missing, `null` or not a container.
fn find_parent<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let mut tokens: Vec<&str> = path.split('/').collect();
    if tokens.len() < 2 {
        return None;
    }
    let key = decode_key(tokens.pop().expect("at least two tokens"));
    let mut current = doc;
    for token in &tokens[1..] {
        let token = decode_key(token);
        current = match current {
            Value::Object(members) => members.get_mut(&token)?,
            Value::Array(items) => {
                let index = existing_index(&token, items.len()).ok()?;
                &mut items[index]
            }
            _ => return None,
        };
        if !(current.is_object() || current.is_array()) {
            return None;
        }
    }
    Some((current, key))
}

/// Go's `strconv.Atoi` with its error wording.
fn atoi(token: &str) -> Result<i64, String> {
    token.parse::<i64>().map_err(|_| {
        let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!("strconv.Atoi: parsing \"{token}\": value out of range")
        } else {
            format!("strconv.Atoi: parsing \"{token}\": invalid syntax")
        }
    })
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: {INVALID_INDEX}")
}

/// An index of an existing element; negative indices count from the end.
fn existing_index(token: &str, len: usize) -> Result<usize, String> {
    let index = atoi(token)?;
    let len = len as i64;
    let resolved = if index < 0 { index + len } else { index };
    if resolved < 0 || resolved >= len {
        return Err(invalid_index(if index < 0 && resolved < 0 {
            index
        } else {
            resolved
        }));
    }
    Ok(resolved as usize)
}

/// The member or element at `key`; `Ok(None)` for a missing or `null` object member.
fn container_get<'a>(container: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match container {
        Value::Object(members) => Ok(members.get(key).filter(|value| !value.is_null())),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(Some(&items[index]).filter(|value| !value.is_null()))
        }
        _ => Err(MISSING.into()),
    }
}

fn container_set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(members) => {
            members.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            items[index] = value;
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(members) => {
            members.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let index = atoi(key)
                .map_err(|err| format!("value was not a proper array index: '{key}': {err}"))?;
            let new_len = items.len() as i64 + 1;
            if index >= new_len || index < -new_len {
                return Err(invalid_index(index));
            }
            let index = if index < 0 { index + new_len } else { index };
            items.insert(index as usize, value);
            Ok(())
        }
        _ => Err(MISSING.into()),
    }
}

fn container_remove(container: &mut Value, key: &str) -> Result<Value, String> {
    match container {
        Value::Object(members) => members
            .shift_remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}")),
        Value::Array(items) => {
            let index = existing_index(key, items.len())?;
            Ok(items.remove(index))
        }
        _ => Err(MISSING.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(original: Value, patch: Value) -> Result<Value, PatchError> {
        apply_json_patch(&original, patch.to_string().as_bytes())
    }

    fn cause(err: PatchError) -> String {
        assert_eq!(err.code, 422, "{err:?}");
        err.causes[0].message.clone()
    }

    #[test]
    fn rfc6902_operations() {
        let doc = json!({"foo": "bar", "baz": [1, 2, 3], "obj": {"a": 1}});
        let patched = run(
            doc,
            json!([
                {"op": "add", "path": "/new", "value": {"x": 1}},
                {"op": "add", "path": "/baz/1", "value": 9},
                {"op": "add", "path": "/baz/-", "value": 4},
                {"op": "remove", "path": "/foo"},
                {"op": "replace", "path": "/obj/a", "value": 2},
                {"op": "move", "from": "/new/x", "path": "/moved"},
                {"op": "copy", "from": "/obj", "path": "/copied"},
                {"op": "test", "path": "/copied/a", "value": 2}
            ]),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"baz": [1, 9, 2, 3, 4], "obj": {"a": 2}, "new": {}, "moved": 1, "copied": {"a": 2}})
        );
    }

    #[test]
    fn escaped_tokens_address_annotation_keys() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}});
        let patched = run(
            doc,
            json!([
                {"op": "remove", "path": "/metadata/annotations/a~1b"},
                {"op": "replace", "path": "/metadata/annotations/c~0d", "value": "3"}
            ]),
        )
        .unwrap();
        assert_eq!(patched, json!({"metadata": {"annotations": {"c~d": "3"}}}));
    }

    #[test]
    fn missing_parent_is_422_with_upstream_wording() {
        let err = run(
            json!({"spec": {}}),
            json!([{"op": "add", "path": "/spec/template/metadata", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(
            cause(err),
            "add operation does not apply: doc is missing path: \"/spec/template/metadata\": missing value"
        );
        let err = run(
            json!({}),
            json!([{"op": "replace", "path": "/spec/replicas", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            cause(err),
            "replace operation does not apply: doc is missing path: /spec/replicas: missing value"
        );
    }

    #[test]
    fn remove_missing_key_and_bad_index() {
        let err = run(json!({"a": {}}), json!([{"op": "remove", "path": "/a/b"}])).unwrap_err();
        assert_eq!(
            cause(err),
            "error in remove for path: '/a/b': Unable to remove nonexistent key: b: missing value"
        );
        let err = run(
            json!({"a": [1]}),
            json!([{"op": "add", "path": "/a/5", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            cause(err),
            "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index referenced"
        );
        let err = run(
            json!({"a": [1]}),
            json!([{"op": "replace", "path": "/a/3", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(
            cause(err),
            "replace operation does not apply: doc is missing key: /a/3: missing value"
        );
    }

    #[test]
    fn replace_of_missing_member_adds_it_like_upstream() {
        let patched = run(
            json!({"spec": {}}),
            json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]),
        )
        .unwrap();
        assert_eq!(patched, json!({"spec": {"replicas": 2}}));
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        let patched = run(
            json!({"a": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/a/-1"}]),
        )
        .unwrap();
        assert_eq!(patched, json!({"a": [1, 2]}));
    }

    #[test]
    fn failed_test_and_unknown_op() {
        let err = run(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a", "value": 2}]),
        )
        .unwrap_err();
        assert_eq!(cause(err), "testing value /a failed: test failed");
        let err = run(json!({}), json!([{"op": "frob", "path": "/a"}])).unwrap_err();
        assert_eq!(cause(err), "Unexpected kind: frob");
    }

    #[test]
    fn body_that_is_not_a_patch_is_400() {
        let err = apply_json_patch(&json!({}), br#"{"op":"add"}"#).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
    }

    #[test]
    fn too_many_operations_is_413() {
        let ops: Vec<Value> = (0..10_001)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = run(json!({"a": 1}), Value::Array(ops)).unwrap_err();
        assert_eq!(err.code, 413);
        assert_eq!(
            err.message,
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }
}
