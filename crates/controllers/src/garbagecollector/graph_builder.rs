//! Upstream `graph_builder.go`: one watch ("monitor") per deletable resource, each
//! change applied to the graph, and discovery repeated to pick up new resources.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ObjectMeta};
use kube::core::PartialObjectMeta;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;

use super::graph::{Identity, ObjectState};
use super::{GarbageCollector, REDISCOVERY_PERIOD};
use crate::discovery::{Resources, ServedResource};

/// Resources the collector leaves alone (upstream `DefaultIgnoredResources`): events are
/// numerous, short-lived and never owners.
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// How long to wait for the first lists before the workers start anyway (a resource
/// that cannot be listed must not stop collection of the others).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Discovers resources, keeps one watch per deletable resource, and calls
/// `start_workers` once the first lists are in.
pub(super) async fn run(gc: Arc<GarbageCollector>, start_workers: impl FnOnce()) {
    let mut monitors: HashMap<(String, String), watch::Receiver<bool>> = HashMap::new();
    let mut start_workers = Some(start_workers);
    loop {
        match Resources::discover(&gc.client).await {
            Ok(resources) => {
                let resources = Arc::new(resources);
                *gc.resources.write().unwrap() = resources.clone();
                for served in resources.with_verbs(&["delete", "list", "watch"]) {
                    let key = (
                        served.resource.group.clone(),
                        served.resource.plural.clone(),
                    );
                    if IGNORED.contains(&(key.0.as_str(), key.1.as_str()))
                        || monitors.contains_key(&key)
                    {
                        continue;
                    }
                    let (synced_tx, synced_rx) = watch::channel(false);
                    tokio::spawn(monitor(gc.clone(), served.clone(), synced_tx));
                    monitors.insert(key, synced_rx);
                }
                if let Some(start) = start_workers.take() {
                    let all_synced = futures::future::join_all(monitors.values().cloned().map(
                        |mut rx| async move {
                            let _ = rx.wait_for(|s| *s).await;
                        },
                    ));
                    if tokio::time::timeout(SYNC_TIMEOUT, all_synced)
                        .await
                        .is_err()
                    {
                        tracing::warn!("garbage collector: some resources did not list in time; starting anyway");
                    }
                    tracing::info!(resources = monitors.len(), "garbage collector synced");
                    start();
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "garbage collector: discovery failed")
            }
        }
        tokio::time::sleep(REDISCOVERY_PERIOD).await;
    }
}

/// Watches one resource's metadata (the graph needs nothing else; upstream's monitors
/// are metadata informers too) and applies its changes to the graph; a re-list reports
/// the objects that vanished meanwhile as deletions.
async fn monitor(gc: Arc<GarbageCollector>, served: ServedResource, synced: watch::Sender<bool>) {
    let api: Api<PartialObjectMeta<DynamicObject>> =
        Api::all_with(gc.client.clone(), &served.resource);
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut known: HashSet<String> = HashSet::new();
    let mut relist: Option<HashSet<String>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => relist = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(obj)) => {
                if let Some(uid) = obj.metadata.uid.clone() {
                    relist.get_or_insert_with(HashSet::new).insert(uid);
                }
                apply(&gc, &served, &obj.metadata);
            }
            Ok(watcher::Event::InitDone) => {
                let fresh = relist.take().unwrap_or_default();
                for gone in known.difference(&fresh) {
                    let work = gc.graph.lock().unwrap().remove(gone);
                    gc.dispatch(work);
                }
                known = fresh;
                synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(obj)) => {
                if let Some(uid) = obj.metadata.uid.clone() {
                    known.insert(uid);
                }
                apply(&gc, &served, &obj.metadata);
            }
            Ok(watcher::Event::Delete(obj)) => {
                if let Some(uid) = obj.metadata.uid.as_deref() {
                    known.remove(uid);
                    let work = gc.graph.lock().unwrap().remove(uid);
                    gc.dispatch(work);
                }
            }
            Err(e) => {
                tracing::debug!(resource = %served.group_resource(), error = %e, "garbage collector watch failed; retrying")
            }
        }
    }
}

fn apply(gc: &GarbageCollector, served: &ServedResource, meta: &ObjectMeta) {
    let Some(state) = object_state(served, meta) else {
        return;
    };
    let work = gc.graph.lock().unwrap().upsert(state);
    gc.dispatch(work);
}

/// The graph's view of a watched object.
fn object_state(served: &ServedResource, meta: &ObjectMeta) -> Option<ObjectState> {
    Some(ObjectState {
        identity: Identity {
            api_version: served.resource.api_version.clone(),
            kind: served.resource.kind.clone(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
        },
        owners: meta.owner_references.clone().unwrap_or_default(),
        being_deleted: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}
