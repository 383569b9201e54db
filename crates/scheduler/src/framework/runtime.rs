//! One profile's plugins in extension-point order with their score weights (upstream's
//! `framework/runtime/framework.go`). The cycle calls these `run_*` functions and never
//! names a plugin.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    ClusterEvent, CycleState, NodeInfo, Nominated, Plugin, PodInfo, PostFilterContext,
    PostFilterResult, Status,
};
use crate::cache::Snapshot;
use crate::config::Profile;
use crate::plugins::{self, Handle};

/// A profile: its scheduler name and its plugins.
pub struct Framework {
    /// Pods whose `spec.schedulerName` is this are scheduled with this profile.
    pub scheduler_name: String,
    /// Percentage of nodes to find feasible before scoring (`None`: adaptive).
    pub percentage_of_nodes_to_score: Option<u32>,
    pre_filter: Vec<Arc<dyn Plugin>>,
    filter: Vec<Arc<dyn Plugin>>,
    post_filter: Vec<Arc<dyn Plugin>>,
    pre_score: Vec<Arc<dyn Plugin>>,
    score: Vec<(Arc<dyn Plugin>, i64)>,
    reserve: Vec<Arc<dyn Plugin>>,
    events: HashMap<&'static str, &'static [ClusterEvent]>,
}

impl Framework {
    /// Instantiates the profile's plugins.
    pub fn new(profile: &Profile, handle: &Handle) -> anyhow::Result<Framework> {
        let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
        let mut get = |name: &str| -> anyhow::Result<Arc<dyn Plugin>> {
            if let Some(p) = instances.get(name) {
                return Ok(p.clone());
            }
            let p = plugins::new_plugin(name, profile.plugin_config.get(name), handle)?;
            instances.insert(name.to_string(), p.clone());
            Ok(p)
        };
        let mut fwk = Framework {
            scheduler_name: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            pre_filter: Vec::new(),
            filter: Vec::new(),
            post_filter: Vec::new(),
            pre_score: Vec::new(),
            score: Vec::new(),
            reserve: Vec::new(),
            events: HashMap::new(),
        };
        for name in profile.enabled("preFilter") {
            let p = get(&name.0)?;
            if p.as_pre_filter().is_some() {
                fwk.pre_filter.push(p);
            }
        }
        for name in profile.enabled("filter") {
            let p = get(&name.0)?;
            if p.as_filter().is_some() {
                fwk.events.insert(p.name(), p.events());
                fwk.filter.push(p);
            }
        }
        for name in profile.enabled("postFilter") {
            let p = get(&name.0)?;
            if p.as_post_filter().is_some() {
                fwk.post_filter.push(p);
            }
        }
        for name in profile.enabled("preScore") {
            let p = get(&name.0)?;
            if p.as_pre_score().is_some() {
                fwk.pre_score.push(p);
            }
        }
        for (name, weight) in profile.enabled("score") {
            let p = get(&name)?;
            if p.as_score().is_some() {
                fwk.score.push((p, weight));
            }
        }
        for name in profile.enabled("reserve") {
            let p = get(&name.0)?;
            if p.as_reserve().is_some() {
                fwk.reserve.push(p);
            }
        }
        for p in &fwk.pre_filter {
            fwk.events.insert(p.name(), p.events());
        }
        Ok(fwk)
    }

    /// Whether an unschedulable pod rejected by `plugins` may fit after `event` (a pod
    /// rejected by no known plugin is always retried).
    pub fn worth_retrying(&self, plugins: &[&'static str], event: ClusterEvent) -> bool {
        plugins.is_empty()
            || plugins.iter().any(|p| {
                self.events
                    .get(p)
                    .is_none_or(|events| events.contains(&event))
            })
    }

    /// Runs every PreFilter plugin; the first rejection ends the pod's cycle.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Status {
        for p in &self.pre_filter {
            let status = p.as_pre_filter().unwrap().pre_filter(state, pod, snapshot);
            match status.code {
                super::Code::Success => {}
                super::Code::Skip => state.skip_filter.push(p.name()),
                _ => return status.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Tells PreFilter plugins that `added` now runs on `node` (what-if states).
    pub fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        added: &PodInfo,
        node: &NodeInfo,
    ) {
        for p in &self.pre_filter {
            if !state.skip_filter.contains(&p.name()) {
                p.as_pre_filter().unwrap().add_pod(state, pod, added, node);
            }
        }
    }

    /// Tells PreFilter plugins that `removed` no longer runs on `node`.
    pub fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        removed: &PodInfo,
        node: &NodeInfo,
    ) {
        for p in &self.pre_filter {
            if !state.skip_filter.contains(&p.name()) {
                p.as_pre_filter()
                    .unwrap()
                    .remove_pod(state, pod, removed, node);
            }
        }
    }

    /// Runs the Filter plugins on one node, stopping at the first that rejects it.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in &self.filter {
            if state.skip_filter.contains(&p.name()) {
                continue;
            }
            let status = p.as_filter().unwrap().filter(state, pod, node);
            if !status.is_success() {
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Upstream's `RunFilterPluginsWithNominatedPods`: the node must fit the pod both with
    /// the pods nominated to it (of equal or higher priority) and without them, so that
    /// the room preemption made is not taken by a less important pod.
    pub fn run_filter_with_nominated(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &Nominated,
    ) -> Status {
        let others: Vec<&Arc<PodInfo>> = nominated
            .get(node.name())
            .into_iter()
            .flatten()
            .filter(|n| n.priority >= pod.priority && n.key != pod.key)
            .collect();
        if !others.is_empty() {
            let mut state = state.clone();
            let mut with = node.clone();
            for n in others {
                with.add_pod(n.clone());
                self.run_pre_filter_add_pod(&mut state, pod, n, &with);
            }
            let status = self.run_filter(&state, pod, &with);
            if !status.is_success() {
                return status;
            }
        }
        self.run_filter(state, pod, node)
    }

    /// Runs the PostFilter plugins until one nominates a node.
    pub fn run_post_filter(
        &self,
        ctx: &PostFilterContext<'_>,
        state: &CycleState,
        pod: &Arc<PodInfo>,
    ) -> (PostFilterResult, Option<Status>) {
        let mut last = None;
        for p in &self.post_filter {
            let (result, status) = p.as_post_filter().unwrap().post_filter(ctx, state, pod);
            if status.is_success() {
                return (result, Some(status));
            }
            last = Some(status.with_plugin(p.name()));
        }
        (PostFilterResult::default(), last)
    }

    /// Runs PreScore and Score plugins; the weighted sum per node, in `nodes` order.
    pub fn run_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Result<Vec<i64>, Status> {
        for p in &self.pre_score {
            let status = p
                .as_pre_score()
                .unwrap()
                .pre_score(state, pod, snapshot, nodes);
            match status.code {
                super::Code::Success => {}
                super::Code::Skip => state.skip_score.push(p.name()),
                _ => return Err(status.with_plugin(p.name())),
            }
        }
        let mut totals = vec![0; nodes.len()];
        let mut scores = vec![0; nodes.len()];
        for (p, weight) in &self.score {
            if state.skip_score.contains(&p.name()) {
                continue;
            }
            let scorer = p.as_score().unwrap();
            for (s, node) in scores.iter_mut().zip(nodes) {
                *s = scorer.score(state, pod, node);
            }
            scorer.normalize(state, pod, &mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += s * weight;
            }
        }
        Ok(totals)
    }

    /// Runs Reserve plugins; on failure the ones that succeeded are undone.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for (i, p) in self.reserve.iter().enumerate() {
            let status = p.as_reserve().unwrap().reserve(state, pod, node);
            if !status.is_success() {
                for q in self.reserve[..i].iter().rev() {
                    q.as_reserve().unwrap().unreserve(state, pod, node);
                }
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Undoes every Reserve plugin (binding failed).
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.as_reserve().unwrap().unreserve(state, pod, node);
        }
    }

    /// Whether any Score plugin runs (with one feasible node, scoring is skipped anyway).
    pub fn has_score_plugins(&self) -> bool {
        !self.score.is_empty()
    }
}
