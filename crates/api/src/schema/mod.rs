//! Upstream OpenAPI schemas (generated, committed) and what is derived from them: OpenAPI v3
//! documents, unknown-field detection, strategic-merge and server-side-apply list metadata.
//!
//! The data is `definitions.json.gz`, written by `generate.py` (next to this file) from the
//! upstream v1.33 definitions: every type reachable from the kinds k8rs serves, in the shape
//! of upstream's `/openapi/v3` documents (`$ref`s are `#/components/schemas/<name>`, wrapped in
//! `allOf` when the node also carries a description).
//!
//! A [`Schema`] is a cursor on one node of a kind's schema, walked by field name, array item
//! or map value; `$ref`s and single-element `allOf` wrappers are resolved transparently.

use std::collections::HashMap;
use std::io::Read;

use once_cell::sync::Lazy;
use serde::Deserialize;
use serde_json::{Map, Value};

mod unknown_fields;

pub use unknown_fields::unknown_fields;

/// The generated definitions (gzip-compressed JSON object: definition name → schema).
static DEFINITIONS_GZ: &[u8] = include_bytes!("definitions.json.gz");

/// Prefix of every `$ref` in the definitions.
pub const REF_PREFIX: &str = "#/components/schemas/";

fn definitions_json() -> Vec<u8> {
    let mut out = Vec::with_capacity(DEFINITIONS_GZ.len() * 6);
    flate2::read::GzDecoder::new(DEFINITIONS_GZ)
        .read_to_end(&mut out)
        .expect("definitions.json.gz is a valid gzip stream");
    out
}

static DEFINITIONS: Lazy<Map<String, Value>> = Lazy::new(|| {
    serde_json::from_slice(&definitions_json()).expect("definitions.json.gz holds a JSON object")
});

/// The upstream definitions (name such as `io.k8s.api.apps.v1.Deployment` → OpenAPI v3 schema),
/// with `$ref`s already in `#/components/schemas/<name>` form: the source of OpenAPI documents.
pub fn definitions() -> &'static Map<String, Value> {
    &DEFINITIONS
}

/// The part of an OpenAPI schema node the cursor needs (descriptions and the rest stay in
/// [`definitions`]).
#[derive(Deserialize, Default)]
struct Node {
    #[serde(rename = "$ref")]
    ref_: Option<String>,
    #[serde(rename = "allOf", default)]
    all_of: Vec<Node>,
    #[serde(rename = "type")]
    type_: Option<String>,
    format: Option<String>,
    #[serde(default)]
    properties: HashMap<String, Node>,
    items: Option<Box<Node>>,
    #[serde(rename = "additionalProperties")]
    additional_properties: Option<AdditionalProperties>,
    #[serde(rename = "x-kubernetes-patch-strategy")]
    patch_strategy: Option<String>,
    #[serde(rename = "x-kubernetes-patch-merge-key")]
    patch_merge_key: Option<String>,
    #[serde(rename = "x-kubernetes-list-type")]
    list_type: Option<String>,
    #[serde(rename = "x-kubernetes-list-map-keys", default)]
    list_map_keys: Vec<String>,
    #[serde(rename = "x-kubernetes-map-type")]
    map_type: Option<String>,
    #[serde(rename = "x-kubernetes-preserve-unknown-fields", default)]
    preserve_unknown_fields: bool,
    #[serde(rename = "x-kubernetes-group-version-kind", default)]
    group_version_kind: Vec<GroupVersionKind>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AdditionalProperties {
    Allowed(#[allow(dead_code)] bool),
    Schema(Box<Node>),
}

#[derive(Deserialize)]
struct GroupVersionKind {
    group: String,
    version: String,
    kind: String,
}

static NODES: Lazy<HashMap<String, Node>> = Lazy::new(|| {
    serde_json::from_slice(&definitions_json()).expect("definitions.json.gz matches the schema")
});

/// The definition name (`io.k8s.api.apps.v1.Deployment`) declaring `x-kubernetes-group-version-kind`
/// `group/version, Kind=kind`; `None` if no definition does.
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    static NAMES: Lazy<HashMap<(&'static str, &'static str, &'static str), &'static str>> =
        Lazy::new(|| {
            let mut names = HashMap::new();
            for (name, node) in NODES.iter() {
                for gvk in &node.group_version_kind {
                    names.insert(
                        (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()),
                        name.as_str(),
                    );
                }
            }
            names
        });
    NAMES.get(&(group, version, kind)).copied()
}

/// Follow `$ref`s and single-element `allOf` wrappers to the node that holds the structure.
fn resolve(mut node: &'static Node) -> &'static Node {
    // Bounded: a definition that only refers to itself would otherwise loop forever.
    for _ in 0..16 {
        if let Some(target) = node.ref_.as_deref() {
            match NODES.get(target.strip_prefix(REF_PREFIX).unwrap_or(target)) {
                Some(next) => node = next,
                None => return node,
            }
        } else if node.all_of.len() == 1 && node.properties.is_empty() && node.type_.is_none() {
            node = &node.all_of[0];
        } else {
            return node;
        }
    }
    node
}

/// A cursor on one schema node (object, array, map, or scalar) of some kind's definition.
#[derive(Clone, Copy)]
pub struct Schema {
    /// The node as written where it is used (a property, items, map values): it carries the
    /// list/patch extensions of that use.
    outer: &'static Node,
    /// The node with `$ref`/`allOf` resolved: it carries the structure.
    inner: &'static Node,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut properties: Vec<&str> = self.inner.properties.keys().map(String::as_str).collect();
        properties.sort_unstable();
        f.debug_struct("Schema")
            .field("type", &self.type_())
            .field("properties", &properties)
            .finish()
    }
}

impl Schema {
    fn at(node: &'static Node) -> Schema {
        Schema {
            outer: node,
            inner: resolve(node),
        }
    }

    /// The root schema of a kind, e.g. `("apps", "v1", "Deployment")`; `None` if unknown.
    pub fn for_kind(group: &str, version: &str, kind: &str) -> Option<Schema> {
        definition_name(group, version, kind).and_then(Schema::for_definition)
    }

    /// The schema of definition `name`, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub fn for_definition(name: &str) -> Option<Schema> {
        NODES.get(name).map(Schema::at)
    }

    /// The definition this node refers to, e.g. `io.k8s.apimachinery.pkg.api.resource.Quantity`
    /// for a container's `resources.limits` values; `None` for inline schemas.
    pub fn definition(&self) -> Option<&'static str> {
        let mut node = self.outer;
        // Bounded like `resolve`: single-element `allOf` wrappers around a `$ref`.
        for _ in 0..16 {
            if let Some(target) = node.ref_.as_deref() {
                return Some(target.strip_prefix(REF_PREFIX).unwrap_or(target));
            }
            match node.all_of.as_slice() {
                [only] => node = only,
                _ => return None,
            }
        }
        None
    }

    /// The schema of object field `name` (`None` if not declared).
    pub fn property(&self, name: &str) -> Option<Schema> {
        self.inner.properties.get(name).map(Schema::at)
    }

    /// The schema of array items.
    pub fn items(&self) -> Option<Schema> {
        self.inner.items.as_deref().map(Schema::at)
    }

    /// The schema of map values (`additionalProperties`), for maps such as labels.
    pub fn additional_properties(&self) -> Option<Schema> {
        match &self.inner.additional_properties {
            Some(AdditionalProperties::Schema(node)) => Some(Schema::at(node)),
            _ => None,
        }
    }

    /// OpenAPI type: `object`, `array`, `string`, `integer`, `number`, `boolean`; `None` for
    /// free-form or int-or-string nodes.
    pub fn type_(&self) -> Option<&'static str> {
        if self.inner.format.as_deref() == Some("int-or-string") || self.preserves_unknown_fields()
        {
            return None;
        }
        self.inner.type_.as_deref()
    }

    /// Extension lookup: the use site first, then the definition it refers to.
    fn extension(&self, get: fn(&'static Node) -> Option<&'static String>) -> Option<&'static str> {
        get(self.outer)
            .or_else(|| get(self.inner))
            .map(String::as_str)
    }

    /// `x-kubernetes-patch-strategy`: e.g. `merge`, `retainKeys`, `merge,retainKeys`, `replace`.
    pub fn patch_strategy(&self) -> Option<&'static str> {
        self.extension(|n| n.patch_strategy.as_ref())
    }

    /// `x-kubernetes-patch-merge-key`, e.g. `name` for containers.
    pub fn patch_merge_key(&self) -> Option<&'static str> {
        self.extension(|n| n.patch_merge_key.as_ref())
    }

    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub fn list_type(&self) -> Option<&'static str> {
        self.extension(|n| n.list_type.as_ref())
    }

    /// `x-kubernetes-list-map-keys` for `map` lists.
    pub fn list_map_keys(&self) -> &'static [String] {
        if self.outer.list_map_keys.is_empty() {
            &self.inner.list_map_keys
        } else {
            &self.outer.list_map_keys
        }
    }

    /// `x-kubernetes-map-type`: `granular` or `atomic`.
    pub fn map_type(&self) -> Option<&'static str> {
        self.extension(|n| n.map_type.as_ref())
    }

    /// Whether the node accepts any JSON (e.g. `x-kubernetes-preserve-unknown-fields`,
    /// RawExtension): no unknown-field detection below it.
    pub fn preserves_unknown_fields(&self) -> bool {
        let n = self.inner;
        if self.outer.preserve_unknown_fields || n.preserve_unknown_fields {
            return true;
        }
        // An object without declared fields, map values or items holds arbitrary JSON
        // (RawExtension, FieldsV1, apiextensions JSON); so does a node without any type.
        matches!(n.type_.as_deref(), None | Some("object"))
            && n.format.as_deref() != Some("int-or-string")
            && n.properties.is_empty()
            && n.additional_properties.is_none()
            && n.items.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Schema {
        Schema::for_kind("apps", "v1", "Deployment").expect("Deployment schema")
    }

    fn pod_spec_of_deployment() -> Schema {
        deployment()
            .property("spec")
            .and_then(|s| s.property("template"))
            .and_then(|s| s.property("spec"))
            .expect("spec.template.spec")
    }

    #[test]
    fn containers_are_a_map_list_merged_by_name() {
        let containers = pod_spec_of_deployment().property("containers").unwrap();
        assert_eq!(containers.type_(), Some("array"));
        assert_eq!(containers.patch_strategy(), Some("merge"));
        assert_eq!(containers.patch_merge_key(), Some("name"));
        assert_eq!(containers.list_type(), Some("map"));
        assert_eq!(containers.list_map_keys(), ["name".to_string()]);
        let container = containers.items().unwrap();
        assert_eq!(container.type_(), Some("object"));
        assert_eq!(
            container.property("image").and_then(|s| s.type_()),
            Some("string")
        );
        assert!(container.property("imagee").is_none());
        // Ports are a map list keyed by containerPort and protocol.
        let ports = container.property("ports").unwrap();
        assert_eq!(ports.patch_merge_key(), Some("containerPort"));
        assert_eq!(
            ports.list_map_keys(),
            ["containerPort".to_string(), "protocol".to_string()]
        );
    }

    #[test]
    fn labels_are_a_granular_string_map() {
        let labels = deployment()
            .property("metadata")
            .and_then(|m| m.property("labels"))
            .unwrap();
        assert_eq!(labels.type_(), Some("object"));
        assert_eq!(labels.map_type(), None);
        assert!(!labels.preserves_unknown_fields());
        let value = labels.additional_properties().unwrap();
        assert_eq!(value.type_(), Some("string"));
        // The deployment selector is atomic on its definition (LabelSelector).
        let selector = deployment()
            .property("spec")
            .and_then(|s| s.property("selector"))
            .unwrap();
        assert_eq!(selector.map_type(), Some("atomic"));
    }

    #[test]
    fn free_form_and_int_or_string_nodes() {
        let port = Schema::for_kind("", "v1", "Service")
            .and_then(|s| s.property("spec"))
            .and_then(|s| s.property("ports"))
            .and_then(|s| s.items())
            .and_then(|s| s.property("targetPort"))
            .unwrap();
        assert_eq!(port.type_(), None);
        assert!(!port.preserves_unknown_fields());
        let fields_v1 = deployment()
            .property("metadata")
            .and_then(|m| m.property("managedFields"))
            .and_then(|m| m.items())
            .and_then(|m| m.property("fieldsV1"))
            .unwrap();
        assert!(fields_v1.preserves_unknown_fields());
        assert_eq!(fields_v1.type_(), None);
    }

    #[test]
    fn quantity_nodes_name_their_definition() {
        let quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity";
        let container = pod_spec_of_deployment()
            .property("containers")
            .and_then(|c| c.items())
            .unwrap();
        let limit = container
            .property("resources")
            .and_then(|r| r.property("limits"))
            .and_then(|l| l.additional_properties())
            .unwrap();
        assert_eq!(limit.definition(), Some(quantity));
        // Wrapped in `allOf` because the use site carries a description.
        let size_limit = Schema::for_definition("io.k8s.api.core.v1.EmptyDirVolumeSource")
            .and_then(|e| e.property("sizeLimit"))
            .unwrap();
        assert_eq!(size_limit.definition(), Some(quantity));
        assert_eq!(container.property("image").unwrap().definition(), None);
    }

    #[test]
    fn kinds_and_definitions_resolve() {
        assert!(Schema::for_kind("", "v1", "Pod").is_some());
        assert!(Schema::for_kind("autoscaling", "v1", "Scale").is_some());
        assert!(Schema::for_kind("", "v1", "Status").is_some());
        assert!(Schema::for_kind("apps", "v1", "NoSuchKind").is_none());
        assert_eq!(
            definition_name("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        let deployment = &definitions()["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["description"],
            "Deployment enables declarative updates for Pods and ReplicaSets."
        );
        assert!(definitions().contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"));
    }
}
