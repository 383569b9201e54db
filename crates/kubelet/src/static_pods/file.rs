//! Reading static pods from a manifest directory (upstream `pkg/kubelet/config/file.go`
//! `extractFromDir` and `common.go` `tryDecodeSinglePod`/`applyDefaults`): one pod per
//! file, YAML or JSON; hidden files are skipped; each pod is named `<name>-<nodeName>`,
//! bound to the node, tolerates every NoExecute taint, and gets a uid that is the hash of
//! its content, node and file (the `kubernetes.io/config.hash` annotation), so an edited
//! file is a new pod.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, PodStatus, Toleration};
use serde_json::Value;

use super::{CONFIG_HASH, CONFIG_SOURCE, FILE_SOURCE};

/// A static pod read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticPod {
    /// The file it came from.
    pub path: PathBuf,
    /// The pod, defaulted, named and hashed (without `kubernetes.io/config.seen`).
    pub pod: Pod,
}

impl StaticPod {
    /// The pod's uid, which is also its `kubernetes.io/config.hash`.
    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }

    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

/// Reads every manifest in `dir` (sorted by file name). Files that do not decode as a
/// pod are skipped with a log line, as upstream does; a missing directory holds no pods.
pub fn read_dir(dir: &Path, node_name: &str) -> Vec<StaticPod> {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "unable to read pod manifest path");
            }
            return Vec::new();
        }
    };
    entries.sort();
    let mut pods: Vec<StaticPod> = Vec::new();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden || !path.is_file() {
            continue;
        }
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| decode(&bytes, &path, node_name));
        match read {
            Ok(pod) => {
                // Two files naming the same pod: the first wins (upstream's config merge
                // drops the duplicate with an event).
                if pods.iter().any(|p| p.full_name() == pod.full_name()) {
                    tracing::warn!(path = %path.display(), pod = %pod.full_name(), "duplicate static pod ignored");
                    continue;
                }
                pods.push(pod);
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not process manifest file")
            }
        }
    }
    pods
}

/// Decodes one manifest into a static pod for `node_name`.
pub fn decode(bytes: &[u8], path: &Path, node_name: &str) -> Result<StaticPod, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    // JSON is YAML; one parser reads both.
    let value: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != "Pod" || api_version != "v1" {
        return Err(format!(
            "invalid pod: expected kind Pod in version v1, got {kind:?} in {api_version:?}"
        ));
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| format!("invalid pod: {e}"))?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err("invalid pod: metadata.name: Required value".into());
    }
    k8rs_api::defaults::default_pod(&mut pod);
    apply_defaults(&mut pod, path, node_name);
    Ok(StaticPod {
        path: path.to_path_buf(),
        pod,
    })
}

/// Upstream `applyDefaults` for a file source.
fn apply_defaults(pod: &mut Pod, path: &Path, node_name: &str) {
    if pod.metadata.uid.as_deref().unwrap_or_default().is_empty() {
        // The hash covers the decoded pod, then the host and the file, as upstream's.
        let mut hasher = Fnv128::default();
        hasher.write(&serde_json::to_vec(&*pod).unwrap_or_default());
        hasher.write(format!("host:{node_name}").as_bytes());
        hasher.write(format!("file:{}", path.display()).as_bytes());
        pod.metadata.uid = Some(format!("{:032x}", hasher.0));
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    pod.metadata.name = Some(format!("{name}-{node_name}"));
    if pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        pod.metadata.namespace = Some("default".into());
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node_name.to_string());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(
        CONFIG_HASH.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    annotations.insert(CONFIG_SOURCE.into(), FILE_SOURCE.into());
    // Static pods are not evicted by node problems (taint-based eviction).
    let tolerate_all = Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&tolerate_all) {
        tolerations.push(tolerate_all);
    }
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        ..Default::default()
    });
}

/// 128-bit FNV-1a: a stable content hash (upstream uses md5 over its deep-hash printer;
/// either only has to change when the pod does).
struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(0x6c62272e07bb014262b821756295c58d)
    }
}

impl Fnv128 {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u128).wrapping_mul(0x0000000001000000000000000000013b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn manifests_become_named_hashed_bound_pods() {
        let pod = decode(YAML.as_bytes(), Path::new("/m/web.yaml"), "n1").unwrap();
        let meta = &pod.pod.metadata;
        assert_eq!(meta.name.as_deref(), Some("web-n1"));
        assert_eq!(meta.namespace.as_deref(), Some("default"));
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations[CONFIG_SOURCE], "file");
        assert_eq!(annotations[CONFIG_HASH], pod.uid());
        assert_eq!(pod.uid().len(), 32);
        let spec = pod.pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        // Upstream defaults applied.
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        assert!(spec
            .tolerations
            .as_ref()
            .unwrap()
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.effect.as_deref() == Some("NoExecute")));

        // Same content: same uid. Changed content, other node or other file: another.
        let again = decode(YAML.as_bytes(), Path::new("/m/web.yaml"), "n1").unwrap();
        assert_eq!(again.uid(), pod.uid());
        let changed = YAML.replace("busybox", "busybox:1");
        for other in [
            decode(changed.as_bytes(), Path::new("/m/web.yaml"), "n1").unwrap(),
            decode(YAML.as_bytes(), Path::new("/m/web.yaml"), "n2").unwrap(),
            decode(YAML.as_bytes(), Path::new("/m/other.yaml"), "n1").unwrap(),
        ] {
            assert_ne!(other.uid(), pod.uid());
        }
    }

    #[test]
    fn json_and_bad_manifests() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
        let pod = decode(json.as_bytes(), Path::new("/m/j.json"), "n1").unwrap();
        assert_eq!(pod.full_name(), "kube-system/j-n1");
        let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n";
        assert!(decode(service.as_bytes(), Path::new("/m/s"), "n1")
            .unwrap_err()
            .contains("expected kind Pod"));
        assert!(decode(b"{not yaml", Path::new("/m/x"), "n1").is_err());
    }

    #[test]
    fn directory_skips_hidden_broken_and_duplicate_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), YAML).unwrap();
        std::fs::write(dir.path().join("b.yaml"), YAML).unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), YAML.replace("web", "h")).unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "kind: [").unwrap();
        std::fs::write(dir.path().join("other.yaml"), YAML.replace("web", "db")).unwrap();
        let pods = read_dir(dir.path(), "n1");
        let names: Vec<String> = pods.iter().map(StaticPod::full_name).collect();
        assert_eq!(names, ["default/web-n1", "default/db-n1"]);
        assert!(pods[0].path.ends_with("a.yaml"));
        assert!(read_dir(&dir.path().join("missing"), "n1").is_empty());
    }
}
