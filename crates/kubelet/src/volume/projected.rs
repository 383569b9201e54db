//! `kubernetes.io/projected` (upstream `pkg/volume/projected`): ConfigMaps, Secrets, the
//! downward API and ServiceAccount tokens merged into one memory-backed directory (the
//! `kube-api-access-*` volume at `/var/run/secrets/kubernetes.io/serviceaccount` is one).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Volume};

use super::atomic_writer::{AtomicWriter, FileProjection, Payload};
use super::token::TokenKey;
use super::{aggregate, configmap, downward_api, empty_dir, secret, SetUpContext, VolumePlugin};

/// Files are 0644 unless the volume says otherwise.
pub const DEFAULT_MODE: i32 = 0o644;

/// The projected volume plugin.
pub struct ProjectedPlugin;

impl ProjectedPlugin {
    /// Upstream's `collectData`: every source's files; failures are collected so that one
    /// message names them all.
    async fn collect_data(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
    ) -> Result<Payload, String> {
        let source = volume.projected.as_ref().expect("can_support");
        let mode = source.default_mode.unwrap_or(DEFAULT_MODE);
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for s in source.sources.iter().flatten() {
            if let Some(cm) = &s.config_map {
                let optional = cm.optional == Some(true);
                let object = match ctx.sources.config_map(ctx.namespace(), &cm.name) {
                    Ok(c) => (*c).clone(),
                    Err(_) if optional => ConfigMap::default(),
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                };
                match configmap::make_payload(cm.items.as_deref(), &object, mode, optional) {
                    Ok(p) => payload.extend(p),
                    Err(e) => errors.push(e),
                }
            } else if let Some(sec) = &s.secret {
                let optional = sec.optional == Some(true);
                let object = match ctx.sources.secret(ctx.namespace(), &sec.name) {
                    Ok(c) => (*c).clone(),
                    Err(_) if optional => Secret::default(),
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                };
                match secret::make_payload(sec.items.as_deref(), &object, mode, optional) {
                    Ok(p) => payload.extend(p),
                    Err(e) => errors.push(e),
                }
            } else if let Some(d) = &s.downward_api {
                match downward_api::collect_data(
                    d.items.as_deref().unwrap_or_default(),
                    ctx.pod,
                    ctx.allocatable,
                    mode,
                ) {
                    Ok(p) => payload.extend(p),
                    Err(e) => errors.push(e),
                }
            } else if let Some(t) = &s.service_account_token {
                let key = TokenKey {
                    namespace: ctx.namespace().to_string(),
                    service_account: ctx
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_else(|| "default".into()),
                    audience: t.audience.clone().unwrap_or_default(),
                    expiration_seconds: t.expiration_seconds.unwrap_or(3600),
                    pod_name: ctx.pod.metadata.name.clone().unwrap_or_default(),
                    pod_uid: ctx.pod.metadata.uid.clone().unwrap_or_default(),
                };
                match ctx.tokens.get(&key).await {
                    Ok(token) => {
                        payload.insert(t.path.clone(), FileProjection::new(token, mode));
                    }
                    Err(e) => errors.push(e),
                }
            } else if s.cluster_trust_bundle.is_some() {
                errors.push("clusterTrustBundle projections are not supported".into());
            }
        }
        if errors.is_empty() {
            Ok(payload)
        } else {
            Err(aggregate(&errors))
        }
    }
}

#[async_trait::async_trait]
impl VolumePlugin for ProjectedPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/projected"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.projected.is_some()
    }

    fn read_only(&self) -> bool {
        true
    }

    fn references(&self, volume: &Volume) -> Vec<(&'static str, String)> {
        let mut refs = Vec::new();
        for s in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(c) = &s.config_map {
                refs.push(("configmap", c.name.clone()));
            }
            if let Some(c) = &s.secret {
                refs.push(("secret", c.name.clone()));
            }
        }
        refs
    }

    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        let payload = self.collect_data(ctx, volume).await?;
        empty_dir::set_up_tmpfs(dir, None)?;
        AtomicWriter::new(dir)
            .write(&payload)
            .map_err(|e| format!("error writing payload to {}: {e}", dir.display()))?;
        Ok(dir.to_path_buf())
    }
}
