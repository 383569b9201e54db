//! The per-resource strategy: everything the generic registry in `k8rs-apiserver` needs to
//! know about one resource (upstream: `pkg/registry/<group>/<resource>/strategy.go`).

use serde_json::Value;

use crate::FieldError;

/// Static facts about a resource, as served by discovery.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// API group; `""` for the core group.
    pub group: &'static str,
    /// Version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `deployments` (also the store key segment).
    pub plural: &'static str,
    /// Singular name, e.g. `deployment`.
    pub singular: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names, e.g. `["deploy"]`.
    pub short_names: &'static [&'static str],
    /// Categories, e.g. `["all"]`.
    pub categories: &'static [&'static str],
    /// Verbs the main resource supports.
    pub verbs: &'static [&'static str],
    /// Which generic subresources exist.
    pub subresources: Subresources,
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: the name used in error messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`: the kind used in `422 Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The generic subresources a resource has (resource-specific ones such as `pods/log` are
/// served by dedicated handlers and listed in `extra`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Subresources {
    /// `<resource>/status` (get, patch, update), with spec/status split on writes.
    pub status: bool,
    /// `<resource>/scale` (autoscaling/v1 Scale), mapping to `spec.replicas`.
    pub scale: bool,
    /// Other subresource names served by dedicated handlers (e.g. `log`, `exec`, `eviction`).
    pub extra: &'static [&'static str],
}

/// A table column definition (`meta.k8s.io/v1 Table` `columnDefinitions`).
#[derive(Debug, Clone)]
pub struct Column {
    /// Header, e.g. `Name`.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub type_: &'static str,
    /// OpenAPI format, e.g. `name`, or `""`.
    pub format: &'static str,
    /// Description.
    pub description: &'static str,
    /// 0 = default columns, 1 = `-o wide` only.
    pub priority: i32,
}

/// What the generic registry asks of one resource. Implementations are small: the shared
/// mechanisms (metadata, revisions, watch, patches) live in the registry.
pub trait Strategy: Send + Sync + 'static {
    /// Discovery facts.
    fn info(&self) -> &ResourceInfo;

    /// Decode the object as its typed form (dropping unknown fields, as upstream's decoder
    /// does), apply upstream defaulting, and encode it back. `Err` is a decode error message
    /// in upstream's wording (a `400 BadRequest`).
    fn decode_and_default(&self, obj: Value) -> Result<Value, String> {
        crate::defaults::decode_and_default(self.info(), obj)
    }

    /// Clear fields the user may not set on create (e.g. `status` for resources with a status
    /// subresource) and set initial values. Called before validation.
    fn prepare_for_create(&self, obj: &mut Value) {
        if self.info().subresources.status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }

    /// Carry over from `old` what a main-resource update may not change (e.g. `status`).
    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if self.info().subresources.status {
            if let Some(m) = obj.as_object_mut() {
                match old.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
        }
    }

    /// Whether `metadata.generation` is set to 1 on create and bumped when the spec changes.
    fn tracks_generation(&self) -> bool {
        self.info().subresources.status
    }

    /// Whether an update from `old` to `new` bumps `metadata.generation` (only asked when
    /// [`tracks_generation`](Strategy::tracks_generation)): any change outside `metadata`
    /// and `status`.
    fn bumps_generation(&self, new: &Value, old: &Value) -> bool {
        spec_changed(new, old)
    }

    /// The deprecation warning upstream sends (as a `Warning` header) on every request to
    /// this resource version, e.g. core/v1 Endpoints in 1.33.
    fn deprecation_warning(&self) -> Option<&'static str> {
        None
    }

    /// Validation on create, in upstream's wording (`422 Invalid` when non-empty).
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        crate::validation::validate(self.info(), obj, None)
    }

    /// Validation on update, including immutable fields.
    fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        crate::validation::validate(self.info(), obj, Some(old))
    }

    /// Table columns (upstream printer column set).
    fn columns(&self) -> &'static [Column];

    /// One table row's cells, in `columns()` order, `Name` first and `Age` computed against
    /// the current time, as upstream's printers do.
    fn row(&self, obj: &Value) -> Vec<Value>;

    /// The value of a field-selector field (`metadata.name`, `metadata.namespace` and the
    /// kind's extras such as `spec.nodeName`); `None` if the field is not selectable.
    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        crate::selectors::fields::common_field(obj, path)
    }
}

/// Whether anything outside `metadata` and `status` differs: upstream's "spec changed".
pub fn spec_changed(new: &Value, old: &Value) -> bool {
    fn spec_fields(obj: &Value) -> Vec<(&String, &Value)> {
        obj.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    spec_fields(new) != spec_fields(old)
}
