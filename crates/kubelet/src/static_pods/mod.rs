//! Static pods: pods the kubelet runs from manifest files in `--pod-manifest-path`
//! (upstream `pkg/kubelet/config/file.go`, `file_linux.go`), with a mirror pod in the API
//! server for each (`pkg/kubelet/pod/mirror_client.go`) so users can see them.
//!
//! The directory is read every [`FILE_CHECK_FREQUENCY`] (upstream's 20 s) and at once when
//! inotify reports a change. A static pod runs in a pod worker keyed by its hash uid,
//! independent of the API: deleting its mirror pod only makes the kubelet create a new
//! mirror (upstream `syncPod`: a mirror that is being deleted or has a stale hash is
//! deleted and recreated), while removing the file stops the pod and deletes the mirror
//! (`HandlePodCleanups` → orphaned mirror pods). The worker writes the pod's status to
//! the mirror pod.

pub mod file;
mod inotify;
pub mod mirror;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8rs_client::{Informer, ObjectKey};
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;

use crate::pod::worker::PodSource;
use file::StaticPod;

/// Annotation naming where a pod came from (`file`, `http`, `api`).
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Annotation holding the static pod's hash (also its uid).
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Annotation holding when the kubelet first saw the pod.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// Annotation marking a mirror pod; its value is the static pod's hash.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// `kubernetes.io/config.source` of static pods from files.
pub const FILE_SOURCE: &str = "file";

/// How often the manifest directory is read even without an inotify event.
pub const FILE_CHECK_FREQUENCY: Duration = Duration::from_secs(20);

/// Whether `pod` is a mirror pod (upstream `kubetypes.IsMirrorPod`).
pub fn is_mirror_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR).is_some()
}

/// Whether `pod` is a static pod (its source is not the API server).
pub fn is_static_pod(pod: &Pod) -> bool {
    annotation(pod, CONFIG_SOURCE).is_some_and(|s| s != "api")
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The static pod source of one node: its directory, and a wake-up for mirror pod
/// changes seen by the node's pod informer.
pub struct StaticPodSource {
    dir: PathBuf,
    node_name: String,
    /// Woken when a mirror pod of this node changes (or is deleted) in the API.
    pub mirror_changed: Notify,
}

impl StaticPodSource {
    /// A source reading `dir` for node `node_name`.
    pub fn new(dir: PathBuf, node_name: &str) -> Self {
        StaticPodSource {
            dir,
            node_name: node_name.to_string(),
            mirror_changed: Notify::new(),
        }
    }
}

/// A static pod the kubelet runs: what was read, and when it was first seen.
struct Running {
    pod: StaticPod,
    seen: String,
}

/// Runs the source for `agent` until the process ends: reads the directory, starts and
/// stops static pods' workers through `dispatch`, and keeps their mirror pods.
pub async fn run(
    source: Arc<StaticPodSource>,
    client: kube::Client,
    pods: Informer<Pod>,
    dispatch: impl Fn(Arc<Pod>, bool, PodSource) + Send + Sync + 'static,
) {
    if let Err(e) = std::fs::create_dir_all(&source.dir) {
        tracing::warn!(path = %source.dir.display(), error = %e, "cannot create the pod manifest path");
    }
    let changes = Arc::new(Notify::new());
    inotify::watch(&source.dir, changes.clone());
    let mirrors = mirror::MirrorClient::new(client, &source.node_name);
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let read = file::read_dir(&source.dir, &source.node_name);
        let wanted: HashMap<String, StaticPod> =
            read.into_iter().map(|p| (p.uid().to_string(), p)).collect();
        // Removed or changed files: stop the old pods.
        running.retain(|uid, r| {
            if wanted.contains_key(uid) {
                return true;
            }
            tracing::info!(pod = %r.pod.full_name(), "static pod removed from the manifest path");
            dispatch(
                Arc::new(r.pod.pod.clone()),
                true,
                PodSource::Static { mirror_uid: None },
            );
            false
        });
        for (uid, pod) in wanted {
            running.entry(uid).or_insert_with(|| {
                tracing::info!(pod = %pod.full_name(), path = %pod.path.display(), "static pod added");
                Running {
                    pod,
                    seen: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                }
            });
        }
        sync_mirrors(&running, &mirrors, &pods, &dispatch).await;
        tokio::select! {
            _ = tokio::time::sleep(FILE_CHECK_FREQUENCY) => {}
            _ = changes.notified() => {
                // Editors write in several steps; let them finish.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = source.mirror_changed.notified() => {}
        }
    }
}

/// Makes every running static pod have a current mirror pod, deletes orphaned mirrors,
/// and hands each worker its pod with the mirror's status.
async fn sync_mirrors(
    running: &HashMap<String, Running>,
    mirrors: &mirror::MirrorClient,
    pods: &Informer<Pod>,
    dispatch: &(impl Fn(Arc<Pod>, bool, PodSource) + Send + Sync),
) {
    let mut by_name: HashMap<String, &Running> = HashMap::new();
    for r in running.values() {
        by_name.insert(r.pod.full_name(), r);
    }
    // Orphans: mirror pods on this node without a static pod of the same name and hash.
    for existing in pods.list() {
        if !is_mirror_pod(&existing) || existing.metadata.deletion_timestamp.is_some() {
            continue;
        }
        // A mirror of an older version of a static pod is replaced below.
        if !by_name.contains_key(&full_name(&existing)) {
            mirrors.delete(&existing).await;
        }
    }
    for r in running.values() {
        let key = ObjectKey::new(
            r.pod.pod.metadata.namespace.clone().unwrap_or_default(),
            r.pod.pod.metadata.name.clone().unwrap_or_default(),
        );
        let mut mirror_pod = pods.get(&key);
        if let Some(m) = &mirror_pod {
            let ours = annotation(m, CONFIG_MIRROR) == Some(r.pod.uid());
            if m.metadata.deletion_timestamp.is_some() || !ours {
                // Upstream deletes a mirror being deleted or of another version, then
                // creates a fresh one.
                if is_mirror_pod(m) || m.metadata.deletion_timestamp.is_some() {
                    mirrors.delete(m).await;
                    mirror_pod = None;
                } else {
                    // A pod created through the API with the static pod's name: leave it.
                    tracing::warn!(pod = %r.pod.full_name(), "a non-mirror pod has the static pod's name; not creating its mirror");
                }
            }
        }
        let mut pod = r.pod.pod.clone();
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CONFIG_SEEN.into(), r.seen.clone());
        if mirror_pod.is_none() {
            mirror_pod = mirrors.create(&pod).await.map(Arc::new);
        }
        let mirror_uid = mirror_pod
            .as_ref()
            .filter(|m| is_mirror_pod(m))
            .and_then(|m| {
                pod.status = m.status.clone();
                pod.metadata.resource_version = m.metadata.resource_version.clone();
                m.metadata.uid.clone()
            });
        dispatch(Arc::new(pod), false, PodSource::Static { mirror_uid });
    }
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}
