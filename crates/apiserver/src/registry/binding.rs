//! Binding a pod to a node (`POST pods/<name>/binding` and `POST bindings`), as upstream's
//! `BindingREST`: the scheduler's one write. It sets `spec.nodeName`, which no ordinary
//! update may change, and the `PodScheduled` condition, straight through the store.

use serde_json::{json, Value};

use super::meta;
use super::{Registry, Resource};
use crate::status::{ApiError, ApiResult};

/// `v1 Binding`'s discovery facts, for its `422 Invalid` messages.
static BINDING_INFO: k8rs_api::ResourceInfo = k8rs_api::ResourceInfo {
    group: "",
    version: "v1",
    kind: "Binding",
    plural: "bindings",
    singular: "binding",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &["create"],
    subresources: k8rs_api::Subresources {
        status: false,
        scale: false,
        extra: &[],
    },
};

/// Upstream reports binding conflicts on the `pods/binding` resource.
static PODS_BINDING_INFO: k8rs_api::ResourceInfo = k8rs_api::ResourceInfo {
    plural: "pods/binding",
    ..BINDING_INFO
};

impl Registry {
    /// Assign pod `name` in `namespace` to the node `binding.target` names. `dry_run` checks
    /// everything but writes nothing.
    pub async fn bind(
        &self,
        pods: &Resource,
        namespace: &str,
        name: &str,
        binding: &Value,
        dry_run: bool,
    ) -> ApiResult<()> {
        let target_kind = binding
            .pointer("/target/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut errors = Vec::new();
        if !target_kind.is_empty() && target_kind != "Node" {
            errors.push(k8rs_api::FieldError::not_supported(
                "target.kind",
                target_kind,
                &["Node", "<empty>"],
            ));
        }
        if node.is_empty() {
            errors.push(k8rs_api::FieldError::required("target.name", ""));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(&BINDING_INFO, name, &errors));
        }
        let annotations = binding
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned();
        let key = pods.key(Some(namespace), name);
        for _ in 0..16 {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(pods.info(), name));
            };
            let mut pod = pods.decode_stored(&kv)?;
            if meta::is_deleting(&pod) {
                return Err(ApiError::conflict_with(
                    &PODS_BINDING_INFO,
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let current = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict_with(
                    &PODS_BINDING_INFO,
                    name,
                    &format!("pod {name} is already assigned to node {current:?}"),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            if let Some(a) = &annotations {
                let m = meta::meta_mut(&mut pod);
                let existing = m.entry("annotations").or_insert_with(|| json!({}));
                for (k, v) in a {
                    existing[k] = v.clone();
                }
            }
            set_scheduled_condition(&mut pod);
            if dry_run {
                return Ok(());
            }
            if self
                .write_if_unchanged(pods, &key, name, &mut pod, kv.mod_revision)
                .await?
            {
                return Ok(());
            }
        }
        Err(ApiError::conflict(pods.info(), name))
    }
}

/// `PodScheduled=True`, keeping the transition time when it already was true.
fn set_scheduled_condition(pod: &mut Value) {
    let now = meta::now();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions = pod["status"]
        .as_object_mut()
        .expect("status is an object")
        .entry("conditions")
        .or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let new = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => {}
        Some(c) => *c = new,
        None => list.push(new),
    }
}
