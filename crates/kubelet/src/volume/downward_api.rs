//! `kubernetes.io/downward-api` (upstream `pkg/volume/downwardapi`): pod metadata and
//! container resources as files, rewritten when labels or annotations change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod, Volume};

use super::atomic_writer::{AtomicWriter, FileProjection, Payload};
use super::{aggregate, SetUpContext, VolumePlugin};
use crate::pod::fieldpath::{extract_field_path, resource_field_value};

/// Files are 0644 unless the volume says otherwise.
pub const DEFAULT_MODE: i32 = 0o644;

/// The downwardAPI volume plugin.
pub struct DownwardApiPlugin;

/// Upstream's `CollectData`: one file per item; failures are collected and reported
/// together.
pub fn collect_data(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    allocatable: &BTreeMap<String, String>,
    default_mode: i32,
) -> Result<Payload, String> {
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for item in items {
        let mut data = Vec::new();
        if let Some(field) = &item.field_ref {
            match extract_field_path(pod, &field.field_path) {
                Ok(v) => data = v.into_bytes(),
                Err(e) => errors.push(e),
            }
        } else if let Some(selector) = &item.resource_field_ref {
            let name = selector.container_name.clone().unwrap_or_default();
            let container = pod
                .spec
                .as_ref()
                .and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|c| c.name == name)
                })
                .cloned();
            match container {
                None => errors.push(format!("container {name} not found")),
                Some(c) => match resource_field_value(selector, pod, &c, allocatable) {
                    Ok(v) => data = v.into_bytes(),
                    Err(e) => errors.push(e),
                },
            }
        }
        let path = item.path.trim_end_matches('/').to_string();
        payload.insert(
            path,
            FileProjection::new(data, item.mode.unwrap_or(default_mode)),
        );
    }
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(aggregate(&errors))
    }
}

#[async_trait::async_trait]
impl VolumePlugin for DownwardApiPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/downward-api"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.downward_api.is_some()
    }

    fn read_only(&self) -> bool {
        true
    }

    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        let source = volume.downward_api.as_ref().expect("can_support");
        let payload = collect_data(
            source.items.as_deref().unwrap_or_default(),
            ctx.pod,
            ctx.allocatable,
            source.default_mode.unwrap_or(DEFAULT_MODE),
        )?;
        AtomicWriter::new(dir)
            .write(&payload)
            .map_err(|e| format!("error writing payload to {}: {e}", dir.display()))?;
        Ok(dir.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_annotations_and_resources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "128Mi"}}}]}
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
        ]))
        .unwrap();
        let p = collect_data(&items, &pod, &BTreeMap::new(), 0o644).unwrap();
        assert_eq!(p["labels"].data, b"app=\"web\"\ntier=\"fe\"");
        assert_eq!(p["name"].mode, 0o400);
        assert_eq!(p["mem"].data, b"128");
        let bad: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}},
            {"path": "y", "resourceFieldRef": {"containerName": "zz", "resource": "limits.cpu"}},
        ]))
        .unwrap();
        assert_eq!(
            collect_data(&bad, &pod, &BTreeMap::new(), 0o644).unwrap_err(),
            "[unsupported fieldPath: spec.nodeName, container zz not found]"
        );
    }
}
