//! Informer handlers: pending pods feed the queue, bound pods and nodes feed the cache,
//! and changes that may help waiting pods move them back (upstream's `eventhandlers.go`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8rs_client::{Change, Informer, ObjectKey};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};

use crate::cache::Cache;
use crate::config::DEFAULT_SCHEDULER_NAME;
use crate::framework::{ClusterEvent, Framework, PodInfo};
use crate::queue::SchedulingQueue;

/// What the handlers share with the scheduling loop.
pub(crate) struct Shared {
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<Mutex<Cache>>,
    pub profiles: Arc<HashMap<String, Arc<Framework>>>,
}

pub(crate) fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

fn assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn nominated_node(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Shared {
    fn move_all(&self, event: ClusterEvent) {
        let profiles = self.profiles.clone();
        self.queue.move_all(move |pod, plugins| {
            profiles
                .get(scheduler_name(&pod.pod))
                .is_some_and(|f| f.worth_retrying(plugins, event))
        });
    }

    fn on_pod(&self, change: &Change<Pod>) {
        match change {
            Change::Applied { old, new } => {
                let key = ObjectKey::of(new.as_ref());
                if assigned(new) {
                    let newly = old.as_ref().is_none_or(|o| !assigned(o));
                    if newly {
                        self.queue.delete(&key);
                    }
                    if terminal(new) {
                        self.cache.lock().unwrap().remove_pod(&key);
                        self.move_all(ClusterEvent::AssignedPodDelete);
                        return;
                    }
                    self.cache
                        .lock()
                        .unwrap()
                        .set_pod(Arc::new(PodInfo::new(new.clone())));
                    self.move_all(if newly {
                        ClusterEvent::AssignedPodAdd
                    } else {
                        ClusterEvent::AssignedPodUpdate
                    });
                    return;
                }
                if !self.profiles.contains_key(scheduler_name(new)) {
                    return;
                }
                if new.metadata.deletion_timestamp.is_some() || terminal(new) {
                    self.queue.delete(&key);
                    return;
                }
                let info = Arc::new(PodInfo::new(new.clone()));
                self.queue.nominate(info.clone(), nominated_node(new));
                match old {
                    None => self.queue.add(info),
                    Some(old) => {
                        let meaningful = old.spec != new.spec
                            || old.metadata.labels != new.metadata.labels
                            || old.metadata.annotations != new.metadata.annotations;
                        self.queue.update(info, meaningful)
                    }
                }
            }
            Change::Deleted(pod) => {
                let key = ObjectKey::of(pod.as_ref());
                if assigned(pod) {
                    self.cache.lock().unwrap().remove_pod(&key);
                    self.move_all(ClusterEvent::AssignedPodDelete);
                } else {
                    self.queue.delete(&key);
                    let mut cache = self.cache.lock().unwrap();
                    if cache.is_assumed(&key) {
                        cache.forget(&key);
                    }
                }
            }
        }
    }

    fn on_node(&self, change: &Change<Node>) {
        match change {
            Change::Applied { old: None, new } => {
                self.cache.lock().unwrap().set_node(new.clone());
                self.move_all(ClusterEvent::NodeAdd);
            }
            Change::Applied {
                old: Some(old),
                new,
            } => {
                self.cache.lock().unwrap().set_node(new.clone());
                for event in node_events(old, new) {
                    self.move_all(event);
                }
            }
            Change::Deleted(node) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.cache.lock().unwrap().remove_node(&name);
            }
        }
    }

    fn on_namespace(&self, change: &Change<Namespace>) {
        let ns = change.object();
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = match change {
            Change::Applied { new, .. } => Some(new.metadata.labels.clone().unwrap_or_default()),
            Change::Deleted(_) => None,
        };
        self.cache.lock().unwrap().set_namespace(&name, labels);
    }
}

/// Which scheduling-relevant aspects of a node changed (heartbeats change none).
fn node_events(old: &Node, new: &Node) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    if allocatable(old) != allocatable(new) {
        events.push(ClusterEvent::NodeAllocatableChange);
    }
    if old.metadata.labels != new.metadata.labels {
        events.push(ClusterEvent::NodeLabelChange);
    }
    let taints = |n: &Node| n.spec.as_ref().map(|s| (s.taints.clone(), s.unschedulable));
    if taints(old) != taints(new) {
        events.push(ClusterEvent::NodeTaintChange);
    }
    let conditions = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect::<Vec<_>>()
            })
    };
    if conditions(old) != conditions(new) {
        events.push(ClusterEvent::NodeConditionChange);
    }
    events
}

/// Registers the handlers on the informers.
pub(crate) fn register(
    shared: Arc<Shared>,
    pods: &Informer<Pod>,
    nodes: &Informer<Node>,
    namespaces: &Informer<Namespace>,
) {
    let s = shared.clone();
    namespaces.add_handler(move |c| s.on_namespace(c));
    let s = shared.clone();
    nodes.add_handler(move |c| s.on_node(c));
    let s = shared;
    pods.add_handler(move |c| s.on_pod(c));
}
