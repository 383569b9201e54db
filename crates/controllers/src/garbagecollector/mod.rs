//! The garbage collector (upstream `pkg/controller/garbagecollector`): deletes objects
//! whose owners are gone, and carries out foreground and orphan deletion.
//!
//! - [`graph_builder`] watches every deletable resource (found through discovery, events
//!   excepted as upstream) and feeds each change into the [`graph::Graph`], which says
//!   what to check.
//! - `attempt_to_delete` (upstream `attemptToDeleteItem`) re-reads the object and each
//!   owner from the server (`isDangling`); an object with no owner left is deleted with
//!   the propagation its own finalizers ask for; an object being deleted in the
//!   foreground loses its `foregroundDeletion` finalizer once no dependent with
//!   `blockOwnerDeletion` remains.
//! - `attempt_to_orphan` removes an owner's reference from each dependent, then the
//!   owner's `orphan` finalizer.

pub mod graph;
mod graph_builder;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;

use self::graph::{Graph, Identity, Work, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use crate::discovery::Resources;
use crate::Context;
use k8rs_client::WorkQueue;

/// Workers checking objects for deletion (upstream `--concurrent-gc-syncs`, default 20).
const DELETE_WORKERS: usize = 20;
/// Workers orphaning dependents.
const ORPHAN_WORKERS: usize = 2;
/// Retries before a key is dropped until its next change (as the other controllers).
const MAX_RETRIES: u32 = 15;

/// The garbage collector's state, shared by the graph builder and the workers.
pub struct GarbageCollector {
    client: kube::Client,
    resources: RwLock<Arc<Resources>>,
    graph: Mutex<Graph>,
    attempt_to_delete: WorkQueue<String>,
    attempt_to_orphan: WorkQueue<String>,
    /// uids of owners a live read found gone (upstream `absentOwnerCache`): the many
    /// dependents of one deleted owner need only one read of it. uids are never reused.
    absent_owners: Mutex<HashSet<String>>,
}

/// Entries in the absent-owner cache before it starts over (upstream keeps an LRU of 500).
const ABSENT_OWNER_CACHE_SIZE: usize = 1000;

/// Starts the garbage collector: discovery, one watch per deletable resource, then the
/// workers once the first lists are in (so no dependent is missed when orphaning).
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let gc = Arc::new(GarbageCollector {
        client: ctx.client.clone(),
        resources: RwLock::new(Arc::new(Resources::default())),
        graph: Mutex::new(Graph::default()),
        attempt_to_delete: WorkQueue::new(),
        attempt_to_orphan: WorkQueue::new(),
        absent_owners: Mutex::new(HashSet::new()),
    });
    tokio::spawn(async move {
        graph_builder::run(gc.clone(), || {
            for _ in 0..DELETE_WORKERS {
                let gc = gc.clone();
                tokio::spawn(async move { gc.worker(true).await });
            }
            for _ in 0..ORPHAN_WORKERS {
                let gc = gc.clone();
                tokio::spawn(async move { gc.worker(false).await });
            }
        })
        .await
    })
}

/// The outcome of one check.
enum Outcome {
    Done,
    /// Check again later (a virtual node not yet seen by its watch).
    Requeue,
}

impl GarbageCollector {
    fn resources(&self) -> Arc<Resources> {
        self.resources.read().unwrap().clone()
    }

    /// Queues the work a graph change produced.
    fn dispatch(&self, work: Vec<Work>) {
        for w in work {
            match w {
                Work::AttemptToDelete(uid) => self.attempt_to_delete.add(uid),
                Work::AttemptToOrphan(uid) => self.attempt_to_orphan.add(uid),
            }
        }
    }

    async fn worker(&self, delete: bool) {
        let queue = if delete {
            &self.attempt_to_delete
        } else {
            &self.attempt_to_orphan
        };
        while let Some(uid) = queue.get().await {
            let result = if delete {
                self.attempt_to_delete(&uid).await
            } else {
                self.attempt_to_orphan(&uid).await.map(|()| Outcome::Done)
            };
            match result {
                Ok(Outcome::Done) => queue.forget(&uid),
                Ok(Outcome::Requeue) => queue.add_rate_limited(uid.clone()),
                Err(e) if queue.retries(&uid) < MAX_RETRIES => {
                    tracing::debug!(uid, error = %format!("{e:#}"), "garbage collection failed; retrying");
                    queue.add_rate_limited(uid.clone());
                }
                Err(e) => {
                    tracing::warn!(uid, error = %format!("{e:#}"), "garbage collection failed; dropping");
                    queue.forget(&uid);
                }
            }
            queue.done(&uid);
        }
    }

    /// A dynamic client for the object `identity` names, if its kind is served.
    fn api_for(&self, identity: &Identity) -> anyhow::Result<Api<DynamicObject>> {
        let resources = self.resources();
        let served = resources
            .resolve(&identity.api_version, &identity.kind)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unable to get REST mapping for {}/{}",
                    identity.api_version,
                    identity.kind
                )
            })?;
        Ok(if served.namespaced {
            Api::namespaced_with(self.client.clone(), &identity.namespace, &served.resource)
        } else {
            Api::all_with(self.client.clone(), &served.resource)
        })
    }

    /// The live object, or `None` when it is gone or replaced by one with another uid.
    async fn get_live(&self, identity: &Identity) -> anyhow::Result<Option<DynamicObject>> {
        let latest = self.api_for(identity)?.get_opt(&identity.name).await?;
        Ok(latest.filter(|o| o.metadata.uid.as_deref() == Some(identity.uid.as_str())))
    }

    /// Upstream `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: &str) -> anyhow::Result<Outcome> {
        let Some(node) = self.graph.lock().unwrap().get(uid).cloned() else {
            return Ok(Outcome::Done);
        };
        let Some(latest) = self.get_live(&node.identity).await? else {
            let work = self.graph.lock().unwrap().absent(uid);
            self.dispatch(work);
            return Ok(Outcome::Done);
        };
        let outcome = if node.virtual_node {
            Outcome::Requeue
        } else {
            Outcome::Done
        };
        if node.deleting_dependents {
            self.process_deleting_dependents(&node.identity).await?;
            return Ok(outcome);
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(outcome);
        }
        if latest.metadata.deletion_timestamp.is_some() {
            // Already going; only a foreground deletion needs more from us (above).
            return Ok(outcome);
        }

        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for owner in &owners {
            let owner_identity = Identity {
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
                namespace: node.identity.namespace.clone(),
                name: owner.name.clone(),
                uid: owner.uid.clone(),
            };
            if self.absent_owners.lock().unwrap().contains(&owner.uid) {
                dangling.push(owner.uid.clone());
                continue;
            }
            match self.get_live(&owner_identity).await? {
                None => {
                    let mut absent = self.absent_owners.lock().unwrap();
                    if absent.len() >= ABSENT_OWNER_CACHE_SIZE {
                        absent.clear();
                    }
                    absent.insert(owner.uid.clone());
                    dangling.push(owner.uid.clone());
                }
                Some(o)
                    if o.metadata.deletion_timestamp.is_some()
                        && has_finalizer(&o, FOREGROUND_FINALIZER) =>
                {
                    waiting.push(owner.uid.clone())
                }
                Some(_) => solid.push(owner.uid.clone()),
            }
        }
        tracing::debug!(object = %node.identity, ?solid, ?dangling, ?waiting, "classified owner references");

        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(outcome);
            }
            // Some owner still holds the object: drop only the references to owners
            // that are gone or going.
            let drop: Vec<String> = dangling.into_iter().chain(waiting).collect();
            self.patch_owner_references(&node.identity, |refs| {
                refs.retain(|r| !drop.contains(&r.uid));
            })
            .await?;
            return Ok(outcome);
        }
        let (has_dependents, dependent_deleting_dependents) = {
            let graph = self.graph.lock().unwrap();
            let dependents = graph.dependents(uid);
            (
                !dependents.is_empty(),
                dependents.iter().any(|d| d.deleting_dependents),
            )
        };
        let policy = if !waiting.is_empty() && has_dependents {
            if dependent_deleting_dependents {
                // A dependent of ours waits for its own dependents while our owner waits
                // for us: a cycle of foreground deletions. Stop blocking our owners so
                // the cycle can unwind (upstream's circle detection).
                self.patch_owner_references(&node.identity, |refs| {
                    for r in refs
                        .iter_mut()
                        .filter(|r| r.block_owner_deletion == Some(true))
                    {
                        r.block_owner_deletion = Some(false);
                    }
                })
                .await?;
            }
            // The owner waits for us in the foreground and we have dependents of our
            // own: go in the foreground too, so the owner waits for the whole tree.
            PropagationPolicy::Foreground
        } else if has_finalizer(&latest, ORPHAN_FINALIZER) {
            PropagationPolicy::Orphan
        } else if has_finalizer(&latest, FOREGROUND_FINALIZER) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(object = %node.identity, ?policy, "deleting object");
        self.delete_object(&node.identity, policy).await?;
        Ok(outcome)
    }

    /// Upstream `processDeletingDependentsItem`: the owner's foreground finalizer goes
    /// once no dependent blocks it; until then, make sure the blocking ones are deleted.
    async fn process_deleting_dependents(&self, owner: &Identity) -> anyhow::Result<()> {
        let blocking: Vec<(String, bool)> = self
            .graph
            .lock()
            .unwrap()
            .blocking_dependents(&owner.uid)
            .iter()
            .map(|d| (d.identity.uid.clone(), d.deleting_dependents))
            .collect();
        if blocking.is_empty() {
            return self.remove_finalizer(owner, FOREGROUND_FINALIZER).await;
        }
        for (uid, deleting_dependents) in blocking {
            if !deleting_dependents {
                self.attempt_to_delete.add(uid);
            }
        }
        Ok(())
    }

    /// Upstream `attemptToOrphanWorker`: release every dependent, then drop `orphan`.
    async fn attempt_to_orphan(&self, uid: &str) -> anyhow::Result<()> {
        let (owner, dependents) = {
            let graph = self.graph.lock().unwrap();
            let Some(node) = graph.get(uid) else {
                return Ok(());
            };
            let dependents: Vec<Identity> = graph
                .dependents(uid)
                .iter()
                .map(|d| d.identity.clone())
                .collect();
            (node.identity.clone(), dependents)
        };
        for dependent in &dependents {
            self.patch_owner_references(dependent, |refs| refs.retain(|r| r.uid != uid))
                .await?;
        }
        self.remove_finalizer(&owner, ORPHAN_FINALIZER).await
    }

    /// Deletes `identity` (only that very object: a uid precondition) with `policy`.
    async fn delete_object(
        &self,
        identity: &Identity,
        policy: PropagationPolicy,
    ) -> anyhow::Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(identity.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .api_for(identity)?
            .delete(&identity.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Rewrites the owner references of `identity` with `edit`, guarded by the
    /// resourceVersion that was read (retrying on conflict).
    async fn patch_owner_references(
        &self,
        identity: &Identity,
        mut edit: impl FnMut(&mut Vec<OwnerReference>),
    ) -> anyhow::Result<()> {
        let api = self.api_for(identity)?;
        for _ in 0..5 {
            let Some(latest) = self.get_live(identity).await? else {
                return Ok(());
            };
            let before = latest.metadata.owner_references.clone().unwrap_or_default();
            let mut refs = before.clone();
            edit(&mut refs);
            if refs == before {
                return Ok(());
            }
            let patch = json!({"metadata": {
                "resourceVersion": latest.metadata.resource_version,
                "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
            }});
            match api
                .patch(
                    &identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("conflicts updating the owner references of {identity}")
    }

    /// Removes `finalizer` from `identity` (upstream `removeFinalizer`).
    async fn remove_finalizer(&self, identity: &Identity, finalizer: &str) -> anyhow::Result<()> {
        let api = self.api_for(identity)?;
        for _ in 0..5 {
            let Some(latest) = self.get_live(identity).await? else {
                return Ok(());
            };
            let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let patch = json!({"metadata": {
                "resourceVersion": latest.metadata.resource_version,
                "finalizers": kept,
            }});
            match api
                .patch(
                    &identity.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    tracing::debug!(object = %identity, finalizer, "removed finalizer");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("conflicts removing the {finalizer} finalizer from {identity}")
    }
}

fn has_finalizer(obj: &DynamicObject, name: &str) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == name))
}

/// How often discovery is repeated to pick up new resources (CRDs).
const REDISCOVERY_PERIOD: Duration = Duration::from_secs(30);
