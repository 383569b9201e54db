//! Shared informers: one watch and one cache per resource type per process.
//!
//! Upstream components build every controller on client-go's shared informer factory so
//! that ten controllers watching pods hold one copy of the pods, not ten. [`Informers`]
//! is that factory. Each [`Informer`] runs a `kube::runtime::watcher` (list, then watch,
//! re-listing with back-off after errors), keeps the objects in memory and calls the
//! registered handlers with every [`Change`], deletions included.
//!
//! kube-runtime's own shared reflector streams do not report deletions, which the
//! ReplicaSet, endpoints and garbage-collector logic all depend on; hence this layer.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::api::{Api, ResourceExt};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// `namespace/name` (or just `name` for cluster-scoped objects): the work-queue key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ObjectKey {
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a cluster-scoped object.
    pub fn cluster(name: impl Into<String>) -> Self {
        ObjectKey::new("", name)
    }

    /// The key of any object.
    pub fn of<K: Resource>(obj: &K) -> Self {
        ObjectKey::new(
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One change seen by an informer.
#[derive(Debug)]
pub enum Change<K> {
    /// Added (`old` is `None`) or modified.
    Applied {
        /// The previous cached state, if the object was known.
        old: Option<Arc<K>>,
        /// The new state.
        new: Arc<K>,
    },
    /// Deleted; the last state the informer knew.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object after the change (for deletions, its last known state).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied { new, .. } => new,
            Change::Deleted(obj) => obj,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

struct Shared<K> {
    objects: RwLock<HashMap<ObjectKey, Arc<K>>>,
    /// Held for reading while a change is applied and dispatched, and for writing while
    /// a handler is added: a new handler sees every object exactly once, replayed or live.
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

/// The cache of one resource type, shared by every consumer in the process.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + fmt::Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
{
    fn start(api: Api<K>, config: watcher::Config) -> Self {
        let (synced, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            objects: RwLock::new(HashMap::new()),
            handlers: RwLock::new(Vec::new()),
            synced,
        });
        let informer = Informer {
            shared: shared.clone(),
        };
        let weak = Arc::downgrade(&shared);
        drop(shared);
        tokio::spawn(async move {
            let mut events = watcher(api, config).default_backoff().boxed();
            let mut relist: Option<HashMap<ObjectKey, Arc<K>>> = None;
            while let Some(event) = events.next().await {
                let Some(shared) = weak.upgrade() else {
                    return;
                };
                match event {
                    Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                    Ok(watcher::Event::InitApply(obj)) => {
                        let obj = strip(obj);
                        relist
                            .get_or_insert_with(HashMap::new)
                            .insert(ObjectKey::of(&obj), Arc::new(obj));
                    }
                    Ok(watcher::Event::InitDone) => {
                        shared.replace_all(relist.take().unwrap_or_default());
                        shared.synced.send_replace(true);
                    }
                    Ok(watcher::Event::Apply(obj)) => shared.apply(Arc::new(strip(obj))),
                    Ok(watcher::Event::Delete(obj)) => shared.delete(&ObjectKey::of(&obj)),
                    Err(e) => {
                        tracing::debug!(error = %e, kind = %K::kind(&Default::default()), "watch failed; retrying")
                    }
                }
            }
        });
        informer
    }

    /// The cached object, if any.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.shared.objects.read().unwrap().get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// The cached objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.namespace == namespace)
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// The cached objects `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.shared
            .objects
            .read()
            .unwrap()
            .values()
            .filter(|obj| keep(obj))
            .cloned()
            .collect()
    }

    /// Calls `handler` for every change from now on, after replaying the cached objects
    /// as additions.
    pub fn add_handler(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        let mut handlers = self.shared.handlers.write().unwrap();
        for obj in self.shared.objects.read().unwrap().values() {
            handler(&Change::Applied {
                old: None,
                new: obj.clone(),
            });
        }
        handlers.push(Box::new(handler));
    }

    /// Whether the first complete list has arrived.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits for the first complete list.
    pub async fn wait_synced(&self) {
        let mut synced = self.shared.synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }
}

impl<K> Shared<K> {
    fn apply(&self, new: Arc<K>)
    where
        K: Resource,
    {
        let handlers = self.handlers.read().unwrap();
        let key = ObjectKey::of(new.as_ref());
        let old = self.objects.write().unwrap().insert(key, new.clone());
        let change = Change::Applied { old, new };
        for handler in handlers.iter() {
            handler(&change);
        }
    }

    fn delete(&self, key: &ObjectKey) {
        let handlers = self.handlers.read().unwrap();
        let Some(old) = self.objects.write().unwrap().remove(key) else {
            return;
        };
        let change = Change::Deleted(old);
        for handler in handlers.iter() {
            handler(&change);
        }
    }

    /// A re-list: report what changed, appeared or vanished since the last state.
    fn replace_all(&self, fresh: HashMap<ObjectKey, Arc<K>>)
    where
        K: Resource,
    {
        let handlers = self.handlers.read().unwrap();
        let mut changes = Vec::new();
        {
            let mut objects = self.objects.write().unwrap();
            for (key, new) in &fresh {
                let old = objects.get(key).cloned();
                let unchanged = old
                    .as_ref()
                    .is_some_and(|old| old.meta().resource_version == new.meta().resource_version);
                if !unchanged {
                    changes.push(Change::Applied {
                        old,
                        new: new.clone(),
                    });
                }
            }
            for (key, old) in objects.iter() {
                if !fresh.contains_key(key) {
                    changes.push(Change::Deleted(old.clone()));
                }
            }
            *objects = fresh;
        }
        for change in &changes {
            for handler in handlers.iter() {
                handler(change);
            }
        }
    }
}

/// Managed fields are never read by components and are often the largest part of an
/// object; upstream's components drop them from their caches too.
fn strip<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().managed_fields = None;
    obj
}

/// The process-wide informer factory: the first request for a type starts its watch;
/// later requests share it.
pub struct Informers {
    client: kube::Client,
    /// Keyed by type and field selector (empty for the cluster-wide informer).
    informers: Mutex<HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>>,
}

impl Informers {
    /// A factory whose informers watch through `client`.
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Informers {
            client,
            informers: Mutex::new(HashMap::new()),
        })
    }

    /// The client the informers use (for writes by their consumers).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The cluster-wide informer for `K`, started on first use.
    pub fn get<K>(&self) -> Informer<K>
    where
        K: Resource + Clone + fmt::Debug + DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        self.get_selected::<K>("")
    }

    /// An informer for the `K`s matching a field selector (the kubelet's
    /// `spec.nodeName=<node>` pods, a node's own `metadata.name=<node>`), started on first
    /// use and shared by every consumer asking for the same selector. An empty selector
    /// is the cluster-wide informer of [`get`](Informers::get).
    pub fn get_selected<K>(&self, field_selector: &str) -> Informer<K>
    where
        K: Resource + Clone + fmt::Debug + DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mut informers = self.informers.lock().unwrap();
        informers
            .entry((TypeId::of::<K>(), field_selector.to_string()))
            .or_insert_with(|| {
                let mut config = watcher::Config::default();
                if !field_selector.is_empty() {
                    config = config.fields(field_selector);
                }
                Box::new(Informer::<K>::start(Api::all(self.client.clone()), config))
            })
            .downcast_ref::<Informer<K>>()
            .expect("informers are keyed by their type")
            .clone()
    }
}

/// The name of an object, for logs.
pub fn display_name<K: Resource>(obj: &K) -> String {
    ObjectKey::of(obj).to_string()
}

/// Whether `obj` carries a deletion timestamp.
pub fn is_deleting<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

/// The uid of an object, or an empty string.
pub fn uid<K: ResourceExt>(obj: &K) -> String {
    obj.uid().unwrap_or_default()
}
