//! The Recreate strategy, after upstream's `recreate.go`: scale every old ReplicaSet to
//! zero, wait until none of their pods runs, then create and scale up the new one.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::sync::all_rss;
use super::util::{self, replicas, rs_replicas};
use super::DeploymentController;

impl DeploymentController {
    /// One step of a Recreate rollout (`rolloutRecreate`).
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
        pods: HashMap<String, Vec<Arc<Pod>>>,
    ) -> anyhow::Result<()> {
        let (mut new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rss.clone(), false)
            .await?;
        let mut scaled_down = false;
        for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
            scaled_down |= self.scale_replica_set_and_record_event(rs, 0, d).await?;
        }
        if scaled_down {
            return self
                .sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
                .await;
        }
        if old_pods_running(new_rs.as_ref(), &old, &pods) {
            return self
                .sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
                .await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self
                .get_all_replica_sets_and_sync_revision(d, rss, true)
                .await?;
        }
        if let Some(rs) = new_rs.as_mut() {
            self.scale_replica_set_and_record_event(rs, replicas(d), d)
                .await?;
        }
        if util::deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup_deployment(&old, d).await?;
        }
        self.sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
            .await
    }
}

/// Whether an old ReplicaSet still reports pods, or any pod of one is neither succeeded
/// nor failed (`oldPodsRunning`).
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pods: &HashMap<String, Vec<Arc<Pod>>>,
) -> bool {
    if util::actual_replica_count(old.iter()) > 0 {
        return true;
    }
    let new_uid = new_rs.and_then(|rs| rs.metadata.uid.as_deref());
    pods.iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, pods)| pods)
        .any(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Failed") | Some("Succeeded"))
        })
}
