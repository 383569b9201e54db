//! Field selectors.

use serde_json::Value;

/// `metadata.name` and `metadata.namespace`, selectable on every resource.
pub fn common_field(obj: &Value, path: &str) -> Option<String> {
    match path {
        "metadata.name" => Some(obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()),
        "metadata.namespace" => {
            Some(obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string())
        }
        _ => None,
    }
}
