//! JSON merge patch (RFC 7386), via the `json-patch` crate.

use serde_json::Value;

use super::PatchError;

/// Applies a merge patch `body` to `original`: members set to `null` are removed, objects are
/// merged recursively, anything else replaces. A body that is not a JSON object is a 400
/// `Invalid JSON Patch`, as upstream (evanphx/json-patch `ErrBadJSONPatch`).
pub fn apply_merge_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(body).map_err(|_| PatchError::bad_request("Invalid JSON Patch"))?;
    if !patch.is_object() {
        return Err(PatchError::bad_request("Invalid JSON Patch"));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &patch);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(original: Value, patch: Value) -> Value {
        apply_merge_patch(&original, patch.to_string().as_bytes()).unwrap()
    }

    // Cases from RFC 7386 appendix A.
    #[test]
    fn rfc7386_examples() {
        assert_eq!(run(json!({"a": "b"}), json!({"a": "c"})), json!({"a": "c"}));
        assert_eq!(
            run(json!({"a": "b"}), json!({"b": "c"})),
            json!({"a": "b", "b": "c"})
        );
        assert_eq!(run(json!({"a": "b"}), json!({"a": null})), json!({}));
        assert_eq!(
            run(json!({"a": [{"b": "c"}]}), json!({"a": [1]})),
            json!({"a": [1]})
        );
        assert_eq!(
            run(json!({"e": null}), json!({"a": 1})),
            json!({"e": null, "a": 1})
        );
        assert_eq!(
            run(json!({}), json!({"a": {"bb": {"ccc": null}}})),
            json!({"a": {"bb": {}}})
        );
    }

    #[test]
    fn labels_are_merged_and_removed() {
        let original = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
        let patched = run(
            original,
            json!({"metadata": {"labels": {"tier": null, "x": "1"}}}),
        );
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"app": "web", "x": "1"}}})
        );
    }

    #[test]
    fn bad_bodies_are_400() {
        for body in [&b"nope"[..], b"[1]", b"null", b"\"x\""] {
            let err = apply_merge_patch(&json!({}), body).unwrap_err();
            assert_eq!(err.code, 400);
            assert_eq!(err.message, "Invalid JSON Patch");
        }
    }
}
