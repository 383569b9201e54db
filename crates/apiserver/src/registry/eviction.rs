//! Evicting a pod (`POST pods/<name>/eviction`, what `kubectl drain` uses), as upstream's
//! `EvictionREST`: a delete that first asks the pod's PodDisruptionBudget, and spends one of
//! its allowed disruptions.

use k8rs_api::selectors::labels::LabelSelector;
use serde_json::{json, Value};

use super::delete::DeleteOptions;
use super::{meta, Registry, Resource, WriteOptions};
use crate::status::{ApiError, ApiResult};

impl Registry {
    /// Evict pod `name`: refuse with `429` when its disruption budget allows no disruption,
    /// otherwise record the disruption on the budget and delete the pod with `options`.
    pub async fn evict(
        &self,
        pods: &Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
        opts: &WriteOptions,
    ) -> ApiResult<()> {
        let pod = self.get(pods, Some(namespace), name, None).await?;
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Pods that are not running (or already going) cost no availability.
        let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::is_deleting(&pod);
        if !exempt {
            if let Some(pdbs) = self
                .resource_by_kind("policy", "PodDisruptionBudget")
                .cloned()
            {
                self.spend_disruption(&pdbs, namespace, &pod, opts.dry_run)
                    .await?;
            }
        }
        self.delete(pods, Some(namespace), name, options, opts)
            .await?;
        Ok(())
    }

    /// Find the budget covering `pod` and take one allowed disruption from it.
    async fn spend_disruption(
        &self,
        pdbs: &Resource,
        namespace: &str,
        pod: &Value,
        dry_run: bool,
    ) -> ApiResult<()> {
        let empty = json!({});
        let labels = pod.pointer("/metadata/labels").unwrap_or(&empty);
        let matching: Vec<_> = self
            .list_objects(pdbs, Some(namespace), &Default::default())
            .await?
            .into_iter()
            .filter(|pdb| {
                pdb.pointer("/spec/selector")
                    .and_then(|s| LabelSelector::from_json(s).ok())
                    .is_some_and(|s| !s.is_empty() && s.matches_json(labels))
            })
            .collect();
        let pdb = match matching.as_slice() {
            [] => return Ok(()),
            [one] => one.clone(),
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let pdb_name = meta::name(&pdb).to_string();
        let pod_name = meta::name(pod).to_string();
        let observed = pdb
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let generation = pdb
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let allowed = pdb
            .pointer("/status/disruptionsAllowed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed < generation || allowed <= 0 {
            let healthy = pdb
                .pointer("/status/currentHealthy")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let desired = pdb
                .pointer("/status/desiredHealthy")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let why = if observed < generation {
                "The disruption budget is still being processed by the server.".to_string()
            } else {
                format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently")
            };
            return Err(ApiError {
                details: Some(json!({"causes": [{"reason": "DisruptionBudget", "message": why}]})),
                ..ApiError::new(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                )
            });
        }
        if dry_run {
            return Ok(());
        }
        // Spend the disruption on the budget (the disruption controller reconciles it).
        let now = meta::now();
        let result = self
            .guaranteed_update(
                pdbs,
                Some(namespace),
                &pdb_name,
                super::Part::Status,
                &WriteOptions::default(),
                |old| {
                    let mut new = old.clone();
                    let allowed = old
                        .pointer("/status/disruptionsAllowed")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if allowed <= 0 {
                        return Err(ApiError::new(
                            429,
                            "TooManyRequests",
                            "Cannot evict pod as it would violate the pod's disruption budget.",
                        ));
                    }
                    new["status"]["disruptionsAllowed"] = json!(allowed - 1);
                    if !new["status"]
                        .get("disruptedPods")
                        .is_some_and(Value::is_object)
                    {
                        new["status"]["disruptedPods"] = json!({});
                    }
                    new["status"]["disruptedPods"][&pod_name] = json!(now);
                    Ok(new)
                },
            )
            .await;
        result.map(|_| ())
    }
}
