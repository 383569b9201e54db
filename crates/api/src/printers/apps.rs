//! `apps/v1` kinds.

use serde_json::Value;

use super::{
    age_cell, arr_at, col, container_cells, int_at, name, str_at, Printer, AGE, CONTAINERS, IMAGES,
    NAME,
};
use crate::selectors::labels::{format_label_selector, format_labels, LabelSelector};

/// `spec.replicas`, defaulted to 1 as upstream's defaulting does.
fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn template_containers(obj: &Value) -> (String, String) {
    container_cells(arr_at(obj, "/spec/template/spec/containers"))
}

/// Deployments.
pub static DEPLOYMENT: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state", 0),
        col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
        col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
    ],
    row: |obj, now| {
        let (names, images) = template_containers(obj);
        // Upstream prints the selector's String() here, not FormatLabelSelector.
        let selector = match LabelSelector::from_json(obj.pointer("/spec/selector").unwrap_or(&Value::Null)) {
            Ok(s) => s.to_string(),
            Err(_) => "<invalid>".into(),
        };
        vec![
            name(obj).into(),
            format!("{}/{}", int_at(obj, "/status/readyReplicas"), replicas(obj)).into(),
            int_at(obj, "/status/updatedReplicas").into(),
            int_at(obj, "/status/availableReplicas").into(),
            age_cell(obj, now),
            names.into(),
            images.into(),
            selector.into(),
        ]
    },
};

/// ReplicaSets.
pub static REPLICA_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller", 0),
        col("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller", 0),
        col("Ready", "integer", "The number of ready replicas for this replica set.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        col("Selector", "string", "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1),
    ],
    row: |obj, now| {
        let (names, images) = template_containers(obj);
        vec![
            name(obj).into(),
            replicas(obj).into(),
            int_at(obj, "/status/replicas").into(),
            int_at(obj, "/status/readyReplicas").into(),
            age_cell(obj, now),
            names.into(),
            images.into(),
            format_label_selector(obj.pointer("/spec/selector")).into(),
        ]
    },
};

/// StatefulSets.
pub static STATEFUL_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state", 0),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    row: |obj, now| {
        let (names, images) = template_containers(obj);
        vec![
            name(obj).into(),
            format!("{}/{}", int_at(obj, "/status/readyReplicas"), replicas(obj)).into(),
            age_cell(obj, now),
            names.into(),
            images.into(),
        ]
    },
};

/// DaemonSets.
pub static DAEMON_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).", 0),
        col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.", 0),
        col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.", 0),
        col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod", 0),
        col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)", 0),
        col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        col("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1),
    ],
    row: |obj, now| {
        let (names, images) = template_containers(obj);
        vec![
            name(obj).into(),
            int_at(obj, "/status/desiredNumberScheduled").into(),
            int_at(obj, "/status/currentNumberScheduled").into(),
            int_at(obj, "/status/numberReady").into(),
            int_at(obj, "/status/updatedNumberScheduled").into(),
            int_at(obj, "/status/numberAvailable").into(),
            format_labels(obj.pointer("/spec/template/spec/nodeSelector")).into(),
            age_cell(obj, now),
            names.into(),
            images.into(),
            format_label_selector(obj.pointer("/spec/selector")).into(),
        ]
    },
};

/// ControllerRevisions.
pub static CONTROLLER_REVISION: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", "string", "Controller of the object", 0),
        col(
            "Revision",
            "string",
            "Revision indicates the revision of the state represented by Data.",
            0,
        ),
        AGE,
    ],
    row: |obj, now| {
        vec![
            name(obj).into(),
            controller_of(obj).into(),
            int_at(obj, "/revision").into(),
            age_cell(obj, now),
        ]
    },
};

/// `kind.group/name` of the controlling owner (upstream `formatResourceName`), or `<none>`.
fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".into();
    };
    let api_version = str_at(owner, "/apiVersion");
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let kind = str_at(owner, "/kind");
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    if group_kind.is_empty() {
        return str_at(owner, "/name").into();
    }
    format!("{}/{}", group_kind.to_lowercase(), str_at(owner, "/name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    #[test]
    fn deployment_row() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let row = (DEPLOYMENT.row)(&d, Utc::now());
        assert_eq!(row[1], "2/3");
        assert_eq!(row[2], 3);
        assert_eq!(row[3], 2);
        assert_eq!(row[4], "<unknown>");
        assert_eq!(
            &row[5..],
            &[json!("a,b"), json!("nginx,busybox"), json!("app=web")]
        );
    }

    #[test]
    fn controller_revision_owner() {
        let cr = json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2});
        assert_eq!(controller_of(&cr), "statefulset.apps/db");
        assert_eq!(controller_of(&json!({})), "<none>");
    }
}
