//! What every Deployment sync shares, after upstream's `sync.go`: finding (or creating) the
//! new ReplicaSet and syncing revisions, scaling (proportionally while a rollout is under
//! way), cleaning up old ReplicaSets beyond `revisionHistoryLimit`, and the status.

use k8rs_client::EventType;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};

use super::util::{self, replicas, rs_replicas};
use super::DeploymentController;
use crate::controller_utils::{controller_ref, error_message, is_not_found};

/// The ReplicaSets of a sync, by reference: the new one last.
pub(super) fn all_rss<'a>(
    new_rs: &'a Option<ReplicaSet>,
    old: &'a [ReplicaSet],
) -> Vec<&'a ReplicaSet> {
    old.iter().chain(new_rs.iter()).collect()
}

impl DeploymentController {
    /// Only the status: for Deployments being deleted (`syncStatusOnly`).
    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let (new_rs, old) = self
            .get_all_replica_sets_and_sync_revision(d, rss, false)
            .await?;
        self.sync_deployment_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
            .await
    }

    /// Scaling without rolling out: paused Deployments and scaling events (`sync`).
    pub(super) async fn sync_without_rollout(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let (mut new_rs, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rss, false)
            .await?;
        self.scale(d, &mut new_rs, &mut old).await?;
        if util::is_paused(d) && super::rollback::rollback_to(d).is_none() {
            self.cleanup_deployment(&old, d).await?;
        }
        self.sync_deployment_status(&all_rss(&new_rs, &old), new_rs.as_ref(), d)
            .await
    }

    /// Keeps the `Progressing` condition in step with `spec.paused` (`checkPausedConditions`).
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if !util::has_progress_deadline(d) {
            return Ok(());
        }
        let status = d.status.clone().unwrap_or_default();
        let cond = util::get_condition(&status, "Progressing");
        // A reported lack of progress is not overwritten by a pause.
        if cond.is_some_and(|c| c.reason.as_deref() == Some(util::TIMED_OUT_REASON)) {
            return Ok(());
        }
        let paused_exists =
            cond.is_some_and(|c| c.reason.as_deref() == Some(util::PAUSED_DEPLOY_REASON));
        let mut status = status.clone();
        if util::is_paused(d) && !paused_exists {
            util::set_condition(
                &mut status,
                util::new_condition(
                    "Progressing",
                    "Unknown",
                    util::PAUSED_DEPLOY_REASON,
                    "Deployment is paused".into(),
                ),
            );
        } else if !util::is_paused(d) && paused_exists {
            util::set_condition(
                &mut status,
                util::new_condition(
                    "Progressing",
                    "Unknown",
                    util::RESUMED_DEPLOY_REASON,
                    "Deployment is resumed".into(),
                ),
            );
        } else {
            return Ok(());
        }
        d.status = Some(status);
        *d = self.update_status(d).await?;
        Ok(())
    }

    /// The new ReplicaSet (created if asked and missing) and all old ones, with revisions
    /// synced (`getAllReplicaSetsAndSyncRevision`).
    pub(super) async fn get_all_replica_sets_and_sync_revision(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
        create_if_missing: bool,
    ) -> anyhow::Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let old = util::find_old_replica_sets(d, &rss);
        let new_rs = self
            .get_new_replica_set(d, &rss, &old, create_if_missing)
            .await?;
        Ok((new_rs, old))
    }

    /// `getNewReplicaSet`: brings an existing new ReplicaSet's annotations and
    /// minReadySeconds up to date, or creates it named `<deployment>-<pod-template-hash>`.
    async fn get_new_replica_set(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        old: &[ReplicaSet],
        create_if_missing: bool,
    ) -> anyhow::Result<Option<ReplicaSet>> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let existing = util::find_new_replica_set(d, rss);
        let new_revision = (util::max_revision(old) + 1).to_string();
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(existing) = existing {
            let mut rs = existing.clone();
            let annotations_updated = util::set_new_replica_set_annotations(
                d,
                &mut rs,
                &new_revision,
                true,
                util::MAX_REV_HISTORY_LENGTH_IN_CHARS,
            );
            let spec = rs.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
            if annotations_updated || min_ready_changed {
                spec.min_ready_seconds = min_ready;
                let name = rs.metadata.name.clone().unwrap_or_default();
                return Ok(Some(api.replace(&name, &PostParams::default(), &rs).await?));
            }
            // The revision the existing new ReplicaSet carries is the Deployment's.
            let rs_revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            if util::set_deployment_revision(d, &rs_revision) {
                self.write_revision(d).await?;
            }
            let has_progressing = d
                .status
                .as_ref()
                .and_then(|s| util::get_condition(s, "Progressing"))
                .is_some();
            if util::has_progress_deadline(d) && !has_progressing {
                let msg = format!(
                    "Found new replica set {:?}",
                    rs.metadata.name.as_deref().unwrap_or_default()
                );
                let status = d.status.get_or_insert_with(Default::default);
                util::set_condition(
                    status,
                    util::new_condition("Progressing", "True", util::FOUND_NEW_RS_REASON, msg),
                );
                *d = self.update_status(d).await?;
            }
            return Ok(Some(rs));
        }
        if !create_if_missing {
            return Ok(None);
        }
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = util::template(d);
        let hash = util::compute_hash(&template, collision_count);
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(util::POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(util::POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                owner_references: Some(vec![controller_ref(d)]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: min_ready,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&new_rs);
        let count = util::new_rs_new_replicas(d, &all, &new_rs);
        new_rs.spec.as_mut().unwrap().replicas = Some(count);
        util::set_new_replica_set_annotations(
            d,
            &mut new_rs,
            &new_revision,
            false,
            util::MAX_REV_HISTORY_LENGTH_IN_CHARS,
        );
        let mut already_exists = false;
        let created = match api.create(&PostParams::default(), &new_rs).await {
            Ok(created) => created,
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                already_exists = true;
                let found = self
                    .replica_sets
                    .get(&k8rs_client::ObjectKey::new(&ns, &name))
                    .ok_or_else(|| {
                        anyhow::anyhow!("replicaset.apps {name:?} exists but is not cached yet")
                    })?;
                let ours = crate::controller_utils::controller_of(&found.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &util::template(d)));
                if !(ours && same) {
                    // A hash collision: bump the count so the next sync picks another name.
                    let status = d.status.get_or_insert_with(Default::default);
                    status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                    self.update_status(d).await?;
                    anyhow::bail!("replicasets.apps {name:?} already exists (hash collision)");
                }
                (*found).clone()
            }
            Err(e) => {
                let terminating = matches!(&e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")));
                if terminating {
                    return Err(e.into());
                }
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    error_message(&e)
                );
                if util::has_progress_deadline(d) {
                    let status = d.status.get_or_insert_with(Default::default);
                    util::set_condition(
                        status,
                        util::new_condition(
                            "Progressing",
                            "False",
                            util::FAILED_RS_CREATE_REASON,
                            msg.clone(),
                        ),
                    );
                    let _ = self.update_status(d).await;
                }
                self.recorder
                    .record(d, EventType::Warning, util::FAILED_RS_CREATE_REASON, msg);
                return Err(e.into());
            }
        };
        if !already_exists && count > 0 {
            self.recorder.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {count}"),
            );
        }
        if util::set_deployment_revision(d, &new_revision) {
            self.write_revision(d).await?;
        }
        if !already_exists && util::has_progress_deadline(d) {
            let msg = format!("Created new replica set {name:?}");
            let status = d.status.get_or_insert_with(Default::default);
            util::set_condition(
                status,
                util::new_condition("Progressing", "True", util::NEW_RS_REASON, msg),
            );
            *d = self.update_status(d).await?;
        }
        Ok(Some(created))
    }

    /// Scales to `spec.replicas` outside a rollout (`scale`): a single active ReplicaSet
    /// takes everything; a saturated new one leaves the old ones nothing; otherwise the
    /// difference is spread over all active ReplicaSets in proportion to their sizes.
    pub(super) async fn scale(
        &self,
        d: &Deployment,
        new_rs: &mut Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> anyhow::Result<()> {
        if let Some(rs) = find_active_or_latest(new_rs, old) {
            if rs_replicas(rs) == replicas(d) {
                return Ok(());
            }
            self.scale_replica_set_and_record_event(rs, replicas(d), d)
                .await?;
            return Ok(());
        }
        if util::is_saturated(d, new_rs.as_ref()) {
            for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
                self.scale_replica_set_and_record_event(rs, 0, d).await?;
            }
            return Ok(());
        }
        if !util::is_rolling_update(d) {
            return Ok(());
        }
        let mut all: Vec<&mut ReplicaSet> = old
            .iter_mut()
            .chain(new_rs.iter_mut())
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        let sizes = proportional_sizes(d, &mut all);
        let operation = if sizes.1 > 0 { "up" } else { "down" };
        for (rs, size) in all.into_iter().zip(sizes.0) {
            self.scale_replica_set(rs, size, d, operation).await?;
        }
        Ok(())
    }

    /// Scales one ReplicaSet, recording `ScalingReplicaSet` (`scaleReplicaSetAndRecordEvent`).
    pub(super) async fn scale_replica_set_and_record_event(
        &self,
        rs: &mut ReplicaSet,
        new_scale: i32,
        d: &Deployment,
    ) -> anyhow::Result<bool> {
        if rs_replicas(rs) == new_scale {
            return Ok(false);
        }
        let operation = if rs_replicas(rs) < new_scale {
            "up"
        } else {
            "down"
        };
        self.scale_replica_set(rs, new_scale, d, operation).await
    }

    /// Sets a ReplicaSet's size and its replica annotations (`scaleReplicaSet`); `rs`
    /// becomes the stored object. Returns whether the size changed.
    pub(super) async fn scale_replica_set(
        &self,
        rs: &mut ReplicaSet,
        new_scale: i32,
        d: &Deployment,
        operation: &str,
    ) -> anyhow::Result<bool> {
        let old_scale = rs_replicas(rs);
        let size_changed = old_scale != new_scale;
        let max = replicas(d) + util::max_surge(d);
        let annotations_changed = util::replicas_annotations_need_update(rs, replicas(d), max);
        if !size_changed && !annotations_changed {
            return Ok(false);
        }
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(new_scale);
        util::set_replicas_annotations(&mut copy, replicas(d), max);
        let name = copy.metadata.name.clone().unwrap_or_default();
        let api: Api<ReplicaSet> = Api::namespaced(
            self.client.clone(),
            copy.metadata.namespace.as_deref().unwrap_or_default(),
        );
        *rs = api.replace(&name, &PostParams::default(), &copy).await?;
        if size_changed {
            self.recorder.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled {operation} replica set {name} from {old_scale} to {new_scale}"),
            );
        }
        Ok(size_changed)
    }

    /// Deletes the oldest empty ReplicaSets beyond `revisionHistoryLimit` (`cleanupDeployment`).
    pub(super) async fn cleanup_deployment(
        &self,
        old: &[ReplicaSet],
        d: &Deployment,
    ) -> anyhow::Result<()> {
        let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        let api: Api<ReplicaSet> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_actual(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
                || rs.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let name = rs.metadata.name.as_deref().unwrap_or_default();
            if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                if !is_not_found(&e) {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Writes the status computed from the ReplicaSets, if it changed (`syncDeploymentStatus`).
    pub(super) async fn sync_deployment_status(
        &self,
        all: &[&ReplicaSet],
        new_rs: Option<&ReplicaSet>,
        d: &mut Deployment,
    ) -> anyhow::Result<()> {
        let status = calculate_status(all, new_rs, d);
        if d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        d.status = Some(status);
        *d = self.update_status(d).await?;
        Ok(())
    }

    /// Whether `spec.replicas` changed since the active ReplicaSets were last scaled
    /// (`isScalingEvent`: their `desired-replicas` annotation differs).
    pub(super) async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
    ) -> anyhow::Result<bool> {
        let (new_rs, old) = self
            .get_all_replica_sets_and_sync_revision(d, rss.to_vec(), false)
            .await?;
        Ok(util::active(all_rss(&new_rs, &old))
            .into_iter()
            .filter_map(util::desired_replicas_annotation)
            .any(|desired| desired != replicas(d)))
    }
}

/// The only active ReplicaSet, or the newest if none is active (`FindActiveOrLatest`).
fn find_active_or_latest<'a>(
    new_rs: &'a mut Option<ReplicaSet>,
    old: &'a mut [ReplicaSet],
) -> Option<&'a mut ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    old.sort_by(|a, b| util::by_creation(b, a));
    let active_count = old
        .iter()
        .chain(new_rs.iter())
        .filter(|rs| rs_replicas(rs) > 0)
        .count();
    match active_count {
        0 => match new_rs {
            Some(rs) => Some(rs),
            None => old.first_mut(),
        },
        1 => old
            .iter_mut()
            .chain(new_rs.iter_mut())
            .find(|rs| rs_replicas(rs) > 0),
        _ => None,
    }
}

/// The target sizes of `all` (sorted here as upstream sorts them) in a proportional scale,
/// and the total change. Leftovers from rounding go to the first (largest) ReplicaSet.
pub(super) fn proportional_sizes(d: &Deployment, all: &mut [&mut ReplicaSet]) -> (Vec<i32>, i32) {
    let current = all.iter().map(|rs| rs_replicas(rs)).sum::<i32>();
    let allowed = if replicas(d) > 0 {
        replicas(d) + util::max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    if to_add > 0 {
        all.sort_by(|a, b| util::by_size_newer(a, b));
    } else if to_add < 0 {
        all.sort_by(|a, b| util::by_size_older(a, b));
    }
    let mut added = 0;
    let mut sizes: Vec<i32> = all
        .iter()
        .map(|rs| {
            if to_add == 0 {
                return rs_replicas(rs);
            }
            let p = util::proportion(rs, d, to_add, added);
            added += p;
            rs_replicas(rs) + p
        })
        .collect();
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            *first = (*first + to_add - added).max(0);
        }
    }
    (sizes, to_add)
}

/// The Deployment status the ReplicaSets add up to (`calculateStatus`), with the
/// `Available` condition for `replicas - maxUnavailable` available pods.
pub fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available = util::available_replica_count(all.iter().copied());
    let total = util::replica_count(all.iter().copied());
    let unavailable = (total - available).max(0);
    let nonzero = |n: i32| (n != 0).then_some(n);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(util::actual_replica_count(all.iter().copied())),
        updated_replicas: nonzero(util::actual_replica_count(new_rs)),
        ready_replicas: nonzero(util::ready_replica_count(all.iter().copied())),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero(unavailable),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        conditions: d.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    if available >= replicas(d) - util::max_unavailable(d) {
        util::set_condition(
            &mut status,
            util::new_condition(
                "Available",
                "True",
                util::MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        util::set_condition(
            &mut status,
            util::new_condition(
                "Available",
                "False",
                util::MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    status
}
