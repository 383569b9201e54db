//! Quantities in canonical form: upstream decodes every `resource.Quantity` field and writes
//! it back with `Quantity.String()`, so `cpu: 0.5` reads back as `500m` and `1024Mi` as `1Gi`.
//! The fields are found through the kind's schema (every node referring to the Quantity
//! definition), not listed per kind.

use serde_json::Value;

use crate::quantity::Quantity;
use crate::schema::Schema;

/// The schema definition of `resource.Quantity`.
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Rewrite every quantity in `value` (an object described by `schema`) in canonical form;
/// `Err` holds upstream's parse error for the first invalid one.
pub fn canonicalize(schema: Schema, value: &mut Value) -> Result<(), String> {
    if schema.definition() == Some(QUANTITY) {
        // Like `Quantity.UnmarshalJSON`: a JSON string's contents or any other JSON text.
        let text = match &*value {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        };
        *value = Value::String(Quantity::parse(&text)?.canonical());
        return Ok(());
    }
    match value {
        Value::Object(fields) => {
            if let Some(values) = schema.additional_properties() {
                for v in fields.values_mut() {
                    canonicalize(values, v)?;
                }
            } else {
                for (name, v) in fields.iter_mut() {
                    if let Some(field) = schema.property(name) {
                        canonicalize(field, v)?;
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.items() {
                for v in items {
                    canonicalize(item, v)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_anywhere_in_a_kind_are_canonical() {
        let schema = Schema::for_kind("", "v1", "LimitRange").unwrap();
        let mut obj = json!({"spec": {"limits": [{
            "type": "Container",
            "max": {"cpu": 2, "memory": "1024Mi"},
            "defaultRequest": {"cpu": 0.1},
            "maxLimitRequestRatio": {"cpu": "10"}
        }]}});
        canonicalize(schema, &mut obj).unwrap();
        assert_eq!(
            obj["spec"]["limits"][0],
            json!({
                "type": "Container",
                "max": {"cpu": "2", "memory": "1Gi"},
                "defaultRequest": {"cpu": "100m"},
                "maxLimitRequestRatio": {"cpu": "10"}
            })
        );
    }

    #[test]
    fn non_quantity_strings_are_untouched() {
        let schema = Schema::for_kind("", "v1", "ConfigMap").unwrap();
        let mut obj = json!({"data": {"cpu": "0.5"}, "metadata": {"labels": {"a": "1000m"}}});
        let before = obj.clone();
        canonicalize(schema, &mut obj).unwrap();
        assert_eq!(obj, before);
    }
}
