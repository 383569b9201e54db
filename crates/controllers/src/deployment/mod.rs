//! The Deployment controller, after upstream's `pkg/controller/deployment`: one file per
//! concern as there — [`sync`] (new/old ReplicaSets, revisions, proportional scaling,
//! clean-up, status), [`rolling`] and [`recreate`] (the two strategies), [`rollback`]
//! (the deprecated rollback annotation), [`progress`] (Progressing/Available conditions and
//! the progress deadline) and [`util`] (the pure arithmetic).
//!
//! A Deployment owns ReplicaSets (adopted and released by selector like pods by a
//! ReplicaSet); the ReplicaSet controller owns the pods.

pub mod progress;
pub mod recreate;
pub mod rollback;
pub mod rolling;
pub mod sync;
pub mod util;

use std::collections::HashMap;
use std::sync::Arc;

use k8rs_client::{Change, EventRecorder, EventType, Informer, ObjectKey, WorkQueue};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::controller::{run_workers, Context, Controller};
use crate::controller_utils::{controller_of, selector_is_empty, selector_matches, RefManager};

/// Concurrent syncs (upstream's `--concurrent-deployment-syncs` default).
const WORKERS: usize = 5;

/// The Deployment controller.
pub struct DeploymentController {
    client: kube::Client,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: WorkQueue<ObjectKey>,
    recorder: EventRecorder,
}

/// Starts the Deployment controller.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let controller = Arc::new(DeploymentController {
        client: ctx.client.clone(),
        deployments: ctx.informers.get::<Deployment>(),
        replica_sets: ctx.informers.get::<ReplicaSet>(),
        pods: ctx.informers.get::<Pod>(),
        queue: WorkQueue::new(),
        recorder: EventRecorder::new(ctx.client.clone(), "deployment-controller"),
    });
    let c = controller.clone();
    controller
        .deployments
        .add_handler(move |change| c.queue.add(ObjectKey::of(change.object().as_ref())));
    let c = controller.clone();
    controller
        .replica_sets
        .add_handler(move |change| c.on_replica_set(change));
    let c = controller.clone();
    controller.pods.add_handler(move |change| c.on_pod(change));
    let queue = controller.queue.clone();
    tokio::spawn(async move {
        controller.deployments.wait_synced().await;
        controller.replica_sets.wait_synced().await;
        controller.pods.wait_synced().await;
        run_workers(controller, queue, WORKERS).await.ok();
    })
}

impl DeploymentController {
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<Deployment>> {
        if r.kind != "Deployment" {
            return None;
        }
        let d = self.deployments.get(&ObjectKey::new(namespace, &r.name))?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    /// Deployments whose selector matches an orphan ReplicaSet.
    fn deployments_selecting(&self, rs: &ReplicaSet) -> Vec<Arc<Deployment>> {
        let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
        self.deployments
            .list_namespace(ns)
            .into_iter()
            .filter(|d| {
                let sel = &d
                    .spec
                    .as_ref()
                    .map(|s| s.selector.clone())
                    .unwrap_or_default();
                !selector_is_empty(sel) && selector_matches(sel, rs.metadata.labels.as_ref())
            })
            .collect()
    }

    fn on_replica_set(&self, change: &Change<ReplicaSet>) {
        let enqueue_owner = |rs: &ReplicaSet| {
            let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
            if let Some(d) = controller_of(&rs.metadata).and_then(|r| self.resolve(ns, r)) {
                self.queue.add(ObjectKey::of(d.as_ref()));
                true
            } else {
                false
            }
        };
        match change {
            Change::Applied { old, new } => {
                if let Some(old) = old {
                    if old.metadata.resource_version == new.metadata.resource_version {
                        return;
                    }
                    if controller_of(&old.metadata) != controller_of(&new.metadata) {
                        enqueue_owner(old);
                    }
                }
                if controller_of(&new.metadata).is_some() {
                    enqueue_owner(new);
                    return;
                }
                let labels_changed = old
                    .as_ref()
                    .is_none_or(|old| old.metadata.labels != new.metadata.labels);
                if labels_changed
                    || old
                        .as_ref()
                        .is_some_and(|o| controller_of(&o.metadata).is_some())
                {
                    for d in self.deployments_selecting(new) {
                        self.queue.add(ObjectKey::of(d.as_ref()));
                    }
                }
            }
            Change::Deleted(rs) => {
                enqueue_owner(rs);
            }
        }
    }

    /// A Recreate rollout waits for the old pods to be gone; their deletion wakes it.
    fn on_pod(&self, change: &Change<Pod>) {
        let Change::Deleted(pod) = change else { return };
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let Some(rs) = self.replica_sets.get(&ObjectKey::new(ns, &r.name)) else {
            return;
        };
        let Some(d) = controller_of(&rs.metadata).and_then(|r| self.resolve(ns, r)) else {
            return;
        };
        if !util::is_recreate(&d) {
            return;
        }
        let uids: Vec<String> = self
            .replica_sets
            .filter(|rs| {
                rs.metadata.namespace.as_deref() == Some(ns)
                    && controller_of(&rs.metadata)
                        .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref())
            })
            .into_iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let remaining = self
            .pods
            .filter(|p| controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid)));
        if remaining.is_empty() {
            self.queue.add(ObjectKey::of(d.as_ref()));
        }
    }

    /// The ReplicaSets this Deployment owns after adoption and release
    /// (`getReplicaSetsForDeployment`).
    async fn replica_sets_for(&self, d: &Deployment) -> anyhow::Result<Vec<ReplicaSet>> {
        let ns = d.metadata.namespace.as_deref().unwrap_or_default();
        let selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let candidates = self.replica_sets.list_namespace(ns);
        let claimed = RefManager::new(&self.client, d, &selector)
            .claim(candidates)
            .await?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    /// Pods of the Deployment's ReplicaSets, by ReplicaSet uid (`getPodMapForDeployment`).
    fn pod_map(&self, rss: &[ReplicaSet]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut map: HashMap<String, Vec<Arc<Pod>>> = rss
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .map(|uid| (uid, Vec::new()))
            .collect();
        for pod in self.pods.list() {
            if let Some(r) = controller_of(&pod.metadata) {
                if let Some(pods) = map.get_mut(&r.uid) {
                    pods.push(pod);
                }
            }
        }
        map
    }

    /// Writes the Deployment's status (the registry keeps everything else).
    async fn update_status(&self, d: &Deployment) -> anyhow::Result<Deployment> {
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        Ok(api
            .replace_status(
                d.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                d,
            )
            .await?)
    }

    /// Writes the revision annotation onto the Deployment. Upstream writes it along with
    /// the status (its status strategy lets annotations through); this API server's status
    /// writes change only `status`, so the annotation goes through a metadata patch.
    async fn write_revision(&self, d: &mut Deployment) -> anyhow::Result<()> {
        let revision = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(util::REVISION_ANNOTATION))
            .cloned();
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": d.metadata.resource_version,
            "annotations": {util::REVISION_ANNOTATION: revision},
        }});
        let updated = api
            .patch(
                d.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        let status = d.status.clone();
        *d = updated;
        d.status = status;
        Ok(())
    }

    async fn sync_deployment(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let Some(cached) = self.deployments.get(key) else {
            return Ok(());
        };
        let mut d = (*cached).clone();
        let selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if selector_is_empty(&selector) {
            self.recorder.record(
                &d,
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            );
            let status = d.status.get_or_insert_with(Default::default);
            if status.observed_generation < d.metadata.generation {
                status.observed_generation = d.metadata.generation;
                self.update_status(&d).await?;
            }
            return Ok(());
        }
        let rss = self.replica_sets_for(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only(&mut d, rss).await;
        }
        self.check_paused_conditions(&mut d).await?;
        if util::is_paused(&d) {
            return self.sync_without_rollout(&mut d, rss).await;
        }
        if rollback::rollback_to(&d).is_some() {
            return self.rollback(&mut d, rss).await;
        }
        if self.is_scaling_event(&mut d, &rss).await? {
            return self.sync_without_rollout(&mut d, rss).await;
        }
        if util::is_recreate(&d) {
            let pods = self.pod_map(&rss);
            self.rollout_recreate(&mut d, rss, pods).await
        } else {
            self.rollout_rolling(&mut d, rss).await
        }
    }
}

#[async_trait::async_trait]
impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.sync_deployment(key).await
    }
}
