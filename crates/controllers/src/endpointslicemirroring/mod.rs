//! The EndpointSlice mirroring controller (upstream `pkg/controller/endpointslicemirroring`):
//! the Endpoints of a Service without a selector (hand-written back ends) are mirrored
//! into EndpointSlices, so consumers that read only slices (proxies, DNS) see them too.
//! Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (the API
//! server's own `kubernetes` Endpoints) are not mirrored.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::controller::{run_workers, Context, Controller};
use crate::endpoint::util::{HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};
use crate::endpointslice::reconciler::{self, Desired, SliceTemplate};
use crate::endpointslice::writer::SliceWriter;
use crate::endpointslice::{
    managed_by, MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL,
};
use k8rs_client::{Informer, ObjectKey, WorkQueue};

/// This controller's name in the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// The label that opts Endpoints out of mirroring.
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Mirrors selector-less Services' Endpoints into EndpointSlices.
pub struct MirroringController {
    queue: WorkQueue<ObjectKey>,
    services: Informer<Service>,
    endpoints: Informer<Endpoints>,
    slices: Informer<EndpointSlice>,
    writer: SliceWriter,
}

/// Registers the handlers (Endpoints, Services, mirrored slices) and starts the
/// workers; keys are Endpoints (= Service) keys.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let services = ctx.informers.get::<Service>();
    let endpoints = ctx.informers.get::<Endpoints>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let q = queue.clone();
    endpoints.add_handler(move |change| q.add(ObjectKey::of(change.object().as_ref())));
    let q = queue.clone();
    services.add_handler(move |change| q.add(ObjectKey::of(change.object().as_ref())));
    let q = queue.clone();
    slices.add_handler(move |change| {
        let slice = change.object();
        if let Some(owner) = managed_by(slice, CONTROLLER_NAME) {
            q.add(ObjectKey::new(
                slice.metadata.namespace.clone().unwrap_or_default(),
                owner,
            ));
        }
    });
    let controller = Arc::new(MirroringController {
        queue: queue.clone(),
        services,
        endpoints,
        slices,
        writer: SliceWriter::new(ctx.client.clone()),
    });
    run_workers(controller, queue, 2)
}

#[async_trait::async_trait]
impl Controller for MirroringController {
    fn name(&self) -> &'static str {
        "endpointslice-mirroring-controller"
    }

    /// Upstream `syncEndpoints`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.services.wait_synced().await;
        self.endpoints.wait_synced().await;
        self.slices.wait_synced().await;
        let existing: Vec<EndpointSlice> = self
            .slices
            .list_namespace(&key.namespace)
            .into_iter()
            .filter(|s| managed_by(s, CONTROLLER_NAME).as_deref() == Some(key.name.as_str()))
            .map(|s| (*s).clone())
            .collect();
        if !self.writer.caught_up(key, &existing) {
            self.queue
                .add_after(key.clone(), std::time::Duration::from_millis(100));
            return Ok(());
        }
        let endpoints = self.endpoints.get(key);
        let service = self.services.get(key);
        let mirror = match (&endpoints, &service) {
            (Some(ep), Some(svc)) => {
                should_mirror(ep) && crate::endpoint::util::selector(svc).is_none()
            }
            _ => false,
        };
        let Some(endpoints) = endpoints.filter(|_| mirror) else {
            // Nothing (any more) to mirror: the mirrored slices go.
            let deletes = existing
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .map(reconciler::Write::Delete)
                .collect();
            return self.writer.apply(key, deletes, None).await;
        };
        let template = template(&endpoints);
        let desired = desired(&endpoints);
        let writes = reconciler::reconcile(&template, desired, &existing, MAX_ENDPOINTS_PER_SLICE);
        let trigger = endpoints
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
            .cloned();
        self.writer.apply(key, writes, trigger).await
    }
}

/// Upstream `shouldMirror`: not opted out.
fn should_mirror(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_none_or(|v| v != "true")
}

/// Upstream `newEndpointSlice` of the mirroring controller: the Endpoints' labels and
/// annotations (less the reserved and bookkeeping ones), owned by the Endpoints.
fn template(endpoints: &Endpoints) -> SliceTemplate {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = endpoints
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != MANAGED_BY_LABEL && k != SERVICE_NAME_LABEL && k != HEADLESS_LABEL)
        .collect();
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    let annotations = endpoints
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != LAST_APPLIED && k != LAST_CHANGE_TRIGGER_TIME)
        .collect();
    SliceTemplate {
        namespace: endpoints.metadata.namespace.clone().unwrap_or_default(),
        generate_name: format!("{name}-"),
        labels,
        annotations,
        owner: OwnerReference {
            api_version: "v1".into(),
            kind: "Endpoints".into(),
            name,
            uid: endpoints.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
        placeholder: false,
    }
}

/// The endpoints of every subset, grouped by the subset's ports; IPv4 addresses only
/// (k8rs Services are single-stack).
pub fn desired(endpoints: &Endpoints) -> Desired {
    let mut desired: Desired = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let entry = desired
            .entry(reconciler::ports_key(&ports))
            .or_insert_with(|| (ports.clone(), Vec::new()));
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (address, ready) in ready.chain(not_ready) {
            if address.ip.parse::<std::net::Ipv4Addr>().is_err() {
                continue;
            }
            if entry
                .1
                .iter()
                .any(|e| e.addresses.first() == Some(&address.ip))
            {
                continue;
            }
            entry.1.push(address_to_endpoint(address, ready));
        }
    }
    desired.retain(|_, (_, eps)| !eps.is_empty());
    desired
}

/// Upstream `addressToEndpoint`.
fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![address.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: None,
            terminating: None,
        }),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Endpoint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subsets_become_endpoints_grouped_by_ports() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default", "uid": "ep-uid",
                         "labels": {"team": "data", SKIP_MIRROR_LABEL: "false"},
                         "annotations": {LAST_APPLIED: "{}", "note": "x"}},
            "subsets": [
                {"addresses": [{"ip": "192.0.2.10"}], "notReadyAddresses": [{"ip": "192.0.2.11"}],
                 "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]},
                {"addresses": [{"ip": "2001:db8::1"}], "ports": [{"port": 80}]},
            ],
        }))
        .unwrap();
        assert!(should_mirror(&ep));
        let d = desired(&ep);
        assert_eq!(d.len(), 1, "the IPv6-only subset is left out: {d:?}");
        let (ports, eps) = d.values().next().unwrap();
        assert_eq!(ports[0].port, Some(5432));
        let summary: Vec<(String, Option<bool>)> = eps
            .iter()
            .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().unwrap().ready))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("192.0.2.10".into(), Some(true)),
                ("192.0.2.11".into(), Some(false))
            ]
        );
        let t = template(&ep);
        assert_eq!(t.labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(t.labels[SERVICE_NAME_LABEL], "db");
        assert_eq!(t.labels["team"], "data");
        assert_eq!(
            t.annotations,
            BTreeMap::from([("note".to_string(), "x".to_string())])
        );
        assert_eq!(
            (t.owner.kind.as_str(), t.owner.uid.as_str()),
            ("Endpoints", "ep-uid")
        );
        assert!(!t.placeholder);
    }

    #[test]
    fn skip_mirror_label_opts_out() {
        let ep: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "kubernetes", "labels": {SKIP_MIRROR_LABEL: "true"}},
        }))
        .unwrap();
        assert!(!should_mirror(&ep));
    }
}
