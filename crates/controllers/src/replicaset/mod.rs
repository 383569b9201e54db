//! The ReplicaSet controller, after upstream's `pkg/controller/replicaset/replica_set.go`:
//! keeps `spec.replicas` pods of a ReplicaSet alive, adopting orphans its selector matches
//! and releasing pods it no longer matches, and reports what it sees in the status.
//!
//! The same logic runs ReplicationControllers ([`replication_controller`]), as upstream's
//! replication manager wraps the ReplicaSet controller: the owner kind is a type parameter
//! ([`ReplicaOwner`]) that converts to a ReplicaSet for the logic and takes the status back.

pub mod replication_controller;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8rs_client::{Change, EventRecorder, EventType, Informer, ObjectKey, WorkQueue};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::controller::{run_workers, Context, Controller};
use crate::controller_utils::{
    self as utils, controller_of, controller_ref, error_message, is_not_found, is_pod_active,
    is_pod_available, is_pod_ready, pod_from_template, rank_by_related_on_same_node,
    selector_is_empty, selector_matches, slow_start_batch, sort_for_deletion, Expectations,
    RefManager,
};

/// Most pods one sync creates or deletes (upstream's `BurstReplicas`); expectations make the
/// next sync wait until the informer has seen them.
pub const BURST_REPLICAS: usize = 500;
/// Concurrent syncs (upstream's `--concurrent-replicaset-syncs` default).
const WORKERS: usize = 5;

/// What the ReplicaSet logic needs from the kind it manages.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The component name events carry (`replicaset-controller`).
    const COMPONENT: &'static str;
    /// The object as a ReplicaSet (upstream's conversion wrapper for ReplicationControllers).
    fn to_replica_set(&self) -> ReplicaSet;
    /// Sets the status computed for the ReplicaSet form.
    fn set_status(&mut self, status: ReplicaSetStatus);
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn to_replica_set(&self) -> ReplicaSet {
        self.clone()
    }
    fn set_status(&mut self, status: ReplicaSetStatus) {
        self.status = Some(status);
    }
}

/// The controller for one owner kind.
pub struct ReplicaSetController<K: ReplicaOwner> {
    client: kube::Client,
    owners: Informer<K>,
    pods: Informer<Pod>,
    queue: WorkQueue<ObjectKey>,
    expectations: Expectations,
    recorder: EventRecorder,
    burst_replicas: usize,
}

/// Starts the ReplicaSet controller.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    start_for::<ReplicaSet>(ctx)
}

/// Starts the controller for `K`: informer handlers that queue owner keys, and the workers.
pub fn start_for<K: ReplicaOwner>(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let controller = Arc::new(ReplicaSetController::<K> {
        client: ctx.client.clone(),
        owners: ctx.informers.get::<K>(),
        pods: ctx.informers.get::<Pod>(),
        queue: WorkQueue::new(),
        expectations: Expectations::default(),
        recorder: EventRecorder::new(ctx.client.clone(), K::COMPONENT),
        burst_replicas: BURST_REPLICAS,
    });
    let c = controller.clone();
    controller
        .owners
        .add_handler(move |change| c.on_owner(change));
    let c = controller.clone();
    controller.pods.add_handler(move |change| c.on_pod(change));
    let queue = controller.queue.clone();
    tokio::spawn(async move {
        controller.owners.wait_synced().await;
        controller.pods.wait_synced().await;
        run_workers(controller, queue, WORKERS).await.ok();
    })
}

fn pod_key(pod: &Pod) -> String {
    ObjectKey::of(pod).to_string()
}

impl<K: ReplicaOwner> ReplicaSetController<K> {
    fn on_owner(&self, change: &Change<K>) {
        let key = ObjectKey::of(change.object().as_ref());
        if let Change::Deleted(_) = change {
            self.expectations.delete(&key);
        }
        self.queue.add(key);
    }

    /// The owner a controller reference names, if it is one of ours and still the same object.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<K>> {
        if r.kind != K::kind(&()) {
            return None;
        }
        let owner = self.owners.get(&ObjectKey::new(namespace, &r.name))?;
        (owner.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(owner)
    }

    /// Owners whose selector matches an orphan pod (upstream's `getPodReplicaSets`).
    fn owners_selecting(&self, pod: &Pod) -> Vec<Arc<K>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        self.owners
            .list_namespace(ns)
            .into_iter()
            .filter(|owner| {
                let sel = owner.to_replica_set().spec.unwrap_or_default().selector;
                !selector_is_empty(&sel) && selector_matches(&sel, pod.metadata.labels.as_ref())
            })
            .collect()
    }

    fn on_pod(&self, change: &Change<Pod>) {
        match change {
            Change::Applied { old: None, new } => self.add_pod(new),
            Change::Applied {
                old: Some(old),
                new,
            } => self.update_pod(old, new),
            Change::Deleted(pod) => self.delete_pod(pod),
        }
    }

    fn add_pod(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            // A restarted informer may see a pod already being deleted.
            return self.delete_pod(pod);
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(r) = controller_of(&pod.metadata) {
            if let Some(owner) = self.resolve(ns, r) {
                let key = ObjectKey::of(owner.as_ref());
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        // An orphan: wake every owner that could adopt it.
        for owner in self.owners_selecting(pod) {
            self.queue.add(ObjectKey::of(owner.as_ref()));
        }
    }

    fn update_pod(&self, old: &Pod, cur: &Pod) {
        if old.metadata.resource_version == cur.metadata.resource_version {
            return;
        }
        let labels_changed = old.metadata.labels != cur.metadata.labels;
        if cur.metadata.deletion_timestamp.is_some() {
            // Graceful deletion: count the pod as gone now so a replacement starts at once.
            self.delete_pod(cur);
            if labels_changed {
                self.delete_pod(old);
            }
            return;
        }
        let ns = cur.metadata.namespace.as_deref().unwrap_or_default();
        let cur_ref = controller_of(&cur.metadata);
        let old_ref = controller_of(&old.metadata);
        let ref_changed = cur_ref != old_ref;
        if ref_changed {
            if let Some(owner) = old_ref.and_then(|r| self.resolve(ns, r)) {
                self.queue.add(ObjectKey::of(owner.as_ref()));
            }
        }
        if let Some(r) = cur_ref {
            if let Some(owner) = self.resolve(ns, r) {
                let key = ObjectKey::of(owner.as_ref());
                let min_ready = owner
                    .to_replica_set()
                    .spec
                    .and_then(|s| s.min_ready_seconds)
                    .unwrap_or(0);
                self.queue.add(key.clone());
                // Becoming available is a status change with no event of its own.
                if !is_pod_ready(old) && is_pod_ready(cur) && min_ready > 0 {
                    self.queue
                        .add_after(key, Duration::from_secs(min_ready as u64 + 1));
                }
            }
            return;
        }
        if labels_changed || ref_changed {
            for owner in self.owners_selecting(cur) {
                self.queue.add(ObjectKey::of(owner.as_ref()));
            }
        }
    }

    fn delete_pod(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(owner) = controller_of(&pod.metadata).and_then(|r| self.resolve(ns, r)) else {
            return;
        };
        let key = ObjectKey::of(owner.as_ref());
        self.expectations.deletion_observed(&key, &pod_key(pod));
        self.queue.add(key);
    }

    /// Pods owned by objects sharing this owner's controller (the other ReplicaSets of a
    /// Deployment): they rank deletions by co-location (`getIndirectlyRelatedPods`).
    fn related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
        let Some(parent) = controller_of(&rs.metadata) else {
            return self.owned_pods(ns, rs.metadata.uid.as_deref().unwrap_or_default());
        };
        let siblings: Vec<String> = self
            .owners
            .list_namespace(ns)
            .into_iter()
            .filter(|o| controller_of(o.meta()).is_some_and(|r| r.uid == parent.uid))
            .filter_map(|o| o.meta().uid.clone())
            .collect();
        self.pods.filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && controller_of(&p.metadata).is_some_and(|r| siblings.contains(&r.uid))
        })
    }

    fn owned_pods(&self, ns: &str, uid: &str) -> Vec<Arc<Pod>> {
        self.pods.filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns)
                && controller_of(&p.metadata).is_some_and(|r| r.uid == uid)
        })
    }

    /// Creates or deletes the difference between `pods` and `spec.replicas`
    /// (upstream's `manageReplicas`).
    async fn manage_replicas(
        &self,
        pods: &[Arc<Pod>],
        owner: &K,
        rs: &ReplicaSet,
    ) -> anyhow::Result<()> {
        let key = ObjectKey::of(rs);
        let spec = rs.spec.clone().unwrap_or_default();
        let want = spec.replicas.unwrap_or(1).max(0) as usize;
        let ns = rs.metadata.namespace.clone().unwrap_or_default();
        let name = rs.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        if pods.len() < want {
            let diff = (want - pods.len()).min(self.burst_replicas);
            let Some(template) = spec.template.as_ref() else {
                anyhow::bail!("{key} has no pod template");
            };
            self.expectations.expect_creations(&key, diff);
            let pod = pod_from_template(template, &name, controller_ref(owner));
            let (created, err) = slow_start_batch(diff, utils::SLOW_START_INITIAL_BATCH_SIZE, || {
                let api = api.clone();
                let pod = pod.clone();
                async move {
                    match api.create(&PostParams::default(), &pod).await {
                        Ok(created) => {
                            self.recorder.record(
                                owner,
                                EventType::Normal,
                                "SuccessfulCreate",
                                format!("Created pod: {}", created.metadata.name.unwrap_or_default()),
                            );
                            Ok(())
                        }
                        Err(e) => {
                            // A terminating namespace refuses every create; no event for that.
                            let terminating = matches!(&e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")));
                            if !terminating {
                                self.recorder.record(
                                    owner,
                                    EventType::Warning,
                                    "FailedCreate",
                                    format!("Error creating: {}", error_message(&e)),
                                );
                            }
                            Err(anyhow::anyhow!(error_message(&e)))
                        }
                    }
                }
            })
            .await;
            // The informer will never see the creations that were skipped or failed.
            for _ in created..diff {
                self.expectations.creation_observed(&key);
            }
            return err.map_or(Ok(()), Err);
        }
        if pods.len() > want {
            let diff = (pods.len() - want).min(self.burst_replicas);
            let related = self.related_pods(rs);
            let mut ranked = rank_by_related_on_same_node(pods, &related);
            if diff < ranked.len() {
                sort_for_deletion(&mut ranked, Timestamp::now());
            }
            let victims: Vec<Arc<Pod>> = ranked.into_iter().take(diff).map(|(p, _)| p).collect();
            self.expectations
                .expect_deletions(&key, victims.iter().map(|p| pod_key(p)).collect());
            let results = futures::future::join_all(victims.iter().map(|pod| {
                let api = api.clone();
                let key = key.clone();
                async move {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    match api.delete(&pod_name, &DeleteParams::default()).await {
                        Ok(_) => {
                            self.recorder.record(
                                owner,
                                EventType::Normal,
                                "SuccessfulDelete",
                                format!("Deleted pod: {pod_name}"),
                            );
                            Ok(())
                        }
                        Err(e) => {
                            self.expectations.deletion_observed(&key, &pod_key(pod));
                            if is_not_found(&e) {
                                return Ok(());
                            }
                            self.recorder.record(
                                owner,
                                EventType::Warning,
                                "FailedDelete",
                                format!("Error deleting: {}", error_message(&e)),
                            );
                            Err(anyhow::anyhow!(error_message(&e)))
                        }
                    }
                }
            }))
            .await;
            return results.into_iter().find(|r| r.is_err()).unwrap_or(Ok(()));
        }
        Ok(())
    }

    /// Writes the status unless it is unchanged, re-reading the owner once on a conflict
    /// (upstream's `updateReplicaSetStatus`). Returns the owner as stored.
    async fn update_status(&self, owner: &K, status: ReplicaSetStatus) -> anyhow::Result<K> {
        let current = owner.to_replica_set().status.unwrap_or_default();
        let generation = owner.meta().generation;
        if current.replicas == status.replicas
            && current.fully_labeled_replicas == status.fully_labeled_replicas
            && current.ready_replicas == status.ready_replicas
            && current.available_replicas == status.available_replicas
            && current.observed_generation == generation
            && current.conditions == status.conditions
        {
            return Ok(owner.clone());
        }
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        let name = owner.meta().name.clone().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        let mut target = owner.clone();
        for attempt in 0..2 {
            let mut status = status.clone();
            status.observed_generation = target.meta().generation;
            target.set_status(status);
            match api
                .replace_status(&name, &PostParams::default(), &target)
                .await
            {
                Ok(updated) => return Ok(updated),
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, owner = %name, "status update failed; re-reading");
                    target = api.get(&name).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    async fn sync_owner(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let Some(owner) = self.owners.get(key) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let rs = owner.to_replica_set();
        let needs_sync = self.expectations.satisfied(key);
        let spec = rs.spec.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(&key.namespace)
            .into_iter()
            .filter(|p| is_pod_active(p))
            .collect();
        let pods = RefManager::new(&self.client, owner.as_ref(), &spec.selector)
            .claim(pods)
            .await?;
        let manage_error = if needs_sync && rs.metadata.deletion_timestamp.is_none() {
            self.manage_replicas(&pods, &owner, &rs).await.err()
        } else {
            None
        };
        let status = calculate_status(&rs, &pods, manage_error.as_ref(), Timestamp::now());
        let updated = self.update_status(&owner, status).await?;
        let updated = updated.to_replica_set();
        let spec = updated.spec.unwrap_or_default();
        let status = updated.status.unwrap_or_default();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        // Pods become available with time, not with an event: look again then.
        if manage_error.is_none()
            && min_ready > 0
            && status.ready_replicas.unwrap_or(0) == spec.replicas.unwrap_or(1)
            && status.available_replicas.unwrap_or(0) != spec.replicas.unwrap_or(1)
        {
            self.queue
                .add_after(key.clone(), Duration::from_secs(min_ready as u64));
        }
        manage_error.map_or(Ok(()), Err)
    }
}

/// The status for `pods` (upstream's `calculateStatus`): counts, and a `ReplicaFailure`
/// condition while creating or deleting pods fails.
pub fn calculate_status(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    manage_error: Option<&anyhow::Error>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for pod in pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            fully_labeled += 1;
        }
        if is_pod_ready(pod) {
            ready += 1;
            if is_pod_available(pod, min_ready, now) {
                available += 1;
            }
        }
    }
    let mut conditions = status.conditions.take().unwrap_or_default();
    let failure = conditions.iter().position(|c| c.type_ == "ReplicaFailure");
    match (manage_error, failure) {
        (Some(e), None) => {
            let want = spec.replicas.unwrap_or(1) as usize;
            let reason = if pods.len() < want {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(format!("{e:#}")),
                last_transition_time: Some(Time(now)),
            });
        }
        (None, Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    let nonzero = |n: i32| (n != 0).then_some(n);
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: nonzero(fully_labeled),
        ready_replicas: nonzero(ready),
        available_replicas: nonzero(available),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: None,
    }
}

#[async_trait::async_trait]
impl<K: ReplicaOwner> Controller for ReplicaSetController<K> {
    fn name(&self) -> &'static str {
        K::COMPONENT
    }

    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.sync_owner(key).await
    }
}

#[cfg(test)]
mod tests;
