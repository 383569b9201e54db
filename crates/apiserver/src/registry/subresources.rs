//! The `scale` subresource (`autoscaling/v1 Scale` over `spec.replicas`); `status` is a
//! [`Part`](super::update::Part) of the generic update path.

use serde_json::{json, Value};

use super::update::Part;
use super::{Registry, Resource, WriteOptions, WriteResult};
use crate::patch::PatchType;
use crate::status::{ApiError, ApiResult};

/// The `Scale` view of an object with `spec.replicas`.
pub fn to_scale(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_default();
    let mut scale_meta = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            scale_meta[f] = v.clone();
        }
    }
    let selector = obj
        .pointer("/spec/selector")
        .map(
            |s| match s.get("matchLabels").or(s.get("matchExpressions")) {
                // apps/v1 LabelSelector
                Some(_) => label_selector_string(s),
                // ReplicationController's map selector
                None => s
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            },
        )
        .unwrap_or_default();
    let mut status =
        json!({"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": status,
    })
}

/// `metav1.FormatLabelSelector`: `a=b,c in (d,e)`.
fn label_selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut kv: Vec<_> = m.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        parts.extend(
            kv.into_iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

impl Registry {
    /// GET `<resource>/scale`.
    pub async fn get_scale(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Value> {
        let obj = self.get(res, namespace, name, None).await?;
        Ok(to_scale(&obj))
    }

    /// PUT or PATCH `<resource>/scale`: the new `spec.replicas` is written to the object.
    pub async fn write_scale(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let result: WriteResult = self
            .guaranteed_update(res, namespace, name, Part::Main, opts, |old| {
                let scale = to_scale(old);
                let new_scale = match &change {
                    ScaleChange::Replace(body) => {
                        if let Some(rv) = body
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                        {
                            if !rv.is_empty()
                                && Some(rv)
                                    != scale
                                        .pointer("/metadata/resourceVersion")
                                        .and_then(Value::as_str)
                            {
                                return Err(ApiError::conflict(res.info(), name));
                            }
                        }
                        (*body).clone()
                    }
                    ScaleChange::Patch(patch, kind) => {
                        crate::patch::patch(None, &scale, patch, *kind).map_err(ApiError::from)?
                    }
                };
                let replicas = new_scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        &SCALE_INFO,
                        name,
                        &[k8rs_api::FieldError::invalid(
                            "spec.replicas",
                            replicas,
                            "must be greater than or equal to 0",
                        )],
                    ));
                }
                let mut obj = old.clone();
                obj["spec"]["replicas"] = json!(replicas);
                Ok(obj)
            })
            .await?;
        Ok(to_scale(&result.object))
    }
}

/// A change to a Scale: a whole new Scale (PUT) or a patch of it.
pub enum ScaleChange<'a> {
    /// PUT body.
    Replace(&'a Value),
    /// PATCH body and type (apply is not supported on scale).
    Patch(&'a [u8], PatchType),
}

static SCALE_INFO: k8rs_api::ResourceInfo = k8rs_api::ResourceInfo {
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    plural: "scales",
    singular: "scale",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &[],
    subresources: k8rs_api::Subresources {
        status: false,
        scale: false,
        extra: &[],
    },
};
