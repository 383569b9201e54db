//! The in-tree plugins, one module each (upstream's `framework/plugins/<name>/`), and the
//! registry that maps configuration names to constructors.

pub mod defaultpreemption;
pub mod imagelocality;
pub mod interpodaffinity;
pub mod nodeaffinity;
pub mod nodename;
pub mod nodeports;
pub mod noderesources;
pub mod nodeunschedulable;
pub mod podtopologyspread;
pub mod tainttoleration;

use std::sync::Arc;

use anyhow::bail;
use k8rs_client::{EventRecorder, Informers};
use serde_json::Value;

use crate::framework::Plugin;

/// What plugins may use beyond the pod and nodes: the API client and shared informers
/// (absent in unit tests).
#[derive(Clone, Default)]
pub struct Handle {
    /// Informers of the scheduler process (Services, ReplicaSets, PDBs, …).
    pub informers: Option<Arc<Informers>>,
    /// Events for victims of preemption.
    pub recorder: Option<EventRecorder>,
}

/// Names that configurations may enable but which are not framework plugins here: queue
/// order and binding are built into the queue and the binder, and SchedulingGates into
/// the queue's admission.
const BUILT_IN: &[&str] = &["PrioritySort", "DefaultBinder", "SchedulingGates"];

/// A null plugin for the built-in names: it implements no extension point.
struct BuiltIn(&'static str);

impl Plugin for BuiltIn {
    fn name(&self) -> &'static str {
        self.0
    }
}

/// Instantiates the plugin called `name` with its `pluginConfig` arguments.
pub fn new_plugin(
    name: &str,
    args: Option<&Value>,
    handle: &Handle,
) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(match name {
        "NodeName" => Arc::new(nodename::NodeName),
        "NodeUnschedulable" => Arc::new(nodeunschedulable::NodeUnschedulable),
        "NodeAffinity" => Arc::new(nodeaffinity::NodeAffinity),
        "TaintToleration" => Arc::new(tainttoleration::TaintToleration),
        "NodePorts" => Arc::new(nodeports::NodePorts),
        "NodeResourcesFit" => Arc::new(noderesources::Fit::new(args)?),
        "NodeResourcesBalancedAllocation" => Arc::new(noderesources::BalancedAllocation::default()),
        "ImageLocality" => Arc::new(imagelocality::ImageLocality),
        "InterPodAffinity" => Arc::new(interpodaffinity::InterPodAffinity::new(args)),
        "PodTopologySpread" => Arc::new(podtopologyspread::PodTopologySpread::new(args, handle)?),
        "DefaultPreemption" => Arc::new(defaultpreemption::DefaultPreemption::new(handle)),
        other => match BUILT_IN.iter().find(|b| **b == other) {
            Some(b) => Arc::new(BuiltIn(b)),
            None => bail!("plugin {other:?} does not exist"),
        },
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Pods and nodes from JSON for plugin tests.

    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};

    use crate::cache::Snapshot;
    use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo};

    fn merge(base: &mut Value, extra: Value) {
        match (base, extra) {
            (Value::Object(b), Value::Object(e)) => {
                for (k, v) in e {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, e) => *b = e,
        }
    }

    /// A pod in `default` called `p` with this spec.
    pub fn pod(spec: Value) -> PodInfo {
        named_pod("p", json!({}), spec)
    }

    /// A pod with a name, labels and spec.
    pub fn named_pod(name: &str, labels: Value, spec: Value) -> PodInfo {
        let p: Pod =
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default",
            "labels": labels}, "spec": spec}))
            .unwrap();
        PodInfo::new(Arc::new(p))
    }

    /// A node with generous allocatable, patched by `extra`.
    pub fn node(name: &str, extra: Value) -> NodeInfo {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}});
        merge(&mut v, extra);
        let n: Node = serde_json::from_value(v).unwrap();
        NodeInfo::new(Arc::new(n))
    }

    /// A node running `pods`.
    pub fn node_with_pods(name: &str, extra: Value, pods: Vec<PodInfo>) -> NodeInfo {
        let mut n = node(name, extra);
        for p in pods {
            n.add_pod(Arc::new(p));
        }
        n
    }

    /// PreScore, Score and NormalizeScore of one plugin over `nodes`.
    pub fn score_all(plugin: &dyn Plugin, pod: &PodInfo, nodes: &[NodeInfo]) -> Vec<i64> {
        let snapshot = Snapshot::from_nodes(nodes.to_vec());
        let mut state = CycleState::default();
        if let Some(pf) = plugin.as_pre_filter() {
            pf.pre_filter(&mut state, pod, &snapshot);
        }
        if let Some(ps) = plugin.as_pre_score() {
            if ps
                .pre_score(&mut state, pod, &snapshot, &snapshot.nodes)
                .code
                == crate::framework::Code::Skip
            {
                return vec![0; nodes.len()];
            }
        }
        let s = plugin.as_score().unwrap();
        let mut scores: Vec<i64> = snapshot
            .nodes
            .iter()
            .map(|n| s.score(&state, pod, n))
            .collect();
        s.normalize(&state, pod, &mut scores);
        scores
    }
}
