//! Upstream OpenAPI schemas (generated, committed) and what is derived from them: OpenAPI v3
//! documents, unknown-field detection, strategic-merge and server-side-apply list metadata.
//!
//! INTERFACE (stable; the schema work fills in the bodies): a [`Schema`] is a cursor on one
//! node of a kind's schema, walked by field name, array item or map value.

/// A cursor on one schema node (object, array, map, or scalar) of some kind's definition.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    _private: (),
}

impl Schema {
    /// The root schema of a kind, e.g. `("apps", "v1", "Deployment")`; `None` if unknown.
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<Schema> {
        let _ = (group, version, kind);
        None
    }
    /// The schema of object field `name` (`None` if not declared).
    pub fn property(&self, name: &str) -> Option<Schema> {
        let _ = name;
        None
    }
    /// The schema of array items.
    pub fn items(&self) -> Option<Schema> {
        None
    }
    /// The schema of map values (`additionalProperties`), for maps such as labels.
    pub fn additional_properties(&self) -> Option<Schema> {
        None
    }
    /// OpenAPI type: `object`, `array`, `string`, `integer`, `number`, `boolean`; `None` for
    /// free-form or int-or-string nodes.
    pub fn type_(&self) -> Option<&'static str> {
        None
    }
    /// `x-kubernetes-patch-strategy`: e.g. `merge`, `retainKeys`, `merge,retainKeys`, `replace`.
    pub fn patch_strategy(&self) -> Option<&'static str> {
        None
    }
    /// `x-kubernetes-patch-merge-key`, e.g. `name` for containers.
    pub fn patch_merge_key(&self) -> Option<&'static str> {
        None
    }
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub fn list_type(&self) -> Option<&'static str> {
        None
    }
    /// `x-kubernetes-list-map-keys` for `map` lists.
    pub fn list_map_keys(&self) -> &'static [String] {
        &[]
    }
    /// `x-kubernetes-map-type`: `granular` or `atomic`.
    pub fn map_type(&self) -> Option<&'static str> {
        None
    }
    /// Whether the node accepts any JSON (e.g. `x-kubernetes-preserve-unknown-fields`,
    /// RawExtension): no unknown-field detection below it.
    pub fn preserves_unknown_fields(&self) -> bool {
        true
    }
}
