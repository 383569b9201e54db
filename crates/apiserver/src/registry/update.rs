//! Update (PUT) and patch (PATCH): read, transform, compare-and-swap, retry
//! (upstream's `GuaranteedUpdate`).

use serde_json::Value;

use super::meta::{self, meta_mut};
use super::{Registry, Resource, WriteOptions, WriteResult};
use crate::patch::PatchType;
use crate::status::{ApiError, ApiResult};

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` (when it has a status subresource).
    Main,
    /// `/status`: only `status`.
    Status,
    /// `namespaces/{name}/finalize`: only `spec.finalizers` (upstream's
    /// `finalizeNamespaceStrategy`), the namespace controller's last write.
    Finalize,
}

impl Part {
    fn subresource(self) -> &'static str {
        match self {
            Part::Main => "",
            Part::Status => "status",
            Part::Finalize => "finalize",
        }
    }
}

/// How many times a write is retried when it races another writer.
const MAX_RETRIES: usize = 16;

impl Registry {
    /// Replace an object (PUT).
    pub async fn update(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let (obj, warnings) = self.decode_body(res, body, opts)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        self.check_namespace(res, namespace, &mut obj.clone())?;
        let mut result = self
            .guaranteed_update(res, namespace, name, part, opts, |_old| Ok(obj.clone()))
            .await?;
        result.warnings.extend(warnings);
        Ok(result)
    }

    /// Patch an object (PATCH) with any of the four patch types.
    pub async fn patch(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        (patch_type, patch): (PatchType, &[u8]),
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        if patch_type == PatchType::Apply {
            return self.apply(res, namespace, name, patch, part, opts).await;
        }
        let mut warnings = Vec::new();
        let result = self
            .guaranteed_update(res, namespace, name, part, opts, |old| {
                let patched = crate::patch::patch(res.schema, old, patch, patch_type)
                    .map_err(ApiError::from)?;
                let (obj, w) = self.decode_body(res, patched, opts)?;
                warnings = w;
                Ok(obj)
            })
            .await?;
        Ok(WriteResult { warnings, ..result })
    }

    /// Read the current object, let `transform` produce the new one, validate and write it
    /// with compare-and-swap; retry when another writer got there first, unless the caller
    /// pinned a `resourceVersion`.
    pub(crate) async fn guaranteed_update(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mut transform: impl FnMut(&Value) -> ApiResult<Value>,
    ) -> ApiResult<WriteResult> {
        let info = res.info();
        let key = res.key(namespace, name);
        for _ in 0..MAX_RETRIES {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(info, name));
            };
            let old = res.decode_stored(&kv)?;
            let candidate = transform(&old)?;
            if let Some(rv) = meta::resource_version(&candidate) {
                match rv {
                    Ok(rv) if rv == kv.mod_revision => {}
                    Ok(_) => return Err(ApiError::conflict(info, name)),
                    Err(()) => {
                        return Err(ApiError::bad_request(format!(
                            "invalid resource version: {:?}",
                            meta::meta_str(&candidate, "resourceVersion")
                        )))
                    }
                }
            }
            let mut new = self.merge_for_update(res, part, candidate, &old);
            self.admission.admit_update(self, res, &mut new, &old)?;
            let errors = res.strategy.validate_update(&new, &old);
            if !errors.is_empty() {
                return Err(ApiError::invalid(info, name, &errors));
            }
            if meta::same_content(&new, &old) {
                return Ok(WriteResult {
                    object: old,
                    warnings: vec![],
                    created: false,
                });
            }
            self.record_manager(res, Some(&old), &mut new, opts, part.subresource());
            if opts.dry_run {
                return Ok(WriteResult {
                    object: new,
                    warnings: vec![],
                    created: false,
                });
            }
            if meta::is_deleting(&new)
                && meta::finalizers(&new).is_empty()
                && !has_namespace_finalizers(res, &new)
            {
                // The last finalizer is gone: the deletion completes now.
                return match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok((_, rev)) => {
                        crate::watch_cache::set_rv(&mut new, rev);
                        Ok(WriteResult {
                            object: new,
                            warnings: vec![],
                            created: false,
                        })
                    }
                    Err(k8rs_store::Error::Conflict { .. }) => continue,
                    Err(k8rs_store::Error::NotFound(_)) => Err(ApiError::not_found(info, name)),
                    Err(e) => Err(e.into()),
                };
            }
            if self
                .write_if_unchanged(res, &key, name, &mut new, kv.mod_revision)
                .await?
            {
                return Ok(WriteResult {
                    object: new,
                    warnings: vec![],
                    created: false,
                });
            }
        }
        Err(ApiError::conflict(info, name))
    }

    /// Write `new` over `key` if the key is still at revision `expected`; `Ok(false)` when
    /// another writer got there first (the caller retries). Sets the new resourceVersion.
    pub(crate) async fn write_if_unchanged(
        &self,
        res: &Resource,
        key: &str,
        name: &str,
        new: &mut Value,
        expected: k8rs_store::Revision,
    ) -> ApiResult<bool> {
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let bytes = serde_json::to_vec(&res.to_storage(new)).map_err(ApiError::internal)?;
        match self.store.update(key, bytes.into(), expected).await {
            Ok(rev) => {
                crate::watch_cache::set_rv(new, rev);
                Ok(true)
            }
            Err(k8rs_store::Error::Conflict { .. }) => Ok(false),
            Err(k8rs_store::Error::NotFound(_)) => Err(ApiError::not_found(res.info(), name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Combine the requested object with the stored one: system metadata is kept, the
    /// part not being written is carried over, and `generation` follows spec changes.
    fn merge_for_update(&self, res: &Resource, part: Part, candidate: Value, old: &Value) -> Value {
        let mut new = match part {
            Part::Main => {
                let mut new = candidate;
                res.strategy.prepare_for_update(&mut new, old);
                new
            }
            Part::Status => {
                // Status writes change only `status` (and nothing in metadata but managedFields).
                let mut new = old.clone();
                match candidate.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                new
            }
            Part::Finalize => {
                let mut new = old.clone();
                let finalizers = candidate
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!([]));
                if !new["spec"].is_object() {
                    new["spec"] = serde_json::json!({});
                }
                new["spec"]["finalizers"] = finalizers;
                new
            }
        };
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        let m = meta_mut(&mut new);
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        if res.strategy.tracks_generation()
            && part == Part::Main
            && res.strategy.bumps_generation(&new, old)
        {
            let g = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), Value::from(g + 1));
        }
        new
    }
}

/// Whether `obj` is a Namespace whose `spec.finalizers` still hold it: such a namespace is
/// deleted only once those are gone too (upstream namespace storage's
/// `ShouldDeleteDuringUpdate`).
fn has_namespace_finalizers(res: &Resource, obj: &Value) -> bool {
    let info = res.info();
    info.group.is_empty()
        && info.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}
