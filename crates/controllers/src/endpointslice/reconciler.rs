//! From desired endpoints and existing slices to writes (upstream `reconciler.go`,
//! `reconcileByPortMapping`): endpoints stay in the slice that already holds them,
//! slices with room are filled before new ones are made, emptied slices go, and a
//! Service with no endpoints keeps one empty placeholder slice.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::endpoint::util::{self, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};

/// Desired endpoints by port-set key: the ports and the endpoints offering them.
pub type Desired = BTreeMap<String, (Vec<EndpointPort>, Vec<Endpoint>)>;

/// One write to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A new slice (named by `generateName`).
    Create(EndpointSlice),
    /// A changed slice.
    Update(EndpointSlice),
    /// A slice to delete, by name.
    Delete(String),
}

/// The address type k8rs Services use (single-stack IPv4).
const ADDRESS_TYPE: &str = "IPv4";

/// A stable key for a set of ports (upstream `NewPortMapKey`).
pub fn ports_key(ports: &[EndpointPort]) -> String {
    let mut parts: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.port.unwrap_or(0),
                p.protocol.as_deref().unwrap_or(""),
                p.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    parts.sort();
    parts.join(",")
}

fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_else(|| e.addresses.join(","))
}

/// The labels every slice of `service` carries (upstream `setEndpointSliceLabels`).
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != SERVICE_NAME_LABEL && k != MANAGED_BY_LABEL)
        .collect();
    if util::is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// What every slice written for one owner shares: where it lives, its name prefix,
/// labels, annotations and owner reference.
#[derive(Clone, Debug)]
pub struct SliceTemplate {
    /// The owner's namespace.
    pub namespace: String,
    /// `generateName` of new slices (`<owner>-`).
    pub generate_name: String,
    /// Labels every slice carries.
    pub labels: BTreeMap<String, String>,
    /// Annotations every slice carries.
    pub annotations: BTreeMap<String, String>,
    /// The controller reference to the owner (Service, or mirrored Endpoints).
    pub owner: OwnerReference,
    /// Whether an owner with no endpoints keeps one empty placeholder slice (the
    /// EndpointSlice controller does; mirroring does not).
    pub placeholder: bool,
}

impl SliceTemplate {
    /// The template for the slices of `service` (upstream `newEndpointSlice`).
    pub fn for_service(service: &Service) -> Self {
        let name = service.metadata.name.clone().unwrap_or_default();
        SliceTemplate {
            namespace: service.metadata.namespace.clone().unwrap_or_default(),
            generate_name: format!("{name}-"),
            labels: slice_labels(service),
            annotations: BTreeMap::new(),
            owner: OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: service.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            placeholder: true,
        }
    }

    /// A new, empty slice for `ports`.
    pub fn new_slice(&self, ports: Vec<EndpointPort>) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(self.generate_name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels.clone()),
                annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
                owner_references: Some(vec![self.owner.clone()]),
                ..ObjectMeta::default()
            },
            address_type: ADDRESS_TYPE.into(),
            endpoints: Vec::new(),
            ports: Some(ports),
        }
    }
}

fn is_placeholder(slice: &EndpointSlice) -> bool {
    slice.address_type == ADDRESS_TYPE
        && slice.endpoints.is_empty()
        && slice.ports.as_ref().is_none_or(|p| p.is_empty())
}

/// The writes that bring `existing` (this Service's slices) to `desired`.
pub fn reconcile(
    template: &SliceTemplate,
    desired: Desired,
    existing: &[EndpointSlice],
    max: usize,
) -> Vec<Write> {
    let labels = &template.labels;
    let mut writes = Vec::new();
    let mut kept = 0usize;
    let mut by_key: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if slice.address_type != ADDRESS_TYPE {
            writes.push(Write::Delete(
                slice.metadata.name.clone().unwrap_or_default(),
            ));
            continue;
        }
        by_key
            .entry(ports_key(slice.ports.as_deref().unwrap_or_default()))
            .or_default()
            .push(slice);
    }
    for slices in by_key.values_mut() {
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }

    for (key, (ports, endpoints)) in &desired {
        let mut remaining: BTreeMap<String, Endpoint> = endpoints
            .iter()
            .map(|e| (endpoint_key(e), e.clone()))
            .collect();
        let mut order: Vec<String> = endpoints.iter().map(endpoint_key).collect();
        order.dedup();
        // Keep endpoints where they are, with their current state.
        let mut slots: Vec<(EndpointSlice, Vec<Endpoint>)> = Vec::new();
        for slice in by_key.remove(key).unwrap_or_default() {
            let eps: Vec<Endpoint> = slice
                .endpoints
                .iter()
                .filter_map(|e| remaining.remove(&endpoint_key(e)))
                .collect();
            slots.push((slice.clone(), eps));
        }
        // Fill slices with room (fullest first keeps the count low), then new ones.
        slots.sort_by_key(|(_, eps)| std::cmp::Reverse(eps.len()));
        let mut queue: Vec<Endpoint> = order.iter().filter_map(|k| remaining.remove(k)).collect();
        queue.reverse();
        for (_, eps) in slots.iter_mut() {
            if eps.is_empty() {
                continue;
            }
            while eps.len() < max {
                let Some(e) = queue.pop() else { break };
                eps.push(e);
            }
        }
        for (_, eps) in slots.iter_mut() {
            if !eps.is_empty() {
                continue;
            }
            while eps.len() < max {
                let Some(e) = queue.pop() else { break };
                eps.push(e);
            }
        }
        for (slice, eps) in slots {
            let name = slice.metadata.name.clone().unwrap_or_default();
            if eps.is_empty() {
                writes.push(Write::Delete(name));
                continue;
            }
            kept += 1;
            let same_labels = slice.metadata.labels.as_ref() == Some(labels);
            let mut annotations = slice.metadata.annotations.clone().unwrap_or_default();
            let trigger = annotations.remove(LAST_CHANGE_TRIGGER_TIME);
            if eps != slice.endpoints
                || !same_labels
                || annotations != template.annotations
                || slice.ports.as_deref().unwrap_or_default() != ports.as_slice()
            {
                let mut updated = slice.clone();
                updated.endpoints = eps;
                updated.ports = Some(ports.clone());
                updated.metadata.labels = Some(labels.clone());
                let mut annotations = template.annotations.clone();
                annotations.extend(trigger.map(|t| (LAST_CHANGE_TRIGGER_TIME.to_string(), t)));
                updated.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
                writes.push(Write::Update(updated));
            }
        }
        while !queue.is_empty() {
            let mut slice = template.new_slice(ports.clone());
            let take = queue.len().min(max);
            slice.endpoints = queue.split_off(queue.len() - take);
            slice.endpoints.reverse();
            writes.push(Write::Create(slice));
            kept += 1;
        }
    }

    // Slices for port sets no pod offers any more.
    let mut stale: Vec<&EndpointSlice> = by_key.into_values().flatten().collect();
    if kept == 0 && template.placeholder {
        // No endpoints at all: keep (or make) one placeholder.
        if let Some(pos) = stale.iter().position(|s| is_placeholder(s)) {
            stale.remove(pos);
        } else {
            writes.push(Write::Create(template.new_slice(Vec::new())));
        }
    }
    for slice in stale {
        writes.push(Write::Delete(
            slice.metadata.name.clone().unwrap_or_default(),
        ));
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use serde_json::json;

    fn service() -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.43.0.10"},
        }))
        .unwrap()
    }

    fn port(n: i32) -> EndpointPort {
        EndpointPort {
            name: Some("http".into()),
            port: Some(n),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }
    }

    fn ep(i: usize, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![format!("10.0.{}.{}", i / 250, i % 250 + 1)],
            conditions: Some(k8s_openapi::api::discovery::v1::EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(format!("p{i}")),
                uid: Some(format!("u{i}")),
                ..ObjectReference::default()
            }),
            ..Endpoint::default()
        }
    }

    fn desired(ports: Vec<EndpointPort>, eps: Vec<Endpoint>) -> Desired {
        BTreeMap::from([(ports_key(&ports), (ports, eps))])
    }

    fn named(mut slice: EndpointSlice, name: &str) -> EndpointSlice {
        slice.metadata.name = Some(name.into());
        slice
    }

    #[test]
    fn no_endpoints_means_one_placeholder() {
        let writes = reconcile(
            &SliceTemplate::for_service(&service()),
            Desired::new(),
            &[],
            100,
        );
        let [Write::Create(slice)] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert!(slice.endpoints.is_empty());
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(labels["tier"], "front");
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        // The existing placeholder is kept as is.
        let placeholder = named(slice.clone(), "web-abc");
        assert!(reconcile(
            &SliceTemplate::for_service(&service()),
            Desired::new(),
            &[placeholder],
            100
        )
        .is_empty());
    }

    #[test]
    fn endpoints_are_split_at_the_maximum() {
        let eps: Vec<Endpoint> = (0..250).map(|i| ep(i, true)).collect();
        let writes = reconcile(
            &SliceTemplate::for_service(&service()),
            desired(vec![port(8080)], eps),
            &[],
            100,
        );
        let sizes: Vec<usize> = writes
            .iter()
            .map(|w| match w {
                Write::Create(s) => s.endpoints.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn changes_update_the_slice_holding_the_endpoint_and_nothing_else() {
        let svc = service();
        let mut a = SliceTemplate::for_service(&svc).new_slice(vec![port(8080)]);
        a.endpoints = vec![ep(0, true), ep(1, true)];
        let a = named(a, "web-a");
        // Unchanged: no writes.
        assert!(reconcile(
            &SliceTemplate::for_service(&svc),
            desired(vec![port(8080)], vec![ep(0, true), ep(1, true)]),
            std::slice::from_ref(&a),
            100
        )
        .is_empty());
        // p1 becomes not ready and p2 appears: one update.
        let writes = reconcile(
            &SliceTemplate::for_service(&svc),
            desired(
                vec![port(8080)],
                vec![ep(0, true), ep(1, false), ep(2, true)],
            ),
            std::slice::from_ref(&a),
            100,
        );
        let [Write::Update(updated)] = writes.as_slice() else {
            panic!("{writes:?}")
        };
        assert_eq!(updated.metadata.name.as_deref(), Some("web-a"));
        assert_eq!(updated.endpoints.len(), 3);
        assert_eq!(
            updated.endpoints[1].conditions.as_ref().unwrap().ready,
            Some(false)
        );
        // The port changes: the old slice goes, a new one comes.
        let writes = reconcile(
            &SliceTemplate::for_service(&svc),
            desired(vec![port(9090)], vec![ep(0, true)]),
            &[a],
            100,
        );
        assert!(
            matches!(writes.as_slice(), [Write::Create(_), Write::Delete(n)] if n == "web-a"),
            "{writes:?}"
        );
    }

    #[test]
    fn all_endpoints_gone_turns_into_a_placeholder() {
        let svc = service();
        let mut a = SliceTemplate::for_service(&svc).new_slice(vec![port(8080)]);
        a.endpoints = vec![ep(0, true)];
        let writes = reconcile(
            &SliceTemplate::for_service(&svc),
            Desired::new(),
            &[named(a, "web-a")],
            100,
        );
        assert!(
            matches!(writes.as_slice(), [Write::Create(p), Write::Delete(n)] if p.endpoints.is_empty() && n == "web-a"),
            "{writes:?}"
        );
    }
}
