//! The schema metadata the patch engines read: patch strategies and merge keys (strategic merge
//! patch), list and map types (server-side apply).

use k8rs_api::schema::Schema;
use serde_json::Value;

/// A cursor on one node of a kind's schema, as the patch engines need it. Implemented for
/// `k8rs_api::schema::Schema` (built-in kinds) and [`OpenApiMeta`] (OpenAPI v3 schema JSON,
/// e.g. a CRD's `openAPIV3Schema`).
pub trait PatchMeta: Clone {
    /// The schema of declared object field `name`.
    fn property(&self, name: &str) -> Option<Self>;
    /// The schema of map values (`additionalProperties`).
    fn additional_properties(&self) -> Option<Self>;
    /// The schema of array items.
    fn items(&self) -> Option<Self>;
    /// OpenAPI type (`object`, `array`, `string`, …); `None` for free-form nodes.
    fn type_(&self) -> Option<&str>;
    /// `x-kubernetes-patch-strategy`, e.g. `merge`, `retainKeys` or `merge,retainKeys`.
    fn patch_strategy(&self) -> Option<&str>;
    /// `x-kubernetes-patch-merge-key`.
    fn patch_merge_key(&self) -> Option<&str>;
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    fn list_type(&self) -> Option<&str>;
    /// `x-kubernetes-list-map-keys`.
    fn list_map_keys(&self) -> Vec<String>;
    /// `x-kubernetes-map-type`: `granular` or `atomic`.
    fn map_type(&self) -> Option<&str>;
    /// Whether the node accepts arbitrary JSON.
    fn preserves_unknown_fields(&self) -> bool;
    /// The schema's `default`, used for list-map keys a list item leaves out.
    fn default_value(&self) -> Option<Value> {
        None
    }

    /// The schema of member `name` of an object node: a declared property, else the map value
    /// schema.
    fn field(&self, name: &str) -> Option<Self> {
        self.property(name).or_else(|| self.additional_properties())
    }
}

impl PatchMeta for Schema {
    fn property(&self, name: &str) -> Option<Self> {
        Schema::property(self, name)
    }
    fn additional_properties(&self) -> Option<Self> {
        Schema::additional_properties(self)
    }
    fn items(&self) -> Option<Self> {
        Schema::items(self)
    }
    fn type_(&self) -> Option<&str> {
        Schema::type_(self)
    }
    fn patch_strategy(&self) -> Option<&str> {
        Schema::patch_strategy(self)
    }
    fn patch_merge_key(&self) -> Option<&str> {
        Schema::patch_merge_key(self)
    }
    fn list_type(&self) -> Option<&str> {
        Schema::list_type(self)
    }
    fn list_map_keys(&self) -> Vec<String> {
        Schema::list_map_keys(self).to_vec()
    }
    fn map_type(&self) -> Option<&str> {
        Schema::map_type(self)
    }
    fn preserves_unknown_fields(&self) -> bool {
        Schema::preserves_unknown_fields(self)
    }
}

/// [`PatchMeta`] over an OpenAPI v3 schema given as JSON (`properties`, `items`,
/// `additionalProperties` and the `x-kubernetes-*` extensions; no `$ref`).
#[derive(Debug, Clone, Copy)]
pub struct OpenApiMeta<'a> {
    node: &'a Value,
}

/// `additionalProperties: true`: any value, no metadata.
static FREE_FORM: Value = Value::Null;

impl<'a> OpenApiMeta<'a> {
    /// A cursor on the root of `schema`.
    pub fn new(schema: &'a Value) -> OpenApiMeta<'a> {
        OpenApiMeta { node: schema }
    }

    fn str_extension(&self, name: &str) -> Option<&'a str> {
        self.node.get(name).and_then(Value::as_str)
    }
}

impl PatchMeta for OpenApiMeta<'_> {
    fn property(&self, name: &str) -> Option<Self> {
        let node = self.node.get("properties")?.get(name)?;
        Some(OpenApiMeta { node })
    }
    fn additional_properties(&self) -> Option<Self> {
        match self.node.get("additionalProperties")? {
            Value::Bool(true) => Some(OpenApiMeta { node: &FREE_FORM }),
            Value::Object(_) => Some(OpenApiMeta {
                node: &self.node["additionalProperties"],
            }),
            _ => None,
        }
    }
    fn items(&self) -> Option<Self> {
        let node = self.node.get("items")?;
        Some(OpenApiMeta { node })
    }
    fn type_(&self) -> Option<&str> {
        self.str_extension("type")
    }
    fn patch_strategy(&self) -> Option<&str> {
        self.str_extension("x-kubernetes-patch-strategy")
    }
    fn patch_merge_key(&self) -> Option<&str> {
        self.str_extension("x-kubernetes-patch-merge-key")
    }
    fn list_type(&self) -> Option<&str> {
        self.str_extension("x-kubernetes-list-type")
    }
    fn list_map_keys(&self) -> Vec<String> {
        self.node
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
    fn map_type(&self) -> Option<&str> {
        self.str_extension("x-kubernetes-map-type")
    }
    fn preserves_unknown_fields(&self) -> bool {
        self.node
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || (self.node.get("type").is_none() && self.node.get("properties").is_none())
    }
    fn default_value(&self) -> Option<Value> {
        self.node.get("default").cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn open_api_meta_walks_properties_items_and_maps() {
        let schema = json!({
            "type": "object",
            "properties": {
                "containers": {
                    "type": "array",
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}}
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"x-kubernetes-preserve-unknown-fields": true}
            }
        });
        let root = OpenApiMeta::new(&schema);
        let containers = root.field("containers").unwrap();
        assert_eq!(containers.patch_strategy(), Some("merge"));
        assert_eq!(containers.patch_merge_key(), Some("name"));
        assert_eq!(containers.list_type(), Some("map"));
        assert_eq!(containers.list_map_keys(), vec!["name".to_string()]);
        assert_eq!(
            containers.items().unwrap().field("name").unwrap().type_(),
            Some("string")
        );
        let labels = root.field("labels").unwrap();
        assert!(labels.property("app").is_none());
        assert_eq!(labels.field("app").unwrap().type_(), Some("string"));
        assert!(root.field("raw").unwrap().preserves_unknown_fields());
        assert!(!root.preserves_unknown_fields());
        assert!(root.field("missing").is_none());
    }
}
