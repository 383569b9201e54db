//! The RollingUpdate strategy, after upstream's `rolling.go`: scale the new ReplicaSet up
//! as far as maxSurge allows, and the old ones down as far as maxUnavailable allows, one
//! step per sync; ReplicaSet status changes bring the next step.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::sync::all_rss;
use super::util::{self, replicas, rs_available, rs_replicas};
use super::DeploymentController;

impl DeploymentController {
    /// One step of a rolling update (`rolloutRolling`).
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let (mut new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rss, true)
            .await?;
        if let Some(rs) = new_rs.as_mut() {
            let all: Vec<ReplicaSet> = old
                .iter()
                .cloned()
                .chain(std::iter::once(rs.clone()))
                .collect();
            if self.reconcile_new_replica_set(&all, rs, d).await? {
                return self
                    .sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
                    .await;
            }
        }
        if self
            .reconcile_old_replica_sets(&new_rs, &mut old, d)
            .await?
        {
            return self
                .sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
                .await;
        }
        if util::deployment_complete(d, &d.status.clone().unwrap_or_default()) {
            self.cleanup_deployment(&old, d).await?;
        }
        self.sync_rollout_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
            .await
    }

    /// Scales the new ReplicaSet towards `spec.replicas` within maxSurge
    /// (`reconcileNewReplicaSet`); whether it scaled.
    async fn reconcile_new_replica_set(
        &self,
        all: &[ReplicaSet],
        new_rs: &mut ReplicaSet,
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        if rs_replicas(new_rs) == replicas(d) {
            return Ok(false);
        }
        if rs_replicas(new_rs) > replicas(d) {
            return self
                .scale_replica_set_and_record_event(new_rs, replicas(d), d)
                .await;
        }
        let all: Vec<&ReplicaSet> = all.iter().collect();
        let count = util::new_rs_new_replicas(d, &all, new_rs);
        self.scale_replica_set_and_record_event(new_rs, count, d)
            .await
    }

    /// Scales old ReplicaSets down as far as maxUnavailable allows, unhealthy pods first
    /// (`reconcileOldReplicaSets`); whether anything scaled.
    async fn reconcile_old_replica_sets(
        &self,
        new_rs: &Option<ReplicaSet>,
        old: &mut [ReplicaSet],
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        let old_pods = util::replica_count(old.iter());
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods = util::replica_count(all_rss(new_rs, old));
        let min_available = replicas(d) - util::max_unavailable(d);
        let new_unavailable = new_rs
            .as_ref()
            .map(|rs| rs_replicas(rs) - rs_available(rs))
            .unwrap_or(0);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let cleaned = self
            .cleanup_unhealthy_replicas(old, d, max_scaled_down)
            .await?;
        let scaled = self
            .scale_down_old_replica_sets_for_rolling_update(new_rs, old, d)
            .await?;
        Ok(cleaned + scaled > 0)
    }

    /// Removes old replicas that are not available, oldest ReplicaSet first, up to
    /// `max_cleanup` (`cleanupUnhealthyReplicas`).
    async fn cleanup_unhealthy_replicas(
        &self,
        old: &mut [ReplicaSet],
        d: &Deployment,
        max_cleanup: i32,
    ) -> anyhow::Result<i32> {
        old.sort_by(util::by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let want = rs_replicas(rs);
            if want == 0 || want == rs_available(rs) {
                continue;
            }
            let down = (max_cleanup - total).min(want - rs_available(rs));
            let target = want - down;
            if target > want {
                // Status still counts more available pods than the spec now asks for (a
                // scale-down not yet observed): "cleaning up" would scale up. Upstream
                // refuses the same way and retries once the status catches up.
                anyhow::bail!(
                    "when cleaning up unhealthy replicas, got invalid request to scale down {}/{} {want} -> {target}",
                    rs.metadata.namespace.as_deref().unwrap_or_default(),
                    rs.metadata.name.as_deref().unwrap_or_default(),
                );
            }
            self.scale_replica_set_and_record_event(rs, target, d)
                .await?;
            total += down;
        }
        Ok(total)
    }

    /// Scales old ReplicaSets down by as many available pods as exceed
    /// `replicas - maxUnavailable`, oldest first (`scaleDownOldReplicaSetsForRollingUpdate`).
    async fn scale_down_old_replica_sets_for_rolling_update(
        &self,
        new_rs: &Option<ReplicaSet>,
        old: &mut [ReplicaSet],
        d: &Deployment,
    ) -> anyhow::Result<i32> {
        let min_available = replicas(d) - util::max_unavailable(d);
        let available = util::available_replica_count(all_rss(new_rs, old));
        if available <= min_available {
            return Ok(0);
        }
        let to_scale_down = available - min_available;
        old.sort_by(util::by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= to_scale_down {
                break;
            }
            if rs_replicas(rs) == 0 {
                continue;
            }
            let down = rs_replicas(rs).min(to_scale_down - total);
            let target = rs_replicas(rs) - down;
            self.scale_replica_set_and_record_event(rs, target, d)
                .await?;
            total += down;
        }
        Ok(total)
    }
}
