//! `kubernetes.io/secret` (upstream `pkg/volume/secret`): a Secret's keys as files on a
//! memory-backed (tmpfs) directory, so secret data never reaches the node's disk;
//! rewritten with the atomic writer when the Secret changes.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{KeyToPath, Secret, Volume};

use super::atomic_writer::{project_keys, AtomicWriter, Payload};
use super::{empty_dir, SetUpContext, VolumePlugin};

/// Files are 0644 unless the volume says otherwise.
pub const DEFAULT_MODE: i32 = 0o644;

/// The secret volume plugin.
pub struct SecretPlugin;

/// Upstream's `MakePayload` for Secrets: every key, or only `items` at their paths.
pub fn make_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let keys = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    project_keys(keys, items, default_mode, optional, |key| {
        format!("references non-existent secret key: {key}")
    })
}

#[async_trait::async_trait]
impl VolumePlugin for SecretPlugin {
    fn name(&self) -> &'static str {
        "kubernetes.io/secret"
    }

    fn can_support(&self, volume: &Volume) -> bool {
        volume.secret.is_some()
    }

    fn read_only(&self) -> bool {
        true
    }

    fn references(&self, volume: &Volume) -> Vec<(&'static str, String)> {
        volume
            .secret
            .iter()
            .map(|s| ("secret", s.secret_name.clone().unwrap_or_default()))
            .collect()
    }

    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String> {
        let source = volume.secret.as_ref().expect("can_support");
        let optional = source.optional == Some(true);
        let name = source.secret_name.clone().unwrap_or_default();
        let secret = match ctx.sources.secret(ctx.namespace(), &name) {
            Ok(s) => (*s).clone(),
            Err(_) if optional => Secret::default(),
            Err(e) => return Err(e.to_string()),
        };
        let payload = make_payload(
            source.items.as_deref(),
            &secret,
            source.default_mode.unwrap_or(DEFAULT_MODE),
            optional,
        )?;
        empty_dir::set_up_tmpfs(dir, None)?;
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
    fn payload_keys_items_and_modes() {
        let s: Secret =
            serde_json::from_value(json!({"data": {"user": "YWRtaW4=", "pw": "cHc="}})).unwrap();
        let all = make_payload(None, &s, 0o400, false).unwrap();
        assert_eq!(all["user"].data, b"admin");
        assert_eq!(all["pw"].mode, 0o400);
        let items: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "pw", "path": "creds/password"}])).unwrap();
        let some = make_payload(Some(&items), &s, 0o440, false).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["creds/password"]);
        assert_eq!(some["creds/password"].mode, 0o440);
        let missing: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "x", "path": "x"}])).unwrap();
        assert_eq!(
            make_payload(Some(&missing), &s, 0o644, false).unwrap_err(),
            "references non-existent secret key: x"
        );
    }
}
