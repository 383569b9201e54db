//! Pod volumes on real nodes (upstream `pkg/kubelet/volumemanager` with the plugins of
//! `pkg/volume/<plugin>`): each plugin is a small module behind [`VolumePlugin`]; the
//! [`VolumeManager`] sets up a pod's volumes under `<root>/pods/<uid>/volumes/<plugin>/<name>`
//! before its containers start, keeps API-data volumes current (informer changes of the
//! ConfigMaps/Secrets they reference, and every pod sync as the periodic resync), reports
//! failures as `FailedMount` events, and removes everything (tmpfs unmounted) when the pod
//! goes. Hollow nodes have no volume manager: they write no files.

pub mod atomic_writer;
pub mod configmap;
pub mod downward_api;
pub mod empty_dir;
pub mod host_path;
pub mod projected;
pub mod secret;
pub mod sources;
pub mod token;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use k8rs_client::{Change, EventRecorder, EventType, Informers};
use k8s_openapi::api::core::v1::{Pod, Volume};

pub use sources::{InformerSource, NotFound, ObjectSource};
use token::TokenManager;

/// What a plugin needs to set a volume up.
pub struct SetUpContext<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// ConfigMaps and Secrets.
    pub sources: &'a dyn ObjectSource,
    /// ServiceAccount tokens.
    pub tokens: &'a TokenManager,
    /// The node's allocatable resources (limits that are not set read as these).
    pub allocatable: &'a BTreeMap<String, String>,
}

impl SetUpContext<'_> {
    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }
}

/// One volume type (upstream `VolumePlugin` + its `Mounter`).
#[async_trait::async_trait]
pub trait VolumePlugin: Send + Sync {
    /// Upstream's plugin name (`kubernetes.io/configmap`); its escaped form names the
    /// directory the pod's volumes of this type live in.
    fn name(&self) -> &'static str;
    /// Whether this plugin handles `volume`.
    fn can_support(&self, volume: &Volume) -> bool;
    /// API-data volumes are mounted read-only whatever the container asks.
    fn read_only(&self) -> bool {
        false
    }
    /// The `(kind, name)` of API objects whose changes must rewrite the volume.
    fn references(&self, volume: &Volume) -> Vec<(&'static str, String)> {
        let _ = volume;
        Vec::new()
    }
    /// Sets up (or refreshes) the volume in `dir`; returns the host path to mount.
    async fn set_up(
        &self,
        ctx: &SetUpContext<'_>,
        volume: &Volume,
        dir: &Path,
    ) -> Result<PathBuf, String>;
}

/// The plugins, in upstream's probe order.
pub fn plugins() -> Vec<Box<dyn VolumePlugin>> {
    vec![
        Box::new(empty_dir::EmptyDirPlugin),
        Box::new(host_path::HostPathPlugin),
        Box::new(configmap::ConfigMapPlugin),
        Box::new(secret::SecretPlugin),
        Box::new(downward_api::DownwardApiPlugin),
        Box::new(projected::ProjectedPlugin),
    ]
}

/// Upstream's `utilerrors.NewAggregate(...).Error()`: one message as is, several in
/// brackets.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// A set-up volume, as containers mount it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountedVolume {
    /// Path on the node.
    pub host_path: PathBuf,
    /// The plugin mounts it read-only.
    pub read_only: bool,
}

/// Upstream's mount retry back-off (`nestedpendingoperations`): 500 ms doubling to 2m2s.
const INITIAL_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(122);

#[derive(Default)]
struct PodVolumes {
    /// The pod as last set up (informer changes redo this).
    pod: Option<Arc<Pod>>,
    mounted: HashMap<String, MountedVolume>,
    /// Failing volumes: attempts and when to try again.
    failing: HashMap<String, (u32, Instant, String)>,
}

struct PodEntry {
    /// Serialises set-ups of one pod (worker syncs and informer-triggered refreshes).
    lock: tokio::sync::Mutex<()>,
    state: Mutex<PodVolumes>,
}

/// The node's volume manager; also the environment's source of ConfigMaps, Secrets and
/// Services.
pub struct VolumeManager {
    root: PathBuf,
    allocatable: BTreeMap<String, String>,
    sources: InformerSource,
    tokens: TokenManager,
    plugins: Vec<Box<dyn VolumePlugin>>,
    recorder: EventRecorder,
    pods: Mutex<HashMap<String, Arc<PodEntry>>>,
}

impl VolumeManager {
    /// A manager keeping pod directories under `root` (upstream `--root-dir`), reading
    /// objects through `informers`.
    pub fn new(
        root: PathBuf,
        node_name: &str,
        allocatable: BTreeMap<String, String>,
        informers: &Informers,
    ) -> Arc<Self> {
        let client = informers.client().clone();
        Arc::new_cyclic(|weak: &Weak<VolumeManager>| {
            let sources = InformerSource::new(informers);
            let on_config_map = weak.clone();
            sources.config_maps.add_handler(move |change| {
                if let (Some(m), Change::Applied { new, .. }) = (on_config_map.upgrade(), change) {
                    m.source_changed("configmap", &new.metadata);
                }
            });
            let on_secret = weak.clone();
            sources.secrets.add_handler(move |change| {
                if let (Some(m), Change::Applied { new, .. }) = (on_secret.upgrade(), change) {
                    m.source_changed("secret", &new.metadata);
                }
            });
            VolumeManager {
                root,
                allocatable,
                sources,
                tokens: TokenManager::new(client.clone()),
                plugins: plugins(),
                recorder: EventRecorder::new(client, "kubelet").with_host(node_name),
                pods: Mutex::new(HashMap::new()),
            }
        })
    }

    /// The ConfigMaps, Secrets and Services environment variables read.
    pub fn sources(&self) -> &InformerSource {
        &self.sources
    }

    /// The node's allocatable resources.
    pub fn allocatable(&self) -> &BTreeMap<String, String> {
        &self.allocatable
    }

    /// The event recorder (component `kubelet`, source host the node).
    pub fn recorder(&self) -> &EventRecorder {
        &self.recorder
    }

    /// `<root>/pods/<uid>`.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root.join("pods").join(uid)
    }

    /// The volumes of the pod set up so far, by volume name.
    pub fn mounted(&self, uid: &str) -> HashMap<String, MountedVolume> {
        self.pods
            .lock()
            .unwrap()
            .get(uid)
            .map(|e| e.state.lock().unwrap().mounted.clone())
            .unwrap_or_default()
    }

    fn entry(&self, uid: &str) -> Arc<PodEntry> {
        self.pods
            .lock()
            .unwrap()
            .entry(uid.to_string())
            .or_insert_with(|| {
                Arc::new(PodEntry {
                    lock: tokio::sync::Mutex::new(()),
                    state: Mutex::new(PodVolumes::default()),
                })
            })
            .clone()
    }

    /// Upstream's `WaitForAttachAndMount` + the reconciler's `MountVolume`: sets up (or
    /// refreshes) every volume of `pod`. Fails while a volume was never set up; the error
    /// names the unmounted volumes. A refresh that fails for a mounted volume keeps the old
    /// contents (and records the event).
    pub async fn mount_pod(&self, pod: &Arc<Pod>) -> Result<(), String> {
        self.sources.wait_synced().await;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let entry = self.entry(&uid);
        let _guard = entry.lock.lock().await;
        self.set_up_locked(&uid, &entry, pod).await
    }

    /// Rewrites the volumes of a pod still on the node after an informer change; a pod
    /// torn down meanwhile (its entry gone) is left alone, so nothing is recreated.
    async fn refresh_pod(&self, uid: String, entry: Arc<PodEntry>) {
        let _guard = entry.lock.lock().await;
        let current = self
            .pods
            .lock()
            .unwrap()
            .get(&uid)
            .is_some_and(|e| Arc::ptr_eq(e, &entry));
        let pod = entry.state.lock().unwrap().pod.clone();
        if let (true, Some(pod)) = (current, pod) {
            let _ = self.set_up_locked(&uid, &entry, &pod).await;
        }
    }

    /// [`mount_pod`](Self::mount_pod) with the pod's lock held.
    async fn set_up_locked(
        &self,
        uid: &str,
        entry: &PodEntry,
        pod: &Arc<Pod>,
    ) -> Result<(), String> {
        entry.state.lock().unwrap().pod = Some(pod.clone());
        let ctx = SetUpContext {
            pod,
            sources: &self.sources,
            tokens: &self.tokens,
            allocatable: &self.allocatable,
        };
        let pod_dir = self.pod_dir(uid);
        let mut unmounted = Vec::new();
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for volume in &volumes {
            let Some(plugin) = self.plugins.iter().find(|p| p.can_support(volume)) else {
                // Unsupported types (persistentVolumeClaim, csi, …) never mount.
                unmounted.push(volume.name.clone());
                self.failed(pod, entry, &volume.name, format!(
                    "MountVolume.SetUp failed for volume {:?} : volume type is not supported by this kubelet",
                    volume.name
                ));
                continue;
            };
            let mounted = entry
                .state
                .lock()
                .unwrap()
                .mounted
                .contains_key(&volume.name);
            if !mounted {
                let waiting = entry
                    .state
                    .lock()
                    .unwrap()
                    .failing
                    .get(&volume.name)
                    .is_some_and(|(_, next, _)| Instant::now() < *next);
                if waiting {
                    unmounted.push(volume.name.clone());
                    continue;
                }
            }
            let dir = pod_dir
                .join("volumes")
                .join(plugin.name().replace('/', "~"))
                .join(&volume.name);
            match plugin.set_up(&ctx, volume, &dir).await {
                Ok(host_path) => {
                    let mut state = entry.state.lock().unwrap();
                    state.failing.remove(&volume.name);
                    state.mounted.insert(
                        volume.name.clone(),
                        MountedVolume {
                            host_path,
                            read_only: plugin.read_only(),
                        },
                    );
                }
                Err(e) => {
                    if !mounted {
                        unmounted.push(volume.name.clone());
                    }
                    self.failed(
                        pod,
                        entry,
                        &volume.name,
                        format!(
                            "MountVolume.SetUp failed for volume {:?} : {e}",
                            volume.name
                        ),
                    );
                }
            }
        }
        if unmounted.is_empty() {
            Ok(())
        } else {
            unmounted.sort();
            Err(format!(
                "unmounted volumes=[{}], unattached volumes=[]",
                unmounted.join(" ")
            ))
        }
    }

    /// Records a `FailedMount` event, at most once per back-off step per volume.
    fn failed(&self, pod: &Pod, entry: &PodEntry, volume: &str, message: String) {
        let mut state = entry.state.lock().unwrap();
        let now = Instant::now();
        let (attempts, next, last) =
            state
                .failing
                .entry(volume.to_string())
                .or_insert((0, now, String::new()));
        if now < *next && *last == message {
            return;
        }
        *attempts += 1;
        let delay = INITIAL_RETRY
            .saturating_mul(1 << (*attempts - 1).min(10))
            .min(MAX_RETRY);
        *next = now + delay;
        *last = message.clone();
        tracing::debug!(volume, %message, "volume set-up failed");
        self.recorder
            .record(pod, EventType::Warning, "FailedMount", message);
    }

    /// An informer saw `kind` `meta` change: rewrite the volumes that project it.
    fn source_changed(
        self: Arc<Self>,
        kind: &str,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) {
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let affected: Vec<(String, Arc<PodEntry>)> = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| {
                let Some(pod) = e.state.lock().unwrap().pod.clone() else {
                    return false;
                };
                pod.metadata.namespace.as_deref() == Some(namespace.as_str())
                    && pod
                        .spec
                        .iter()
                        .flat_map(|s| s.volumes.iter().flatten())
                        .any(|v| {
                            self.plugins
                                .iter()
                                .filter(|p| p.can_support(v))
                                .flat_map(|p| p.references(v))
                                .any(|(k, n)| k == kind && n == name)
                        })
            })
            .map(|(uid, e)| (uid.clone(), e.clone()))
            .collect();
        for (uid, entry) in affected {
            let manager = self.clone();
            tokio::spawn(async move { manager.refresh_pod(uid, entry).await });
        }
    }

    /// Removes the pod's volumes: unmounts its tmpfs mounts and deletes its directory.
    pub async fn tear_down_pod(&self, uid: &str) {
        let entry = self.pods.lock().unwrap().remove(uid);
        let _guard = match &entry {
            Some(e) => Some(e.lock.lock().await),
            None => None,
        };
        self.tokens.forget_pod(uid);
        let dir = self.pod_dir(uid);
        let removed = tokio::task::spawn_blocking(move || remove_pod_dir(&dir)).await;
        if let Ok(Err(e)) = removed {
            tracing::warn!(pod_uid = uid, error = %e, "cannot remove the pod's directory");
        }
    }

    /// Removes the directories of pods the node no longer runs (upstream
    /// `cleanupOrphanedPodDirs`): left by pods deleted while the kubelet was down.
    pub async fn clean_up_orphans(&self, active: &std::collections::HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(self.root.join("pods")) else {
            return;
        };
        for entry in entries.flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            if !active.contains(&uid) && !self.pods.lock().unwrap().contains_key(&uid) {
                self.tear_down_pod(&uid).await;
            }
        }
    }
}

/// Unmounts whatever is mounted under `dir`, deepest first, then deletes it.
pub fn remove_pod_dir(dir: &Path) -> Result<(), String> {
    for point in empty_dir::mount_points_under(dir) {
        empty_dir::unmount(&point)?;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("remove {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx_parts() -> (
        sources::StaticSource,
        TokenManager,
        BTreeMap<String, String>,
    ) {
        let cm = serde_json::from_value(json!({
            "metadata": {"name": "cfg", "namespace": "ns"}, "data": {"k": "v"}
        }))
        .unwrap();
        let source = sources::StaticSource {
            config_maps: vec![cm],
            ..Default::default()
        };
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let tokens = TokenManager::new(kube::Client::try_from(config).unwrap());
        (source, tokens, BTreeMap::new())
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn plugins_set_up_into_their_directories() {
        let (source, tokens, alloc) = ctx_parts();
        let pod = pod();
        let ctx = SetUpContext {
            pod: &pod,
            sources: &source,
            tokens: &tokens,
            allocatable: &alloc,
        };
        let dir = tempfile::tempdir().unwrap();
        let volume = |v: serde_json::Value| -> Volume { serde_json::from_value(v).unwrap() };
        let all = plugins();
        let set_up = |v: Volume| {
            let dir = dir.path().join(&v.name);
            let plugin = all.iter().find(|p| p.can_support(&v)).unwrap();
            let ctx = &ctx;
            async move { plugin.set_up(ctx, &v, &dir).await }
        };
        let cm = set_up(volume(json!({"name": "c", "configMap": {"name": "cfg"}})))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(cm.join("k")).unwrap(), "v");
        assert_eq!(
            set_up(volume(json!({"name": "m", "configMap": {"name": "nope"}})))
                .await
                .unwrap_err(),
            "configmap \"nope\" not found"
        );
        let optional = set_up(volume(
            json!({"name": "o", "configMap": {"name": "nope", "optional": true}}),
        ))
        .await
        .unwrap();
        assert!(optional.is_dir());
        let d = set_up(volume(json!({"name": "d", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})))
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("labels")).unwrap(),
            "a=\"b\""
        );
        let e = set_up(volume(json!({"name": "e", "emptyDir": {}})))
            .await
            .unwrap();
        assert!(e.is_dir());
        let h = set_up(volume(
            json!({"name": "h", "hostPath": {"path": dir.path().join("hp").to_str().unwrap(), "type": "DirectoryOrCreate"}}),
        ))
        .await
        .unwrap();
        assert_eq!(h, dir.path().join("hp"));
        assert!(h.is_dir());
        // A projected volume whose sources are missing names each failure.
        let err = set_up(volume(json!({"name": "p", "projected": {"sources": [
            {"configMap": {"name": "nope"}}, {"secret": {"name": "gone"}}]}})))
        .await
        .unwrap_err();
        assert_eq!(
            err,
            "[configmap \"nope\" not found, secret \"gone\" not found]"
        );
        remove_pod_dir(dir.path()).unwrap();
        assert!(!dir.path().exists());
    }

    #[test]
    fn aggregate_messages() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
