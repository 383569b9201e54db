//! Rollout progress, after upstream's `progress.go`: the `Progressing` condition
//! (ReplicaSetUpdated while pods move, NewReplicaSetAvailable when done,
//! ProgressDeadlineExceeded after `progressDeadlineSeconds` without progress), replica
//! failures surfaced from the ReplicaSets, and a timed re-check of stuck rollouts.

use std::time::Duration;

use k8rs_client::ObjectKey;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;

use super::sync::calculate_status;
use super::util::{self, NEW_RS_AVAILABLE_REASON, RS_UPDATED_REASON, TIMED_OUT_REASON};
use super::DeploymentController;

impl DeploymentController {
    /// Writes the status with the progress conditions (`syncRolloutStatus`).
    pub(super) async fn sync_rollout_status(
        &self,
        all: &[&ReplicaSet],
        new_rs: Option<&ReplicaSet>,
        d: &mut Deployment,
    ) -> anyhow::Result<()> {
        let mut status = calculate_status(all, new_rs, d);
        if !util::has_progress_deadline(d) {
            util::remove_condition(&mut status, "Progressing");
        }
        let current = d
            .status
            .as_ref()
            .and_then(|s| util::get_condition(s, "Progressing"))
            .cloned();
        let complete_before = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE_REASON));
        let new_rs_name = new_rs
            .and_then(|rs| rs.metadata.name.clone())
            .unwrap_or_default();
        if util::has_progress_deadline(d) && !complete_before {
            if util::deployment_complete(d, &status) {
                let msg = format!("ReplicaSet {new_rs_name:?} has successfully progressed.");
                util::set_condition(
                    &mut status,
                    util::new_condition("Progressing", "True", NEW_RS_AVAILABLE_REASON, msg),
                );
            } else if util::deployment_progressing(d, &status) {
                let msg = if new_rs.is_some() {
                    format!("ReplicaSet {new_rs_name:?} is progressing.")
                } else {
                    "Deployment is progressing.".to_string()
                };
                let mut cond = util::new_condition("Progressing", "True", RS_UPDATED_REASON, msg);
                // Progress moves lastUpdateTime on; the transition time stays while the
                // condition stays true.
                if let Some(current) = &current {
                    if current.status == "True" {
                        cond.last_transition_time = current.last_transition_time.clone();
                    }
                    util::remove_condition(&mut status, "Progressing");
                }
                util::set_condition(&mut status, cond);
            } else if util::deployment_timed_out(d, &status, Timestamp::now()) {
                let msg = format!("ReplicaSet {new_rs_name:?} has timed out progressing.");
                util::set_condition(
                    &mut status,
                    util::new_condition("Progressing", "False", TIMED_OUT_REASON, msg),
                );
            }
        }
        match replica_failures(all, new_rs).into_iter().next() {
            Some(failure) => util::set_condition(&mut status, failure),
            None => util::remove_condition(&mut status, "ReplicaFailure"),
        }
        if d.status.as_ref() == Some(&status) {
            self.requeue_stuck_deployment(d, &status);
            return Ok(());
        }
        d.status = Some(status);
        *d = self.update_status(d).await?;
        Ok(())
    }

    /// Looks at a rollout again when its deadline passes, since no event will say so
    /// (`requeueStuckDeployment`).
    fn requeue_stuck_deployment(&self, d: &Deployment, status: &DeploymentStatus) {
        let Some(current) = d
            .status
            .as_ref()
            .and_then(|s| util::get_condition(s, "Progressing"))
        else {
            return;
        };
        if !util::has_progress_deadline(d)
            || util::deployment_complete(d, status)
            || current.reason.as_deref() == Some(TIMED_OUT_REASON)
        {
            return;
        }
        let Some(updated) = current.last_update_time.as_ref().map(|t| t.0) else {
            return;
        };
        let deadline = i64::from(
            d.spec
                .as_ref()
                .and_then(|s| s.progress_deadline_seconds)
                .unwrap_or(0),
        );
        let after_ms =
            (updated.as_millisecond() + deadline * 1000) - Timestamp::now().as_millisecond();
        let key = ObjectKey::of(d);
        if after_ms < 1000 {
            // Upstream re-queues rate-limited here; conditions carry whole seconds, so a
            // short fixed delay reaches the deadline without spinning.
            self.queue.add_after(key, Duration::from_millis(250));
        } else {
            self.queue
                .add_after(key, Duration::from_millis(after_ms as u64 + 1000));
        }
    }
}

/// `ReplicaFailure` conditions of the new ReplicaSet, else of any (`getReplicaFailures`).
fn replica_failures(all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> Vec<DeploymentCondition> {
    let of = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.type_ == "ReplicaFailure")
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
            .collect()
    };
    if let Some(rs) = new_rs {
        let failures = of(rs);
        if !failures.is_empty() {
            return failures;
        }
    }
    all.iter().flat_map(|rs| of(rs)).collect()
}
