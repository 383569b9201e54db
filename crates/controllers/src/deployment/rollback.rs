//! Rollback by annotation, after upstream's `rollback.go`. kubectl's `rollout undo` rolls
//! back client-side (it copies the old ReplicaSet's template into the Deployment); the
//! controller still honours the `deprecated.deployment.rollback.to` annotation that older
//! API versions' `spec.rollbackTo` converts to.

use k8rs_client::EventType;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, PostParams};

use super::util::{self, ROLLBACK_TO_ANNOTATION};
use super::DeploymentController;

/// The revision the annotation asks for (0: the previous one), if any.
pub fn rollback_to(d: &Deployment) -> Option<i64> {
    let v = d
        .metadata
        .annotations
        .as_ref()?
        .get(ROLLBACK_TO_ANNOTATION)?;
    // An unparsable value asks for nothing, as upstream's getRollbackTo.
    v.parse().ok()
}

impl DeploymentController {
    /// Copies the template of the asked-for revision into the Deployment and drops the
    /// annotation (`rollback`).
    pub(super) async fn rollback(
        &self,
        d: &mut Deployment,
        rss: Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let (new_rs, old) = self
            .get_all_replica_sets_and_sync_revision(d, rss, true)
            .await?;
        let all: Vec<ReplicaSet> = old.into_iter().chain(new_rs).collect();
        let mut revision = rollback_to(d).unwrap_or(0);
        if revision == 0 {
            revision = util::last_revision(&all);
            if revision == 0 {
                self.recorder.record(
                    d,
                    EventType::Warning,
                    "DeploymentRollbackRevisionNotFound",
                    "Unable to find last revision.",
                );
                return self.update_deployment_and_clear_rollback_to(d).await;
            }
        }
        for rs in &all {
            if util::revision(rs) != revision {
                continue;
            }
            let Some(template) = rs.spec.as_ref().and_then(|s| s.template.clone()) else {
                continue;
            };
            if util::equal_ignore_hash(&template, &util::template(d)) {
                self.recorder.record(
                    d,
                    EventType::Warning,
                    "DeploymentRollbackTemplateUnchanged",
                    format!("The rollback revision contains the same template as current deployment {:?}", d.metadata.name.as_deref().unwrap_or_default()),
                );
            } else {
                let mut template = template;
                if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                    labels.remove(util::POD_TEMPLATE_HASH_LABEL);
                }
                d.spec.get_or_insert_with(Default::default).template = template;
                // The rolled-back-to ReplicaSet's annotations (change cause) become the
                // Deployment's, as upstream's SetDeploymentAnnotationsTo.
                let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
                for (k, v) in rs.metadata.annotations.iter().flatten() {
                    if ![
                        util::REVISION_ANNOTATION,
                        util::REVISION_HISTORY_ANNOTATION,
                        util::DESIRED_REPLICAS_ANNOTATION,
                        util::MAX_REPLICAS_ANNOTATION,
                        "kubectl.kubernetes.io/last-applied-configuration",
                    ]
                    .contains(&k.as_str())
                    {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
                self.recorder.record(
                    d,
                    EventType::Normal,
                    "DeploymentRollback",
                    format!(
                        "Rolled back deployment {:?} to revision {revision}",
                        d.metadata.name.as_deref().unwrap_or_default()
                    ),
                );
            }
            return self.update_deployment_and_clear_rollback_to(d).await;
        }
        self.recorder.record(
            d,
            EventType::Warning,
            "DeploymentRollbackRevisionNotFound",
            "Unable to find the revision to rollback to.",
        );
        self.update_deployment_and_clear_rollback_to(d).await
    }

    async fn update_deployment_and_clear_rollback_to(
        &self,
        d: &mut Deployment,
    ) -> anyhow::Result<()> {
        if let Some(a) = d.metadata.annotations.as_mut() {
            a.remove(ROLLBACK_TO_ANNOTATION);
        }
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        *d = api
            .replace(
                d.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                d,
            )
            .await?;
        Ok(())
    }
}
