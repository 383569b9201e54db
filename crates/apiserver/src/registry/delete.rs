//! Delete (DELETE on an object or a collection): finalizers, graceful deletion and
//! propagation policies as upstream (`BeforeDelete`, `updateForGracefulDeletionAndFinalizers`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::meta::{self, meta_mut};
use super::{Registry, Resource, WriteOptions, WriteResult};
use crate::status::{ApiError, ApiResult};

/// `meta.k8s.io/v1 DeleteOptions`, from the body or the query string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// Seconds before the object is deleted (pods); `0` deletes immediately.
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// Deprecated form of `propagationPolicy: Orphan`.
    pub orphan_dependents: Option<bool>,
    /// Preconditions on uid and resourceVersion.
    #[serde(default)]
    pub preconditions: Preconditions,
    /// `["All"]` for a dry run.
    #[serde(default)]
    pub dry_run: Vec<String>,
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// Required uid.
    pub uid: Option<String>,
    /// Required resourceVersion.
    pub resource_version: Option<String>,
}

const ORPHAN_FINALIZER: &str = "orphan";
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

impl Registry {
    /// Delete one object. Objects with finalizers (or a propagation policy that adds one)
    /// and bound pods with a grace period are only marked for deletion.
    pub async fn delete(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let info = res.info();
        let key = res.key(namespace, name);
        let policy = match (&options.propagation_policy, options.orphan_dependents) {
            (Some(p), _) => {
                if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                    return Err(ApiError::invalid(
                        info,
                        name,
                        &[k8rs_api::FieldError::not_supported(
                            "propagationPolicy",
                            p.as_str(),
                            &["Foreground", "Background", "Orphan", "nil"],
                        )],
                    ));
                }
                Some(p.clone())
            }
            (None, Some(true)) => Some("Orphan".to_string()),
            _ => None,
        };
        for _ in 0..16 {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(info, name));
            };
            let old = res.decode_stored(&kv)?;
            check_preconditions(res, name, &old, &options.preconditions)?;

            let mut new = old.clone();
            let mut finalizers = meta::finalizers(&old);
            match policy.as_deref() {
                Some("Orphan") if !finalizers.iter().any(|f| f == ORPHAN_FINALIZER) => {
                    finalizers.push(ORPHAN_FINALIZER.into())
                }
                Some("Foreground") if !finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) => {
                    finalizers.push(FOREGROUND_FINALIZER.into())
                }
                _ => {}
            }
            let grace = self
                .admission
                .graceful_deletion(res, &old, options.grace_period_seconds);
            let namespace_finalizers = info.group.is_empty()
                && info.kind == "Namespace"
                && old
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());

            if finalizers.is_empty() && grace.is_none() && !namespace_finalizers {
                if opts.dry_run {
                    return Ok(WriteResult {
                        object: old,
                        warnings: vec![],
                        created: false,
                    });
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok((_, rev)) => {
                        let mut obj = old;
                        crate::watch_cache::set_rv(&mut obj, rev);
                        return Ok(WriteResult {
                            object: obj,
                            warnings: vec![],
                            created: false,
                        });
                    }
                    Err(k8rs_store::Error::Conflict { .. }) => continue,
                    Err(k8rs_store::Error::NotFound(_)) => {
                        return Err(ApiError::not_found(info, name))
                    }
                    Err(e) => return Err(e.into()),
                }
            }

            // Mark for deletion: deletionTimestamp, grace period, finalizers.
            {
                let m = meta_mut(&mut new);
                if !meta::is_deleting(&old) {
                    let secs = grace.unwrap_or(0);
                    m.insert("deletionTimestamp".into(), json!(meta::now_plus(secs)));
                    m.insert("deletionGracePeriodSeconds".into(), json!(secs));
                } else if let Some(secs) = grace {
                    // A shorter grace period may only shorten a pending deletion.
                    let current = m
                        .get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX);
                    if secs < current {
                        m.insert("deletionTimestamp".into(), json!(meta::now_plus(secs)));
                        m.insert("deletionGracePeriodSeconds".into(), json!(secs));
                    }
                }
                if !finalizers.is_empty() {
                    m.insert("finalizers".into(), json!(finalizers));
                }
            }
            if namespace_finalizers {
                new["status"]["phase"] = json!("Terminating");
            }
            if meta::same_content(&new, &old) {
                return Ok(WriteResult {
                    object: old,
                    warnings: vec![],
                    created: false,
                });
            }
            if opts.dry_run {
                return Ok(WriteResult {
                    object: new,
                    warnings: vec![],
                    created: false,
                });
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

    /// Delete every object of a collection matching the list options (`deletecollection`).
    pub async fn delete_collection(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        list: &super::ListOptions,
        options: &DeleteOptions,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let items = self.list_objects(res, namespace, list).await?;
        let mut deleted = Vec::new();
        for obj in items {
            let name = meta::name(&obj).to_string();
            let ns = meta::namespace(&obj).to_string();
            let ns = if ns.is_empty() {
                None
            } else {
                Some(ns.as_str())
            };
            match self.delete(res, ns, &name, options, opts).await {
                Ok(r) => deleted.push(r.object),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let info = res.info();
        Ok(json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": self.cache.revision().to_string()},
            "items": deleted,
        }))
    }
}

fn check_preconditions(
    res: &Resource,
    name: &str,
    obj: &Value,
    pre: &Preconditions,
) -> ApiResult<()> {
    if let Some(uid) = &pre.uid {
        let actual = meta::meta_str(obj, "uid");
        if uid != actual {
            return Err(ApiError::conflict_with(
                res.info(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &pre.resource_version {
        let actual = meta::meta_str(obj, "resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict_with(
                res.info(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}
