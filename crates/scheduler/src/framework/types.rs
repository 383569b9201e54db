//! What plugins look at: a pod with everything the plugins need pre-computed
//! ([`PodInfo`]), and a node with the aggregate of the pods on it ([`NodeInfo`]), as
//! upstream's `framework/types.go`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8rs_client::ObjectKey;
use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint, WeightedPodAffinityTerm};

use crate::resources::{pod_requests, Resource};
use crate::selectors::{Labels, Selector};

/// A required pod (anti-)affinity term, compiled.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    /// Namespaces named by the term (the pod's own when neither names nor selector given).
    pub namespaces: HashSet<String>,
    /// Namespaces selected by labels (selects nothing when the term has no selector).
    pub namespace_selector: Selector,
    /// Which pods the term is about.
    pub selector: Selector,
    /// The node label whose value defines the domain.
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(pod_namespace: &str, term: &PodAffinityTerm) -> AffinityTerm {
        let mut namespaces: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespace_selector = match &term.namespace_selector {
            Some(sel) => Selector::from_label_selector(Some(sel)),
            None => Selector::nothing(),
        };
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(pod_namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector: Selector::from_label_selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether `pod` is one of the pods this term is about (upstream's `AffinityTerm.Matches`).
    pub fn matches(&self, pod: &Pod, ns_labels: &HashMap<String, Labels>) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let in_namespace = self.namespaces.contains(ns)
            || (!self.namespace_selector.is_nothing()
                && (self.namespace_selector.is_everything()
                    || self.namespace_selector.matches(ns_labels.get(ns))));
        in_namespace && self.selector.matches(pod.metadata.labels.as_ref())
    }
}

/// A preferred (weighted) affinity term.
#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    /// The term.
    pub term: AffinityTerm,
    /// 1–100.
    pub weight: i64,
}

/// A host port a pod claims on its node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP` when unset.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Upstream's `HostPortInfo.CheckConflict`: the wildcard address clashes with any.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod with the facts plugins need, computed once.
#[derive(Debug)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: ObjectKey,
    /// Requests (`PodRequests`).
    pub requests: Resource,
    /// Requests with defaults for unset CPU and memory (for scoring).
    pub non_zero_requests: Resource,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
    /// Required pod affinity terms.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod anti-affinity terms.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity terms.
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    /// Preferred pod anti-affinity terms.
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Host ports of every container.
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    /// Computes the facts for `pod`.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(&ns, t))
                .collect()
        };
        let preferred = |terms: Option<&Vec<WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedAffinityTerm {
                    term: AffinityTerm::new(&ns, &t.pod_affinity_term),
                    weight: t.weight as i64,
                })
                .collect()
        };
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let host_ports = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.is_some_and(|p| p > 0))
            .map(|p| HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_string()),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port: p.host_port.unwrap_or(0),
            })
            .collect();
        PodInfo {
            key: ObjectKey::of(pod.as_ref()),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            required_affinity: required(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: required(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: preferred(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: preferred(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            host_ports,
            pod,
        }
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        &self.key.namespace
    }

    /// The pod's labels.
    pub fn labels(&self) -> Option<&Labels> {
        self.pod.metadata.labels.as_ref()
    }

    /// Whether the pod has any (anti-)affinity term that scoring of other pods must see.
    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    /// Whether the pod is being deleted.
    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// A node and the aggregate of the pods assigned (or assumed) to it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// `None` while pods name a node the informer has not delivered yet.
    pub node: Option<Arc<Node>>,
    /// Pods on the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// The pods with any affinity term (for InterPodAffinity scoring).
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// The pods with required anti-affinity (for InterPodAffinity filtering).
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum of the pods' requests with defaults for unset CPU and memory.
    pub non_zero_requested: Resource,
    /// The node's allocatable resources.
    pub allocatable: Resource,
    /// Image name (every tag and digest) → size in bytes, from `status.images`.
    pub images: Arc<HashMap<String, i64>>,
    /// Bumped on every change; snapshots copy only what changed.
    pub generation: u64,
}

impl NodeInfo {
    /// A node's info without pods.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo::default();
        info.set_node(node);
        info
    }

    /// Replaces the node object (allocatable and images follow it).
    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(status.and_then(|s| s.allocatable.as_ref()));
        let mut images = HashMap::new();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                images.insert(normalized_image_name(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.images = Arc::new(images);
        self.node = Some(node);
    }

    /// The node; only nodes with an object are in snapshots.
    pub fn node(&self) -> &Node {
        self.node.as_deref().expect("snapshot nodes have objects")
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.name.as_deref())
            .unwrap_or("")
    }

    /// The node's labels.
    pub fn labels(&self) -> Option<&Labels> {
        self.node.as_ref().and_then(|n| n.metadata.labels.as_ref())
    }

    /// The node's taints.
    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    /// Accounts for a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.allowed_pod_number += 1;
        self.non_zero_requested.milli_cpu += pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_requests.memory;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
    }

    /// Forgets a pod; whether it was here.
    pub fn remove_pod(&mut self, key: &ObjectKey) -> bool {
        let Some(i) = self.pods.iter().position(|p| &p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.pods_with_affinity.retain(|p| &p.key != key);
        self.pods_with_required_anti_affinity
            .retain(|p| &p.key != key);
        self.requested.sub(&pod.requests);
        self.requested.allowed_pod_number -= 1;
        self.non_zero_requested.milli_cpu -= pod.non_zero_requests.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_requests.memory;
        for port in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(i);
            }
        }
        true
    }
}

/// `nginx` and `docker.io/library/nginx:latest` are the same image (upstream's
/// ImageLocality normalises names the same way).
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}
