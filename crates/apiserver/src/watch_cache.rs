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
use k8rs_store::{Event, Revision, Store};
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

/// One object as the cache keeps it: its JSON (with `metadata.resourceVersion`), shared by
/// every LIST, GET and watch event that sends it, plus its labels for label selectors.
/// Parsed `serde_json::Value`s took about four times the JSON's size; objects are parsed
/// again only where a caller needs fields (field selectors, conversion, tables, admission).
pub struct CachedObject {
    json: bytes::Bytes,
    labels: Box<[(Box<str>, Box<str>)]>,
}

impl std::fmt::Debug for CachedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedObject")
            .field("json", &String::from_utf8_lossy(&self.json))
            .finish()
    }
}

/// The part of `metadata` the cache indexes.
#[derive(serde::Deserialize)]
struct MetaHead<'a> {
    #[serde(borrow, default)]
    labels: Option<BTreeMap<std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>>>,
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<serde::de::IgnoredAny>,
}

impl CachedObject {
    /// An object from a parsed value (serialised here).
    pub fn from_value(v: &Value) -> CachedObject {
        let labels = v
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        CachedObject {
            json: serde_json::to_vec(v).unwrap_or_default().into(),
            labels,
        }
    }

    /// A store value at revision `rev`: `metadata.resourceVersion` is spliced into the
    /// stored JSON (which never holds one) without parsing the whole object into a tree.
    pub fn decode(stored: &[u8], rev: Revision) -> Option<CachedObject> {
        if let Some(start) = top_level_object_start(stored, b"metadata") {
            let mut de = serde_json::Deserializer::from_slice(&stored[start..]);
            if let Ok(head) = <MetaHead as serde::Deserialize>::deserialize(&mut de) {
                if head.resource_version.is_none() {
                    let rv = format!("\"resourceVersion\":\"{rev}\"");
                    let rest = &stored[start + 1..];
                    let empty = rest
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .is_some_and(|b| *b == b'}');
                    let mut json = Vec::with_capacity(stored.len() + rv.len() + 1);
                    json.extend_from_slice(&stored[..=start]);
                    json.extend_from_slice(rv.as_bytes());
                    if !empty {
                        json.push(b',');
                    }
                    json.extend_from_slice(rest);
                    let labels = head
                        .labels
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (Box::from(&*k), Box::from(&*v)))
                        .collect();
                    return Some(CachedObject {
                        json: json.into(),
                        labels,
                    });
                }
            }
        }
        // Anything unusual takes the long way round.
        decode_with_rv(stored, rev).map(|v| CachedObject::from_value(&v))
    }

    /// The object's JSON.
    pub fn json(&self) -> &bytes::Bytes {
        &self.json
    }

    /// The object parsed (a fresh tree the caller owns).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":…}` cut
    /// from the cached JSON without parsing it (metadata-only lists and watches, which the
    /// garbage collector and `kubectl` use).
    pub fn partial_metadata_json(&self) -> Vec<u8> {
        const HEAD: &[u8] =
            br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#;
        let meta = top_level_object_start(&self.json, b"metadata")
            .and_then(|start| Some(&self.json[start..value_end(&self.json, start)?]))
            .unwrap_or(b"{}");
        let mut out = Vec::with_capacity(HEAD.len() + meta.len() + 1);
        out.extend_from_slice(HEAD);
        out.extend_from_slice(meta);
        out.push(b'}');
        out
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// Approximate heap size, for metrics and tests.
    pub fn size(&self) -> usize {
        self.json.len()
            + self
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 32)
                .sum::<usize>()
    }
}

/// The end (exclusive) of the JSON object or array starting at `start`.
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where the value of the top-level `key` starts in a JSON object, if that value is an
/// object (`{`). A byte scanner: strings (with escapes) are skipped, depth is tracked, and
/// only keys of the outermost object are compared.
fn top_level_object_start(json: &[u8], key: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut expect_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < json.len() {
                    match json[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if depth == 1 && expect_key {
                    expect_key = false;
                    if json.get(start..i) == Some(key) {
                        let mut j = i + 1;
                        while json.get(j).is_some_and(u8::is_ascii_whitespace) {
                            j += 1;
                        }
                        if json.get(j) != Some(&b':') {
                            return None;
                        }
                        j += 1;
                        while json.get(j).is_some_and(u8::is_ascii_whitespace) {
                            j += 1;
                        }
                        return (json.get(j) == Some(&b'{')).then_some(j);
                    }
                }
            }
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One change to one object.
#[derive(Debug)]
pub struct CacheEvent {
    /// Added / Modified / Deleted.
    pub type_: EventType,
    /// The store key.
    pub key: String,
    /// The object after the change (for deletions: the last state, with the deletion's RV).
    pub object: Arc<CachedObject>,
    /// The object before the change (modifications and deletions), shared with the cache.
    pub prev: Option<Arc<CachedObject>>,
    /// Revision of the change.
    pub revision: Revision,
}

struct ResourceState {
    objects: BTreeMap<String, Arc<CachedObject>>,
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
    pub objects: Vec<Arc<CachedObject>>,
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
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
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

    fn reset(&self, objects: BTreeMap<String, Arc<CachedObject>>, revision: Revision) {
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
        let mut per: HashMap<String, BTreeMap<String, Arc<CachedObject>>> = HashMap::new();
        for kv in kvs {
            if let Some(cache) = self.resource_for_key(&kv.key) {
                if let Some(v) = CachedObject::decode(&kv.value, kv.mod_revision) {
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
                let Some(obj) = CachedObject::decode(&kv.value, kv.mod_revision) else {
                    return;
                };
                // The cache holds exactly the previous state (events apply in order):
                // share it rather than decoding the store's copy again.
                let prev_obj = cache.get(&kv.key).or_else(|| {
                    prev.as_ref()
                        .and_then(|p| CachedObject::decode(&p.value, p.mod_revision).map(Arc::new))
                });
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
                }
            }
            Event::Delete { prev, revision } => {
                // The last state, at the deletion's revision.
                let Some(obj) = CachedObject::decode(&prev.value, revision) else {
                    return;
                };
                let prev_obj = cache
                    .get(&prev.key)
                    .or_else(|| CachedObject::decode(&prev.value, prev.mod_revision).map(Arc::new));
                CacheEvent {
                    type_: EventType::Deleted,
                    key: prev.key,
                    object: Arc::new(obj),
                    prev: prev_obj,
                    revision,
                }
            }
        };
        cache.apply(cache_ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The spliced encoding parses to what decoding and setting the RV on a tree gives.
    fn check(stored: &Value) {
        let bytes = serde_json::to_vec(stored).unwrap();
        let cached = CachedObject::decode(&bytes, 42).expect("decodes");
        assert_eq!(
            cached.value(),
            decode_with_rv(&bytes, 42).unwrap(),
            "{stored}"
        );
        if stored.get("metadata").is_some_and(Value::is_object) {
            // Spliced, not re-serialised: the RV leads the metadata.
            let text = String::from_utf8_lossy(cached.json());
            assert!(
                text.contains(r#""metadata":{"resourceVersion":"42""#),
                "{text}"
            );
        }
    }

    #[test]
    fn decode_splices_the_resource_version_into_metadata() {
        check(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"app": "x"}}, "spec": {}}),
        );
        check(&json!({"kind": "Namespace", "metadata": {}}));
        check(&json!({"kind": "ConfigMap"}));
        // Keys named `metadata` below the top level and quotes in strings are skipped.
        check(&json!({
            "data": {"metadata": "{\"metadata\": 1}", "x\"y": "\\"},
            "items": [{"metadata": {"name": "inner"}}],
            "metadata": {"name": "outer", "annotations": {"a": "}\"{"}},
        }));
        let bytes = br#"{ "kind" : "Pod" , "metadata" : { "name" : "w" } }"#;
        let cached = CachedObject::decode(bytes, 7).unwrap();
        assert_eq!(cached.value()["metadata"]["resourceVersion"], "7");
        assert_eq!(cached.value()["metadata"]["name"], "w");
    }

    #[test]
    fn partial_metadata_is_cut_from_the_json() {
        let stored = json!({"kind": "Pod", "spec": {"x": "}{"}, "metadata": {"name": "a", "annotations": {"q": "\"}"}}, "status": {}});
        let cached = CachedObject::decode(&serde_json::to_vec(&stored).unwrap(), 5).unwrap();
        let partial: Value = serde_json::from_slice(&cached.partial_metadata_json()).unwrap();
        assert_eq!(
            partial,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"name": "a", "resourceVersion": "5", "annotations": {"q": "\"}"}}})
        );
    }

    #[test]
    fn decode_keeps_labels_for_selectors() {
        let stored = json!({"metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}}});
        let cached = CachedObject::decode(&serde_json::to_vec(&stored).unwrap(), 3).unwrap();
        // The fast path (splice, not a re-serialised tree) put the RV first.
        assert!(
            cached
                .json()
                .starts_with(br#"{"metadata":{"resourceVersion":"3","name":"a""#),
            "{cached:?}"
        );
        assert_eq!(cached.label("app"), Some("web"));
        assert_eq!(cached.label("tier"), Some("front"));
        assert_eq!(cached.label("other"), None);
        let from_value = CachedObject::from_value(&cached.value());
        assert_eq!(from_value.label("app"), Some("web"));
    }

    #[test]
    fn a_stored_resource_version_is_replaced_not_duplicated() {
        let stored = json!({"metadata": {"name": "a", "resourceVersion": "1"}});
        let cached = CachedObject::decode(&serde_json::to_vec(&stored).unwrap(), 9).unwrap();
        let text = String::from_utf8(cached.json().to_vec()).unwrap();
        assert_eq!(text.matches("resourceVersion").count(), 1, "{text}");
        assert_eq!(cached.value()["metadata"]["resourceVersion"], "9");
    }
}
