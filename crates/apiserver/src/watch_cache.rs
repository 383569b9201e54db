//! The watch cache: every resource's current objects plus a window of recent events,
//! following one store watch on `/registry/`. LIST and WATCH are served from here, so the
//! store sees only writes and catch-up reads (upstream: `apiserver/pkg/storage/cacher`).
//!
//! Invariants: objects carry `metadata.resourceVersion` = their store `mod_revision`;
//! events are applied in revision order; a watcher registered at revision `r` gets every
//! event with revision > `r` exactly once (replay and live feed are joined under one lock).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8rs_store::{Event, KeyValue, Revision, Store};
use serde_json::Value;
use tokio::sync::broadcast;

/// How many events each resource keeps for watches that start in the past.
const EVENT_WINDOW: usize = 10_000;
/// Live-feed buffer per resource; a watcher that falls further behind is ended (it re-lists).
const BROADCAST_CAPACITY: usize = 16_384;

/// Watch event type, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug)]
pub struct CacheEvent {
    /// Added / Modified / Deleted.
    pub type_: EventType,
    /// The store key.
    pub key: String,
    /// The object after the change (for deletions: the last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the change (modifications and deletions).
    pub prev: Option<Arc<Value>>,
    /// Revision of the change.
    pub revision: Revision,
    /// `object` serialised, once, for every watcher that sends it unchanged.
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl CacheEvent {
    /// The object's JSON, serialised on first use and shared by all watchers.
    pub fn encoded_object(&self) -> &bytes::Bytes {
        self.encoded
            .get_or_init(|| serde_json::to_vec(&*self.object).unwrap_or_default().into())
    }
}

struct ResourceState {
    objects: BTreeMap<String, Arc<Value>>,
    events: VecDeque<Arc<CacheEvent>>,
    /// Every event of this resource with revision > `window_start` is in `events`.
    window_start: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

/// The cache of one resource (one storage prefix).
pub struct ResourceCache {
    prefix: String,
    state: RwLock<ResourceState>,
}

/// A consistent snapshot of a resource's objects.
pub struct Snapshot {
    /// Objects sorted by key.
    pub objects: Vec<Arc<Value>>,
    /// Global revision the snapshot is at.
    pub revision: Revision,
}

/// A registered watch: events to replay, then the live feed.
pub struct Subscription {
    /// Events after the start revision already in the window (or synthetic ADDED events).
    pub replay: Vec<Arc<CacheEvent>>,
    /// Live events.
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
}

/// Set `metadata.resourceVersion` on an object decoded from the store.
pub fn decode_with_rv(kv_value: &[u8], rev: Revision) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(kv_value).ok()?;
    set_rv(&mut v, rev);
    Some(v)
}

/// Set `metadata.resourceVersion`.
pub fn set_rv(v: &mut Value, rev: Revision) {
    if let Some(obj) = v.as_object_mut() {
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(m) = meta.as_object_mut() {
            m.insert("resourceVersion".into(), Value::String(rev.to_string()));
        }
    }
}

impl ResourceCache {
    fn new(prefix: String, start: Revision) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            prefix,
            state: RwLock::new(ResourceState {
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                window_start: start,
                tx,
            }),
        }
    }

    /// The storage prefix, e.g. `/registry/pods/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Objects whose key starts with `key_prefix` (a namespace's prefix, or the whole resource).
    pub fn list(&self, key_prefix: &str, revision: Revision) -> Snapshot {
        let st = self.state.read().unwrap();
        let objects = st
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, v)| v.clone())
            .collect();
        Snapshot { objects, revision }
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.state.read().unwrap().objects.get(key).cloned()
    }

    /// Number of objects (for metrics).
    pub fn len(&self) -> usize {
        self.state.read().unwrap().objects.len()
    }

    /// Whether the resource has no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start a watch after revision `after` (`None`: synthetic ADDED for every current object
    /// under `key_prefix`, then changes). `Err(oldest)`, the oldest revision a watch can start after, when `after` is older.
    pub fn subscribe(
        &self,
        key_prefix: &str,
        after: Option<Revision>,
    ) -> Result<Subscription, Revision> {
        let st = self.state.read().unwrap();
        let replay = match after {
            None => st
                .objects
                .range(key_prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(key_prefix))
                .map(|(k, v)| {
                    Arc::new(CacheEvent {
                        type_: EventType::Added,
                        key: k.clone(),
                        object: v.clone(),
                        prev: None,
                        revision: 0,
                        encoded: Default::default(),
                    })
                })
                .collect(),
            Some(after) => {
                if after < st.window_start {
                    return Err(st.window_start);
                }
                st.events
                    .iter()
                    .filter(|e| e.revision > after && e.key.starts_with(key_prefix))
                    .cloned()
                    .collect()
            }
        };
        Ok(Subscription {
            replay,
            live: st.tx.subscribe(),
        })
    }

    fn apply(&self, ev: CacheEvent) {
        let mut st = self.state.write().unwrap();
        match ev.type_ {
            EventType::Deleted => {
                st.objects.remove(&ev.key);
            }
            _ => {
                st.objects.insert(ev.key.clone(), ev.object.clone());
            }
        }
        let ev = Arc::new(ev);
        st.events.push_back(ev.clone());
        while st.events.len() > EVENT_WINDOW {
            if let Some(old) = st.events.pop_front() {
                st.window_start = old.revision;
            }
        }
        let _ = st.tx.send(ev);
    }

    fn reset(&self, objects: BTreeMap<String, Arc<Value>>, revision: Revision) {
        let mut st = self.state.write().unwrap();
        st.objects = objects;
        st.events.clear();
        st.window_start = revision;
    }
}

/// All resources' caches and the revision they have reached.
pub struct WatchCache {
    resources: HashMap<String, Arc<ResourceCache>>,
    revision: tokio::sync::watch::Sender<Revision>,
}

impl WatchCache {
    /// Load every prefix from the store and follow its watch in a background task.
    pub async fn start(
        store: Arc<dyn Store>,
        prefixes: Vec<String>,
    ) -> anyhow::Result<Arc<WatchCache>> {
        let (revision, _) = tokio::sync::watch::channel(0);
        let resources = prefixes
            .into_iter()
            .map(|p| (p.clone(), Arc::new(ResourceCache::new(p, 0))))
            .collect();
        let cache = Arc::new(WatchCache {
            resources,
            revision,
        });
        let rev = cache.load(store.as_ref()).await?;
        let follower = cache.clone();
        tokio::spawn(async move { follower.follow(store, rev).await });
        Ok(cache)
    }

    /// The cache of one storage prefix.
    pub fn resource(&self, prefix: &str) -> Option<&Arc<ResourceCache>> {
        self.resources.get(prefix)
    }

    /// The latest revision applied.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// A receiver of the applied revision (for bookmarks).
    pub fn revision_watch(&self) -> tokio::sync::watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    /// Wait until the cache has applied `rev` (bounded); `false` on timeout.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> bool {
        let mut rx = self.revision.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    fn resource_for_key(&self, key: &str) -> Option<&Arc<ResourceCache>> {
        // Keys are `/registry/<resource>/…` or `/registry/<group>/<resource>/…`.
        let rest = key.strip_prefix("/registry/")?;
        let mut parts = rest.splitn(3, '/');
        let first = parts.next()?;
        if let Some(c) = self.resources.get(&format!("/registry/{first}/")) {
            return Some(c);
        }
        let second = parts.next()?;
        self.resources.get(&format!("/registry/{first}/{second}/"))
    }

    async fn load(&self, store: &dyn Store) -> anyhow::Result<Revision> {
        let (kvs, rev) = store.list("/registry/", 0).await?;
        let mut per: HashMap<String, BTreeMap<String, Arc<Value>>> = HashMap::new();
        for kv in kvs {
            if let Some(cache) = self.resource_for_key(&kv.key) {
                if let Some(v) = decode_with_rv(&kv.value, kv.mod_revision) {
                    per.entry(cache.prefix.clone())
                        .or_default()
                        .insert(kv.key.clone(), Arc::new(v));
                }
            }
        }
        for (prefix, cache) in &self.resources {
            cache.reset(per.remove(prefix).unwrap_or_default(), rev);
        }
        self.revision.send_replace(rev);
        Ok(rev)
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut rev: Revision) {
        loop {
            match store.watch("/registry/", rev).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(ev) => {
                                rev = ev.revision();
                                self.apply(ev);
                                self.revision.send_replace(rev);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "store watch ended; re-listing");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "store watch failed; re-listing"),
            }
            // Resynchronise: re-list and replace (watchers older than this get 410 and re-list).
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.load(store.as_ref()).await {
                Ok(r) => rev = r,
                Err(e) => tracing::error!(error = %e, "re-list of the store failed"),
            }
        }
    }

    fn apply(&self, ev: Event) {
        let Some(cache) = self.resource_for_key(ev.key()) else {
            return;
        };
        let cache_ev = match ev {
            Event::Put { kv, prev } => {
                let Some(obj) = decode_with_rv(&kv.value, kv.mod_revision) else {
                    return;
                };
                let prev_obj = prev
                    .as_ref()
                    .and_then(prev_value)
                    .or_else(|| cache.get(&kv.key));
                CacheEvent {
                    type_: if prev_obj.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    key: kv.key,
                    object: Arc::new(obj),
                    prev: prev_obj,
                    revision: kv.mod_revision,
                    encoded: Default::default(),
                }
            }
            Event::Delete { prev, revision } => {
                let Some(mut obj) = decode_with_rv(&prev.value, prev.mod_revision) else {
                    return;
                };
                let prev_obj = Arc::new(obj.clone());
                set_rv(&mut obj, revision);
                CacheEvent {
                    type_: EventType::Deleted,
                    key: prev.key,
                    object: Arc::new(obj),
                    prev: Some(prev_obj),
                    revision,
                    encoded: Default::default(),
                }
            }
        };
        cache.apply(cache_ev);
    }
}

fn prev_value(kv: &KeyValue) -> Option<Arc<Value>> {
    decode_with_rv(&kv.value, kv.mod_revision).map(Arc::new)
}
