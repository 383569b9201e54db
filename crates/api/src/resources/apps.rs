//! `apps/v1` resources (upstream `pkg/registry/apps/*`).

use serde_json::{json, Value};

use super::{CreateStatus, ResourceStrategy};
use crate::printers::apps as p;
use crate::selectors::fields::common_field;

const APPS_V1: (&str, &str) = ("apps", "v1");

/// The apps resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(APPS_V1, "ControllerRevision", "controllerrevisions", true, &p::CONTROLLER_REVISION),
        ResourceStrategy::new(APPS_V1, "DaemonSet", "daemonsets", true, &p::DAEMON_SET)
            .short(&["ds"])
            .in_all()
            .status(CreateStatus::Reset(|_| {
                json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0})
            }))
            .generation(),
        ResourceStrategy::new(APPS_V1, "Deployment", "deployments", true, &p::DEPLOYMENT)
            .short(&["deploy"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({})))
            .scale()
            .generation()
            .generation_on_annotations(),
        ResourceStrategy::new(APPS_V1, "ReplicaSet", "replicasets", true, &p::REPLICA_SET)
            .short(&["rs"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({"replicas": 0})))
            .scale()
            .fields(|obj, path| match path {
                "status.replicas" => {
                    Some(obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0).to_string())
                }
                _ => common_field(obj, path),
            })
            .generation(),
        ResourceStrategy::new(APPS_V1, "StatefulSet", "statefulsets", true, &p::STATEFUL_SET)
            .short(&["sts"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({"replicas": 0, "availableReplicas": 0})))
            .scale()
            .generation(),
    ]
}
