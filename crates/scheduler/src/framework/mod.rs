//! The scheduling framework, as upstream's `framework/interface.go`: extension points a
//! plugin may implement, the [`Status`] each returns, the per-cycle [`CycleState`], and
//! the [`Framework`] that runs a profile's plugins without knowing their names.

pub mod runtime;
pub mod types;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

pub use runtime::Framework;
pub use types::{NodeInfo, PodInfo};

use crate::cache::Snapshot;

/// Highest score a Score plugin gives a node (after normalisation).
pub const MAX_NODE_SCORE: i64 = 100;

/// How an extension point ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Go on.
    Success,
    /// Something broke (not the pod's fault); the pod is retried after back-off.
    Error,
    /// The node does not fit now; preemption may change that.
    Unschedulable,
    /// The node does not fit and preemption cannot change that.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod (PreFilter, PreScore).
    Skip,
}

/// The result of one plugin call, with upstream's reason strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// What happened.
    pub code: Code,
    /// Reasons, each counted in the `0/N nodes are available` histogram.
    pub reasons: Vec<String>,
    /// The plugin that failed (set by the framework).
    pub plugin: &'static str,
}

impl Status {
    /// Success.
    pub fn success() -> Status {
        Status::new(Code::Success, Vec::new())
    }

    /// A status with reasons.
    pub fn new(code: Code, reasons: Vec<String>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    /// `Unschedulable` with one reason.
    pub fn unschedulable(reason: impl Into<String>) -> Status {
        Status::new(Code::Unschedulable, vec![reason.into()])
    }

    /// `UnschedulableAndUnresolvable` with one reason.
    pub fn unresolvable(reason: impl Into<String>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, vec![reason.into()])
    }

    /// `Error` with one reason.
    pub fn error(reason: impl Into<String>) -> Status {
        Status::new(Code::Error, vec![reason.into()])
    }

    /// `Skip`.
    pub fn skip() -> Status {
        Status::new(Code::Skip, Vec::new())
    }

    /// Whether the code is `Success`.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Whether the code is one of the two unschedulable codes.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    /// The reasons joined as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }
}

/// Plugin state for one scheduling cycle (cloned for preemption's what-if runs).
pub trait StateData: Any + Send + Sync {
    /// A deep copy.
    fn clone_data(&self) -> Box<dyn StateData>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// What plugins store between extension points of one cycle, keyed by plugin.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
    /// Plugins whose PreFilter returned Skip: their Filter is not run.
    pub skip_filter: Vec<&'static str>,
    /// Plugins whose PreScore returned Skip: their Score is not run.
    pub skip_score: Vec<&'static str>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}

impl CycleState {
    /// Stores `value` under `key`.
    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// The value under `key`, if it has type `T`.
    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data
            .get(key)
            .and_then(|v| (**v).as_any().downcast_ref())
    }

    /// The value under `key` for changing, if it has type `T`.
    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .get_mut(key)
            .and_then(|v| (**v).as_any_mut().downcast_mut())
    }
}

/// A change in the cluster that may make unschedulable pods schedulable (upstream's
/// `ClusterEvent`); plugins say which ones could undo their rejections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterEvent {
    /// A node appeared.
    NodeAdd,
    /// A node's allocatable resources grew.
    NodeAllocatableChange,
    /// A node's labels changed.
    NodeLabelChange,
    /// A node's taints or `spec.unschedulable` changed.
    NodeTaintChange,
    /// A node's conditions changed.
    NodeConditionChange,
    /// A pod was bound to a node.
    AssignedPodAdd,
    /// A bound pod changed (labels, or it shrank).
    AssignedPodUpdate,
    /// A bound pod went away.
    AssignedPodDelete,
}

/// Per-node outcome of the filter phase: the statuses of nodes that did not fit.
pub type NodeToStatus = HashMap<String, Status>;

/// Pods nominated to run on a node after preemption, by node name.
pub type Nominated = HashMap<String, Vec<Arc<PodInfo>>>;

/// What the PostFilter phase decided.
#[derive(Default, Debug)]
pub struct PostFilterResult {
    /// The node the pod is nominated to (after preemption).
    pub nominated_node: Option<String>,
}

/// Shared by every plugin: a name, the events that may undo its rejections, and
/// accessors for the extension points it implements.
pub trait Plugin: Send + Sync {
    /// Upstream's plugin name (`NodeResourcesFit`).
    fn name(&self) -> &'static str;
    /// Cluster events after which a pod this plugin rejected may fit.
    fn events(&self) -> &'static [ClusterEvent] {
        &[]
    }
    /// The PreFilter extension, if implemented.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// The Filter extension, if implemented.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// The PostFilter extension, if implemented.
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// The PreScore extension, if implemented.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// The Score extension, if implemented.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// The Reserve extension, if implemented.
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
}

/// Runs once per pod before filtering; computes state, may reject the pod outright.
pub trait PreFilterPlugin {
    /// Computes the cycle state; Skip means this plugin's Filter need not run.
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status;

    /// Updates the state as if `added` ran on `node` (preemption and nominated pods).
    fn add_pod(&self, _state: &mut CycleState, _pod: &PodInfo, _added: &PodInfo, _node: &NodeInfo) {
    }

    /// Updates the state as if `removed` no longer ran on `node`.
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _removed: &PodInfo,
        _node: &NodeInfo,
    ) {
    }
}

/// Whether a pod may run on one node.
pub trait FilterPlugin {
    /// Success, or why not.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Runs when no node fits (preemption).
pub trait PostFilterPlugin {
    /// Tries to make room; the status message goes into the scheduling failure.
    fn post_filter(
        &self,
        ctx: &PostFilterContext<'_>,
        state: &CycleState,
        pod: &Arc<PodInfo>,
    ) -> (PostFilterResult, Status);
}

/// What a PostFilter plugin sees.
pub struct PostFilterContext<'a> {
    /// The profile's framework (to run filters in what-if states).
    pub framework: &'a Framework,
    /// The nodes of this cycle.
    pub snapshot: &'a Snapshot,
    /// Pods nominated to nodes.
    pub nominated: &'a Nominated,
    /// Why each node was rejected.
    pub statuses: &'a NodeToStatus,
}

/// Runs once per pod before scoring, with the nodes that passed the filters.
pub trait PreScorePlugin {
    /// Computes the state; Skip means this plugin's Score need not run.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Status;
}

/// Ranks feasible nodes.
pub trait ScorePlugin {
    /// A raw score for `node`.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Maps raw scores to `0..=MAX_NODE_SCORE` (default: they already are).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// Claims resources on the chosen node before binding; undone if binding fails.
pub trait ReservePlugin {
    /// Reserves; a failure sends the pod back to the queue.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    /// Releases what `reserve` claimed.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Upstream's `DefaultNormalizeScore`: scales scores so the best is `MAX_NODE_SCORE`
/// (reversed: the lowest raw score becomes the best).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// Why a pod fits no node (upstream's `FitError`), rendered as
/// `0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {…}. preemption: …`.
#[derive(Debug, Default)]
pub struct FitError {
    /// Nodes in the cycle's snapshot.
    pub num_all_nodes: usize,
    /// Per-node rejections (empty when PreFilter rejected the pod).
    pub statuses: NodeToStatus,
    /// A PreFilter plugin's rejection, which stands for every node.
    pub pre_filter_msg: Option<String>,
    /// What preemption said.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// The plugins that rejected the pod somewhere (for queueing on cluster events).
    pub fn rejecting_plugins(&self) -> Vec<&'static str> {
        let mut plugins: Vec<&'static str> = self
            .statuses
            .values()
            .map(|s| s.plugin)
            .filter(|p| !p.is_empty())
            .collect();
        plugins.sort_unstable();
        plugins.dedup();
        plugins
    }
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        match &self.pre_filter_msg {
            Some(msg) => write!(f, " {msg}.")?,
            None => {
                let mut histogram: HashMap<&str, usize> = HashMap::new();
                for status in self.statuses.values() {
                    for reason in &status.reasons {
                        *histogram.entry(reason).or_default() += 1;
                    }
                }
                let mut lines: Vec<String> = histogram
                    .into_iter()
                    .map(|(reason, n)| format!("{n} {reason}"))
                    .collect();
                lines.sort();
                if !lines.is_empty() {
                    write!(f, " {}.", lines.join(", "))?;
                }
            }
        }
        if let Some(msg) = self.post_filter_msg.as_deref().filter(|m| !m.is_empty()) {
            write!(f, " {msg}.")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_errors_read_like_upstream() {
        let mut statuses = NodeToStatus::new();
        for n in ["a", "b"] {
            statuses.insert(n.into(), Status::unschedulable("Insufficient cpu"));
        }
        for n in ["c", "d", "e"] {
            statuses.insert(
                n.into(),
                Status::unresolvable(
                    "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
                ),
            );
        }
        let e = FitError {
            num_all_nodes: 5,
            statuses,
            pre_filter_msg: None,
            post_filter_msg: Some(
                "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling"
                    .into(),
            ),
        };
        assert_eq!(
            e.to_string(),
            "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."
        );
    }
}
