//! The resource catalogue: every built-in resource served, each with its strategy.
//!
//! Every resource uses the one data-driven [`ResourceStrategy`]: discovery facts, the table
//! printer, the selectable fields, and the few per-kind create/update rules upstream's
//! `strategy.go` files apply (initial status, generation tracking, namespace finalizers).
//! One file per API group lists its resources.

use std::sync::Arc;

use chrono::Utc;
use once_cell::sync::Lazy;
use serde_json::Value;

use crate::printers::Printer;
use crate::selectors::fields::common_field;
use crate::{Column, ResourceInfo, Strategy, Subresources};

pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod events;
pub mod networking;
pub mod node;
pub mod policy;
pub mod qos;
pub mod rbac;
pub mod scheduling;
pub mod storage;

/// Verbs of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every built-in resource, groups in upstream's discovery order (core first; within a group
/// the preferred version first; resources alphabetical within a group version).
pub fn all() -> Vec<Arc<dyn Strategy>> {
    CATALOGUE.clone()
}

/// Built once: strategies are immutable and shared.
static CATALOGUE: Lazy<Vec<Arc<dyn Strategy>>> = Lazy::new(|| {
    [
        core::resources(),
        apps::resources(),
        events::resources(),
        autoscaling::resources(),
        batch::resources(),
        networking::resources(),
        policy::resources(),
        rbac::resources(),
        storage::resources(),
        scheduling::resources(),
        coordination::resources(),
        node::resources(),
        discovery::resources(),
    ]
    .into_iter()
    .flatten()
    .map(|r| Arc::new(r) as Arc<dyn Strategy>)
    .collect()
});

/// What happens to `status` on create when the resource has a status subresource.
#[derive(Clone, Copy)]
pub enum CreateStatus {
    /// Replaced by the kind's initial status (upstream `obj.Status = …Status{…}`), computed
    /// from the object; the value is what upstream's encoder writes for it.
    Reset(fn(&Value) -> Value),
    /// Kept as sent (nodes: the kubelet registers a node with its status).
    Keep,
}

/// The strategy of one resource, described by data.
pub struct ResourceStrategy {
    info: ResourceInfo,
    printer: &'static Printer,
    fields: fn(&Value, &str) -> Option<String>,
    generation: bool,
    create_status: CreateStatus,
    create_hook: Option<fn(&mut Value)>,
    update_hook: Option<fn(&mut Value, &Value)>,
    generation_on_annotations: bool,
    deprecation: Option<&'static str>,
}

impl ResourceStrategy {
    /// A resource with all verbs, no short names, categories or subresources, and only
    /// `metadata.name`/`metadata.namespace` selectable.
    pub fn new(
        group_version: (&'static str, &'static str),
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
        printer: &'static Printer,
    ) -> Self {
        Self {
            info: ResourceInfo {
                group: group_version.0,
                version: group_version.1,
                kind,
                plural,
                singular: singular_of(kind),
                namespaced,
                short_names: &[],
                categories: &[],
                verbs: ALL_VERBS,
                subresources: Subresources::default(),
            },
            printer,
            fields: common_field,
            generation: false,
            create_status: CreateStatus::Reset(|_| Value::Object(Default::default())),
            create_hook: None,
            update_hook: None,
            generation_on_annotations: false,
            deprecation: None,
        }
    }

    /// Short names (`kubectl get po`).
    pub fn short(mut self, names: &'static [&'static str]) -> Self {
        self.info.short_names = names;
        self
    }

    /// In the `all` category (`kubectl get all`).
    pub fn in_all(mut self) -> Self {
        self.info.categories = &["all"];
        self
    }

    /// Verbs other than the full set.
    pub fn verbs(mut self, verbs: &'static [&'static str]) -> Self {
        self.info.verbs = verbs;
        self
    }

    /// Has a `/status` subresource; `create` says what create does with a sent status.
    pub fn status(mut self, create: CreateStatus) -> Self {
        self.info.subresources.status = true;
        self.create_status = create;
        self
    }

    /// Has a `/scale` subresource.
    pub fn scale(mut self) -> Self {
        self.info.subresources.scale = true;
        self
    }

    /// Resource-specific subresources served by dedicated handlers.
    pub fn extra(mut self, names: &'static [&'static str]) -> Self {
        self.info.subresources.extra = names;
        self
    }

    /// The kind's field-selector fields.
    pub fn fields(mut self, fields: fn(&Value, &str) -> Option<String>) -> Self {
        self.fields = fields;
        self
    }

    /// `metadata.generation` is set on create and bumped on spec changes.
    pub fn generation(mut self) -> Self {
        self.generation = true;
        self
    }

    /// Annotation changes bump the generation too (deployments: annotations are copied to
    /// their replica sets).
    pub fn generation_on_annotations(mut self) -> Self {
        self.generation_on_annotations = true;
        self
    }

    /// Deprecated in this version: every request gets this warning.
    pub fn deprecated(mut self, warning: &'static str) -> Self {
        self.deprecation = Some(warning);
        self
    }

    /// Extra create-time rule (after the status rule).
    pub fn on_create(mut self, hook: fn(&mut Value)) -> Self {
        self.create_hook = Some(hook);
        self
    }

    /// Extra update-time rule (after status is carried over).
    pub fn on_update(mut self, hook: fn(&mut Value, &Value)) -> Self {
        self.update_hook = Some(hook);
        self
    }
}

/// Upstream's singular name is the lowercased kind.
fn singular_of(kind: &'static str) -> &'static str {
    // Leaked once per resource: the catalogue is built once (see `all`).
    Box::leak(kind.to_lowercase().into_boxed_str())
}

impl Strategy for ResourceStrategy {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.info.subresources.status {
            if let (CreateStatus::Reset(initial), Some(_)) = (self.create_status, obj.as_object()) {
                let status = initial(obj);
                obj["status"] = status;
            }
        }
        if let Some(hook) = self.create_hook {
            hook(obj);
        }
    }

    fn prepare_for_update(&self, obj: &mut Value, old: &Value) {
        if self.info.subresources.status {
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
        if let Some(hook) = self.update_hook {
            hook(obj, old);
        }
    }

    fn tracks_generation(&self) -> bool {
        self.generation
    }

    fn deprecation_warning(&self) -> Option<&'static str> {
        self.deprecation
    }

    fn bumps_generation(&self, new: &Value, old: &Value) -> bool {
        let annotations = |o: &Value| o.pointer("/metadata/annotations").cloned();
        crate::strategy::spec_changed(new, old)
            || (self.generation_on_annotations && annotations(new) != annotations(old))
    }

    fn columns(&self) -> &'static [Column] {
        self.printer.columns
    }

    fn row(&self, obj: &Value) -> Vec<Value> {
        (self.printer.row)(obj, Utc::now())
    }

    fn field(&self, obj: &Value, path: &str) -> Option<String> {
        (self.fields)(obj, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    #[test]
    fn plurals_are_unique_per_group_version() {
        let mut seen = HashSet::new();
        for s in all() {
            let i = s.info();
            assert!(
                seen.insert((i.group, i.version, i.plural)),
                "duplicate {}/{} {}",
                i.group,
                i.version,
                i.plural
            );
            assert_eq!(i.singular, i.kind.to_lowercase());
            assert!(!i.verbs.is_empty());
        }
        assert_eq!(seen.len(), 43, "every resource of the catalogue brief");
    }

    #[test]
    fn rows_match_columns_on_minimal_objects() {
        let minimal = json!({"metadata": {"name": "x", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        for s in all() {
            let cols = s.columns();
            assert_eq!(
                cols[0].name,
                if s.info().plural == "events" {
                    "Last Seen"
                } else {
                    "Name"
                }
            );
            assert_eq!(s.row(&minimal).len(), cols.len(), "{}", s.info().plural);
            assert_eq!(s.row(&json!({})).len(), cols.len(), "{}", s.info().plural);
        }
    }

    #[test]
    fn discovery_facts() {
        let find = |g: &str, v: &str, p: &str| {
            all()
                .into_iter()
                .find(|s| s.info().group == g && s.info().version == v && s.info().plural == p)
                .unwrap()
        };
        let pods = find("", "v1", "pods");
        assert_eq!(pods.info().short_names, ["po"]);
        assert_eq!(pods.info().categories, ["all"]);
        assert!(pods.info().subresources.status);
        assert!(pods.info().subresources.extra.contains(&"exec"));
        let ns = find("", "v1", "namespaces");
        assert!(!ns.info().namespaced);
        assert!(!ns.info().verbs.contains(&"deletecollection"));
        assert_eq!(find("", "v1", "bindings").info().verbs, ["create"]);
        let deploy = find("apps", "v1", "deployments");
        assert!(deploy.info().subresources.scale && deploy.tracks_generation());
        assert_eq!(deploy.info().short_names, ["deploy"]);
        assert!(!find("", "v1", "configmaps").tracks_generation());
        assert_eq!(
            find("autoscaling", "v2", "horizontalpodautoscalers")
                .info()
                .short_names,
            ["hpa"]
        );
        assert_eq!(
            find("events.k8s.io", "v1", "events").info().short_names,
            ["ev"]
        );
    }

    #[test]
    fn status_is_reset_on_create_and_kept_on_update() {
        let find = |p: &str| all().into_iter().find(|s| s.info().plural == p).unwrap();
        let mut d = json!({"spec": {}, "status": {"replicas": 5}});
        find("replicasets").prepare_for_create(&mut d);
        assert_eq!(d["status"], json!({"replicas": 0}));
        let old = json!({"spec": {}, "status": {"replicas": 2}});
        let mut new = json!({"spec": {"x": 1}, "status": {"replicas": 9}});
        find("replicasets").prepare_for_update(&mut new, &old);
        assert_eq!(new["status"], json!({"replicas": 2}));

        let mut node = json!({"status": {"capacity": {"cpu": "2"}}});
        find("nodes").prepare_for_create(&mut node);
        assert_eq!(node["status"]["capacity"]["cpu"], "2");
    }
}
