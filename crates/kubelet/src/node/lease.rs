//! The node Lease heartbeat (upstream `component-helpers/apimachinery/lease/controller.go`):
//! a `coordination.k8s.io` Lease named after the node in `kube-node-lease`, owned by the
//! Node, renewed every 10 s; the node lifecycle controller reads `renewTime`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use super::Timings;

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Renews the node's Lease forever.
pub async fn run(client: kube::Client, node: String, node_uid: String, timings: Timings) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut last: Option<Lease> = None;
    loop {
        let renewed = match last.take() {
            Some(mut lease) => {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.renew_time = Some(MicroTime(Timestamp::now()));
                }
                leases.replace(&node, &PostParams::default(), &lease).await
            }
            None => ensure(&leases, &node, &node_uid, timings).await,
        };
        let wait = match renewed {
            Ok(lease) => {
                last = Some(lease);
                timings.lease_renew
            }
            Err(e) => {
                // Retry soon (upstream: 200 ms doubling up to 7 s) from a fresh read.
                tracing::debug!(node = %node, error = %e, "failed to update lease");
                Duration::from_millis(500)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Reads the Lease (renewing it) or creates it.
async fn ensure(
    leases: &Api<Lease>,
    node: &str,
    node_uid: &str,
    timings: Timings,
) -> kube::Result<Lease> {
    let spec = LeaseSpec {
        holder_identity: Some(node.to_string()),
        lease_duration_seconds: Some(timings.lease_duration.as_secs() as i32),
        renew_time: Some(MicroTime(Timestamp::now())),
        ..Default::default()
    };
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(node.to_string()),
            namespace: Some(LEASE_NAMESPACE.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.to_string(),
                uid: node_uid.to_string(),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: Some(spec.clone()),
    };
    // Create first: on a fresh node that is one request, not a read and a write.
    match leases.create(&PostParams::default(), &lease).await {
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let mut existing = leases.get(node).await?;
            existing.spec = Some(spec);
            leases
                .replace(node, &PostParams::default(), &existing)
                .await
        }
        other => other,
    }
}
