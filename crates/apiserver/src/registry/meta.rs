//! `metadata` helpers shared by every write path.

use rand::Rng;
use serde_json::{Map, Value};

/// `metadata` as a mutable map, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// A string field of `metadata` (empty when missing).
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

/// `metadata.namespace`.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

/// `metadata.resourceVersion` parsed; `None` when empty.
pub fn resource_version(obj: &Value) -> Option<Result<i64, ()>> {
    let rv = meta_str(obj, "resourceVersion");
    if rv.is_empty() {
        None
    } else {
        Some(rv.parse().map_err(|_| ()))
    }
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// `metadata.finalizers`.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Now, as upstream serialises `metav1.Time` (RFC 3339, seconds, `Z`).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now with microseconds (`metav1.MicroTime`).
pub fn now_micro() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A time `secs` seconds from now, as `metav1.Time`.
pub fn now_plus(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Upstream's `SimpleNameGenerator`: the prefix plus 5 random characters from an alphabet
/// without vowels and look-alikes.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const MAX_PREFIX: usize = 63 - 5;
    let prefix = if prefix.len() > MAX_PREFIX {
        &prefix[..MAX_PREFIX]
    } else {
        prefix
    };
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Whether two objects differ in anything but `resourceVersion`, `managedFields` and
/// `generation` (an update that changes nothing is not written).
pub fn same_content(a: &Value, b: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
            m.remove("generation");
        }
        v
    }
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_have_prefix_and_five_chars() {
        let n = generate_name("web-");
        assert!(n.starts_with("web-"));
        assert_eq!(n.len(), 9);
        assert!(n[4..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn same_content_ignores_bookkeeping() {
        let a = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"a": 1}});
        let b = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "2", "managedFields": []}, "spec": {"a": 1}});
        let c = serde_json::json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert!(same_content(&a, &b));
        assert!(!same_content(&a, &c));
    }
}
