//! The scheduler's view of nodes and the pods on them (upstream's `internal/cache`).
//!
//! Pods enter when the informer sees them bound, or earlier when the scheduler *assumes*
//! them: a pod chosen for a node counts against that node at once, while its binding is
//! still being written, so the next cycle does not hand out the same room twice. The
//! informer's bound pod confirms the assumption; a pod whose binding finished but never
//! showed up is dropped after [`ASSUMED_POD_TTL`].
//!
//! Each cycle works on a [`Snapshot`]; updating it copies only the nodes that changed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8rs_client::ObjectKey;
use k8s_openapi::api::core::v1::Node;

use crate::framework::{NodeInfo, PodInfo};
use crate::selectors::Labels;

/// How long an assumed pod whose binding finished waits for the informer to confirm it.
pub const ASSUMED_POD_TTL: Duration = Duration::from_secs(60);

struct PodState {
    pod: Arc<PodInfo>,
    node: String,
    assumed: bool,
    deadline: Option<Instant>,
}

/// Nodes with their pods, including assumed ones.
#[derive(Default)]
pub struct Cache {
    nodes: HashMap<String, Arc<NodeInfo>>,
    /// Node names in the order they appeared (snapshots keep it, so the round-robin start
    /// of the filter phase walks every node in turn).
    order: Vec<String>,
    pods: HashMap<ObjectKey, PodState>,
    namespaces: Arc<HashMap<String, Labels>>,
    generation: u64,
    dirty: HashSet<String>,
    node_set_changed: bool,
    images_changed: bool,
}

/// The nodes one scheduling cycle sees.
#[derive(Default, Clone)]
pub struct Snapshot {
    /// Nodes with a Node object, in cache order.
    pub nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Nodes with at least one pod that has an affinity term.
    pub have_pods_with_affinity: Vec<Arc<NodeInfo>>,
    /// Nodes with at least one pod that has a required anti-affinity term.
    pub have_pods_with_required_anti_affinity: Vec<Arc<NodeInfo>>,
    /// Image name → number of nodes that have it (ImageLocality's spread factor).
    pub image_nodes: Arc<HashMap<String, usize>>,
    /// Namespace labels (for namespace selectors of affinity terms).
    pub namespaces: Arc<HashMap<String, Labels>>,
    generation: u64,
}

impl Snapshot {
    /// The node called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|i| &self.nodes[*i])
    }

    /// A snapshot of exactly these nodes (tests and benchmarks).
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Snapshot {
        let mut cache = Cache::default();
        for n in nodes {
            let name = n.name().to_string();
            cache.order.push(name.clone());
            cache.nodes.insert(name, Arc::new(n));
        }
        cache.node_set_changed = true;
        cache.images_changed = true;
        cache.generation = 1;
        let mut s = Snapshot::default();
        cache.update_snapshot(&mut s);
        s
    }
}

impl Cache {
    fn touch(&mut self, name: &str) -> &mut NodeInfo {
        self.generation += 1;
        self.dirty.insert(name.to_string());
        if !self.nodes.contains_key(name) {
            self.nodes
                .insert(name.to_string(), Arc::new(NodeInfo::default()));
        }
        let info = Arc::make_mut(self.nodes.get_mut(name).unwrap());
        info.generation = self.generation;
        info
    }

    /// A node appeared or changed.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let known = self.nodes.get(&name).is_some_and(|n| n.node.is_some());
        if !known {
            self.order.push(name.clone());
            self.node_set_changed = true;
        }
        let info = self.touch(&name);
        let old_images = info.images.clone();
        info.set_node(node);
        if *info.images != *old_images {
            self.images_changed = true;
        } else {
            info.images = old_images;
        }
    }

    /// A node went away; its pods (if any remain) stay until they go.
    pub fn remove_node(&mut self, name: &str) {
        self.order.retain(|n| n != name);
        self.node_set_changed = true;
        self.images_changed = true;
        let info = self.touch(name);
        info.node = None;
        if info.pods.is_empty() {
            self.nodes.remove(name);
        }
    }

    /// Records a namespace's labels (`None`: it was deleted).
    pub fn set_namespace(&mut self, name: &str, labels: Option<Labels>) {
        let map = Arc::make_mut(&mut self.namespaces);
        match labels {
            Some(l) => map.insert(name.to_string(), l),
            None => map.remove(name),
        };
        self.generation += 1;
    }

    /// Whether the pod is assumed and not yet confirmed by the informer.
    pub fn is_assumed(&self, key: &ObjectKey) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    /// Counts `pod` on `node` before its binding is written.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        let key = pod.key.clone();
        self.touch(node).add_pod(pod.clone());
        self.pods.insert(
            key,
            PodState {
                pod,
                node: node.to_string(),
                assumed: true,
                deadline: None,
            },
        );
    }

    /// The binding was written: the assumption now expires unless confirmed.
    pub fn finish_binding(&mut self, key: &ObjectKey) {
        if let Some(p) = self.pods.get_mut(key) {
            if p.assumed {
                p.deadline = Some(Instant::now() + ASSUMED_POD_TTL);
            }
        }
    }

    /// The binding failed: undo the assumption.
    pub fn forget(&mut self, key: &ObjectKey) {
        if self.pods.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// A bound pod seen by the informer (added or changed; confirms an assumption).
    pub fn set_pod(&mut self, pod: Arc<PodInfo>) {
        let node = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let key = pod.key.clone();
        if let Some(old) = self.pods.remove(&key) {
            let node_name = old.node.clone();
            let info = self.touch(&node_name);
            info.remove_pod(&key);
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(&node_name);
            }
        }
        self.touch(&node).add_pod(pod.clone());
        self.pods.insert(
            key,
            PodState {
                pod,
                node,
                assumed: false,
                deadline: None,
            },
        );
    }

    /// A pod went away (deleted, finished, or its assumption undone).
    pub fn remove_pod(&mut self, key: &ObjectKey) {
        let Some(old) = self.pods.remove(key) else {
            return;
        };
        let info = self.touch(&old.node);
        info.remove_pod(key);
        if info.node.is_none() && info.pods.is_empty() {
            self.nodes.remove(&old.node);
        }
    }

    /// The cached state of a pod and its node.
    pub fn pod(&self, key: &ObjectKey) -> Option<(Arc<PodInfo>, String)> {
        self.pods.get(key).map(|p| (p.pod.clone(), p.node.clone()))
    }

    /// Drops assumed pods whose binding finished long ago but never showed up.
    pub fn cleanup_expired(&mut self, now: Instant) -> usize {
        let expired: Vec<ObjectKey> = self
            .pods
            .iter()
            .filter(|(_, p)| p.assumed && p.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            tracing::warn!(pod = %key, "assumed pod expired: its binding never showed up");
            self.remove_pod(key);
        }
        expired.len()
    }

    /// Number of nodes with a Node object.
    pub fn node_count(&self) -> usize {
        self.order.len()
    }

    /// Brings `snapshot` up to date, copying only the nodes that changed.
    pub fn update_snapshot(&mut self, snapshot: &mut Snapshot) {
        if snapshot.generation == self.generation {
            return;
        }
        if self.node_set_changed {
            snapshot.nodes = self
                .order
                .iter()
                .filter_map(|n| self.nodes.get(n))
                .filter(|n| n.node.is_some())
                .cloned()
                .collect();
            snapshot.index = snapshot
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name().to_string(), i))
                .collect();
        } else {
            for name in &self.dirty {
                if let (Some(i), Some(info)) = (snapshot.index.get(name), self.nodes.get(name)) {
                    snapshot.nodes[*i] = info.clone();
                }
            }
        }
        if self.node_set_changed || !self.dirty.is_empty() {
            snapshot.have_pods_with_affinity = snapshot
                .nodes
                .iter()
                .filter(|n| !n.pods_with_affinity.is_empty())
                .cloned()
                .collect();
            snapshot.have_pods_with_required_anti_affinity = snapshot
                .nodes
                .iter()
                .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
                .cloned()
                .collect();
        }
        if self.images_changed {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for n in &snapshot.nodes {
                for image in n.images.keys() {
                    *counts.entry(image.clone()).or_default() += 1;
                }
            }
            snapshot.image_nodes = Arc::new(counts);
            self.images_changed = false;
        }
        snapshot.namespaces = self.namespaces.clone();
        self.dirty.clear();
        self.node_set_changed = false;
        snapshot.generation = self.generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: Option<&str>) -> Arc<PodInfo> {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}]}}))
        .unwrap();
        p.spec.as_mut().unwrap().node_name = node.map(String::from);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        cache.set_node(node("n1"));
        cache.set_node(node("n2"));
        cache.assume(pod("a", Some("n1")), "n1");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 1000);
        assert!(cache.is_assumed(&ObjectKey::new("default", "a")));

        // The informer confirms the binding.
        cache.set_pod(pod("a", Some("n1")));
        assert!(!cache.is_assumed(&ObjectKey::new("default", "a")));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().pods.len(), 1);

        cache.assume(pod("b", Some("n2")), "n2");
        cache.forget(&ObjectKey::new("default", "b"));
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.get("n2").unwrap().requested.milli_cpu, 0);
        assert_eq!(snap.nodes.len(), 2);
    }

    #[test]
    fn finished_bindings_expire_when_never_confirmed() {
        let mut cache = Cache::default();
        cache.set_node(node("n1"));
        cache.assume(pod("a", Some("n1")), "n1");
        assert_eq!(
            cache.cleanup_expired(Instant::now() + ASSUMED_POD_TTL * 2),
            0
        );
        cache.finish_binding(&ObjectKey::new("default", "a"));
        assert_eq!(
            cache.cleanup_expired(Instant::now() + ASSUMED_POD_TTL * 2),
            1
        );
    }

    #[test]
    fn removed_nodes_leave_the_snapshot() {
        let mut cache = Cache::default();
        let mut snap = Snapshot::default();
        cache.set_node(node("n1"));
        cache.set_node(node("n2"));
        cache.update_snapshot(&mut snap);
        cache.remove_node("n1");
        cache.update_snapshot(&mut snap);
        assert_eq!(snap.nodes.len(), 1);
        assert!(snap.get("n1").is_none());
        assert!(snap.get("n2").is_some());
    }
}
