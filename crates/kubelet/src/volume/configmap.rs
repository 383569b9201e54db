//! `kubernetes.io/configmap` (upstream `pkg/volume/configmap`): a ConfigMap's keys as
//! files, written with the atomic writer on a disk-backed directory and rewritten when the
//! ConfigMap changes.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Volume};

use super::atomic_writer::{project_keys, AtomicWriter, Payload};
use super::{SetUpContext, VolumePlugin};

/// Files are 0644 unless the volume says otherwise.
pub const DEFAULT_MODE: i32 = 0o644;

/// The configMap volume plugin.
pub struct ConfigMapPlugin;

/// Upstream's `MakePayload`: every key (data and binaryData), or only `items` mapped to
/// their paths; a missing item key fails unless the volume is optional.
pub fn make_payload(
    items: Option<&[KeyToPath]>,
    config_map: &ConfigMap,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    // binaryData first, so a data key of the same name (never valid) would win as before.
    let mut keys: std::collections::BTreeMap<String, Vec<u8>> = config_map
        .binary_data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in config_map.data.clone().unwrap_or_default() {
        keys.insert(k, v.into_bytes());
    }
    project_keys(keys, items, default_mode, optional, |key| {
        format!("configmap references non-existent config key: {key}")
    })
}

#[async_trait::async_trait]
impl VolumePlugin for ConfigMapPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/configmap"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.config_map.is_some()
    }

    fn read_only(&self) -> bool {
        true
    }

    fn references(&self, volume: &Volume) -> Vec<(&'static str, String)> {
        volume
            .config_map
            .iter()
            .map(|c| ("configmap", c.name.clone()))
            .collect()
    }

    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        let source = volume.config_map.as_ref().expect("can_support");
        let optional = source.optional == Some(true);
        let config_map = match ctx.sources.config_map(ctx.namespace(), &source.name) {
            Ok(c) => (*c).clone(),
            Err(_) if optional => ConfigMap::default(),
            Err(e) => return Err(e.to_string()),
        };
        let payload = make_payload(
            source.items.as_deref(),
            &config_map,
            source.default_mode.unwrap_or(DEFAULT_MODE),
            optional,
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
    fn payload_of_all_keys_or_items() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}
        }))
        .unwrap();
        let all = make_payload(None, &cm, 0o644, false).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["bin"].data, vec![0, 1]);
        let items: Vec<KeyToPath> = serde_json::from_value(json!([
            {"key": "a", "path": "dir/a.txt", "mode": 0o400}
        ]))
        .unwrap();
        let some = make_payload(Some(&items), &cm, 0o644, false).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some["dir/a.txt"].mode, 0o400);
        let missing: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "zz", "path": "z"}])).unwrap();
        assert_eq!(
            make_payload(Some(&missing), &cm, 0o644, false).unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert!(make_payload(Some(&missing), &cm, 0o644, true)
            .unwrap()
            .is_empty());
    }
}
