//! ReplicationControllers, run by the ReplicaSet logic as upstream's
//! `pkg/controller/replication` does: a ReplicationController converts to a ReplicaSet
//! (its map selector becomes `matchLabels`) and the computed status converts back.

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ReplicationController, ReplicationControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::ReplicaOwner;
use crate::controller::Context;

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";

    fn to_replica_set(&self) -> ReplicaSet {
        let spec = self.spec.clone().unwrap_or_default();
        ReplicaSet {
            metadata: self.metadata.clone(),
            spec: Some(ReplicaSetSpec {
                min_ready_seconds: spec.min_ready_seconds,
                replicas: spec.replicas,
                selector: LabelSelector {
                    match_labels: spec.selector,
                    match_expressions: None,
                },
                template: spec.template,
            }),
            // The two statuses have the same fields and wire form.
            status: self
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| serde_json::from_value(v).ok()),
        }
    }

    fn set_status(&mut self, status: ReplicaSetStatus) {
        self.status = serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value::<ReplicationControllerStatus>(v).ok());
    }
}

/// Starts the ReplicationController controller (`replication-controller` in events).
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    super::start_for::<ReplicationController>(ctx)
}
