//! The Endpoints controller (upstream `pkg/controller/endpoint`): for every Service with
//! a selector, an Endpoints object of the same name listing the selected pods' IPs,
//! ready ones under `addresses` and the others under `notReadyAddresses`, with each
//! Service port resolved against each pod (named target ports may differ per pod).
//! Services without a selector are left alone, so hand-written Endpoints (external back
//! ends) stay as written.

pub mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use self::util::{TriggerTimeTracker, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};
use crate::controller::{run_workers, Context, Controller};
use k8rs_client::{Change, Informer, ObjectKey, WorkQueue};

/// Addresses one Endpoints object holds at most (upstream `maxCapacity`); beyond, it
/// is truncated and annotated, and consumers should read EndpointSlices.
const MAX_CAPACITY: usize = 1000;
/// The annotation marking truncated Endpoints.
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

/// Workers (upstream `--concurrent-endpoint-syncs`, default 5).
const WORKERS: usize = 4;

/// Keeps each selector Service's Endpoints in line with its pods.
pub struct EndpointsController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    trigger_times: TriggerTimeTracker,
}

/// Registers the handlers (services, pods, deleted Endpoints) and starts the workers;
/// keys are Service keys.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
    enqueue_services_on_changes(&queue, &services, &pods);
    let q = queue.clone();
    endpoints.add_handler(move |change| {
        if let Change::Deleted(ep) = change {
            q.add(ObjectKey::of(ep.as_ref()));
        }
    });
    let controller = Arc::new(EndpointsController {
        client: ctx.client.clone(),
        services,
        pods,
        endpoints,
        trigger_times: TriggerTimeTracker::default(),
    });
    run_workers(controller, queue, WORKERS)
}

/// Queues a Service's key when it changes and when a pod it selects (before or after
/// the change) changes: the wiring both the Endpoints and the EndpointSlice controllers
/// share (upstream's `onServiceUpdate` and `addPod`/`updatePod`/`deletePod`).
pub(crate) fn enqueue_services_on_changes(
    queue: &WorkQueue<ObjectKey>,
    services: &Informer<Service>,
    pods: &Informer<Pod>,
) {
    let q = queue.clone();
    services.add_handler(move |change| q.add(ObjectKey::of(change.object().as_ref())));
    let q = queue.clone();
    let services_for_pods = services.clone();
    pods.add_handler(move |change| {
        for key in pod_services(&services_for_pods, change) {
            q.add(key);
        }
    });
}

/// The Services a pod change concerns: those selecting the pod before or after.
fn pod_services(services: &Informer<Service>, change: &Change<Pod>) -> BTreeSet<ObjectKey> {
    let (old, new) = match change {
        Change::Applied { old, new } => (old.clone(), new.clone()),
        Change::Deleted(pod) => (None, pod.clone()),
    };
    let ns = new.metadata.namespace.clone().unwrap_or_default();
    let in_ns = services.list_namespace(&ns);
    let mut keys: BTreeSet<ObjectKey> =
        util::services_for_pod(in_ns.iter().map(|s| s.as_ref()), &new)
            .into_iter()
            .collect();
    if let Some(old) = old {
        keys.extend(util::services_for_pod(
            in_ns.iter().map(|s| s.as_ref()),
            &old,
        ));
    }
    keys
}

#[async_trait::async_trait]
impl Controller for EndpointsController {
    fn name(&self) -> &'static str {
        "endpoint-controller"
    }

    /// Upstream `syncService`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.endpoints.wait_synced().await;
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.namespace);
        let Some(service) = self.services.get(key) else {
            // The Service is gone: so are its Endpoints (those of a selector-less Service
            // too, as upstream).
            self.trigger_times.forget(key);
            return match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        if !util::manages(&service) {
            return Ok(());
        }
        let pods = self.pods.list_namespace(&key.namespace);
        let selected: Vec<&Pod> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| util::selects(&service, p))
            .collect();
        let trigger = self.trigger_times.compute(&service, &selected);
        let subsets = compute_subsets(&service, &selected);

        let current = self.endpoints.get(key);
        let mut labels = service.metadata.labels.clone().unwrap_or_default();
        if let Some(current) = &current {
            let mut current_labels = current.metadata.labels.clone().unwrap_or_default();
            current_labels.remove(HEADLESS_LABEL);
            if current_labels == labels
                && same_subsets(current.subsets.as_deref(), &subsets)
                && capacity_annotation_set_correctly(current)
            {
                return Ok(());
            }
        }
        if util::is_headless(&service) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        let mut endpoints = match &current {
            Some(current) => (**current).clone(),
            None => Endpoints {
                metadata: ObjectMeta {
                    name: Some(key.name.clone()),
                    namespace: Some(key.namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..Endpoints::default()
            },
        };
        let mut subsets = subsets;
        let truncated = truncate(&mut subsets);
        endpoints.subsets = (!subsets.is_empty()).then_some(subsets);
        endpoints.metadata.labels = Some(labels);
        let annotations = endpoints
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new);
        match trigger {
            Some(t) => {
                annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), util::format_time(t));
            }
            None => {
                annotations.remove(LAST_CHANGE_TRIGGER_TIME);
            }
        }
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let result = if current.is_some() {
            api.replace(&key.name, &PostParams::default(), &endpoints)
                .await
        } else {
            api.create(&PostParams::default(), &endpoints).await
        };
        match result {
            Ok(_) => Ok(()),
            // The namespace is going away: nothing to keep up to date.
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The subsets for `service` from the pods it selects (upstream `syncService`'s loop,
/// then `RepackSubsets`).
pub fn compute_subsets(service: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut subsets = Vec::new();
    for pod in pods {
        if !util::should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(ip) = util::pod_ip(pod) else {
            continue;
        };
        let address = EndpointAddress {
            ip,
            hostname: util::should_set_hostname(pod, service),
            node_name: Some(
                pod.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
            ),
            target_ref: Some(util::pod_reference(pod)),
        };
        let ready = publish_not_ready || util::is_pod_ready(pod);
        let ports = spec.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            // A headless Service may have no ports: addresses alone.
            if spec.cluster_ip.as_deref() == Some("None") {
                subsets.push(subset(address.clone(), None, ready));
            }
            continue;
        }
        for port in &ports {
            let Some(number) = util::find_port(pod, port) else {
                continue;
            };
            let endpoint_port = EndpointPort {
                name: port.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            };
            subsets.push(subset(address.clone(), Some(endpoint_port), ready));
        }
    }
    repack(subsets)
}

fn subset(address: EndpointAddress, port: Option<EndpointPort>, ready: bool) -> EndpointSubset {
    let (addresses, not_ready) = if ready {
        (Some(vec![address]), None)
    } else {
        (None, Some(vec![address]))
    };
    EndpointSubset {
        addresses,
        not_ready_addresses: not_ready,
        ports: Some(port.into_iter().collect()),
    }
}

type PortKey = (Option<String>, i32, Option<String>, Option<String>);
type AddrKey = (String, String);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone(),
        p.port,
        p.protocol.clone(),
        p.app_protocol.clone(),
    )
}

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Upstream `endpoints.RepackSubsets`: one subset per distinct set of addresses, holding
/// every port those addresses share; an address ready on a port is ready there even if
/// also listed as not ready. Sorted for stable writes.
pub fn repack(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut all: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    let mut ports: BTreeMap<PortKey, (Option<EndpointPort>, BTreeMap<AddrKey, bool>)> =
        BTreeMap::new();
    for s in &subsets {
        let subset_ports: Vec<Option<&EndpointPort>> = match s.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().map(Some).collect(),
            _ => vec![None],
        };
        for port in subset_ports {
            let key = port.map(port_key).unwrap_or((None, -1, None, None));
            let entry = ports
                .entry(key)
                .or_insert_with(|| (port.cloned(), BTreeMap::new()));
            for a in s.addresses.iter().flatten() {
                let k = addr_key(a);
                all.entry(k.clone()).or_insert_with(|| a.clone());
                entry.1.insert(k, true);
            }
            for a in s.not_ready_addresses.iter().flatten() {
                let k = addr_key(a);
                all.entry(k.clone()).or_insert_with(|| a.clone());
                entry.1.entry(k).or_insert(false);
            }
        }
    }
    // Group ports by the exact address set (with readiness) that offers them.
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (port, addrs) in ports.into_values() {
        let key: Vec<(AddrKey, bool)> = addrs.into_iter().collect();
        let group = groups.entry(key).or_default();
        if let Some(port) = port {
            group.push(port);
        }
    }
    let mut out: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(addrs, ports)| {
            let pick = |ready: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = addrs
                    .iter()
                    .filter(|(_, r)| *r == ready)
                    .map(|(k, _)| all[k].clone())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    out.sort_by_key(|s| {
        let first = s
            .addresses
            .iter()
            .chain(s.not_ready_addresses.iter())
            .flatten()
            .map(addr_key)
            .next();
        let ports: Vec<PortKey> = s.ports.iter().flatten().map(port_key).collect();
        (first, ports)
    });
    out
}

/// Upstream `truncateEndpoints`: beyond [`MAX_CAPACITY`] addresses, not-ready ones are
/// cut first; if the ready ones alone exceed it, only ready ones are kept. Each subset
/// keeps its proportional share (rounded up). Whether anything was cut.
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for subset in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            count(&subset.addresses)
        } else {
            count(&subset.not_ready_addresses)
        };
        let share = (in_subset * max).div_ceil(total.max(1)).min(can_be_added);
        let list = if truncate_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        if let Some(v) = list.as_mut() {
            v.truncate(share);
            can_be_added -= v.len();
        }
    }
    true
}

/// Upstream `capacityAnnotationSetCorrectly`: the over-capacity annotation is present
/// only while the Endpoints hold more addresses than they may.
fn capacity_annotation_set_correctly(endpoints: &Endpoints) -> bool {
    let annotated = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(OVER_CAPACITY));
    if !annotated {
        return true;
    }
    let total: usize = endpoints
        .subsets
        .iter()
        .flatten()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    total > MAX_CAPACITY
}

/// Whether the stored subsets say the same as the computed ones (ignoring how empty
/// lists are spelled).
fn same_subsets(current: Option<&[EndpointSubset]>, new: &[EndpointSubset]) -> bool {
    let normalize = |s: &EndpointSubset| EndpointSubset {
        addresses: s.addresses.clone().filter(|v| !v.is_empty()),
        not_ready_addresses: s.not_ready_addresses.clone().filter(|v| !v.is_empty()),
        ports: s.ports.clone().filter(|v| !v.is_empty()),
    };
    let current: Vec<EndpointSubset> = current.unwrap_or_default().iter().map(normalize).collect();
    let new: Vec<EndpointSubset> = new.iter().map(normalize).collect();
    current == new
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn service(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec,
        }))
        .unwrap()
    }

    pub(crate) fn pod(name: &str, ip: Option<&str>, ready: bool, http_port: i32) -> Pod {
        let mut status = json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2026-01-01T00:00:05Z"}
        ]});
        if let Some(ip) = ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [
                {"name": "http", "containerPort": http_port, "protocol": "TCP"}
            ]}]},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn ready_and_not_ready_pods_with_named_ports_per_pod() {
        let svc = service(
            json!({"selector": {"app": "web"}, "clusterIP": "10.43.0.10", "ports": [
                {"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
            ]}),
        );
        let a = pod("a", Some("10.0.0.1"), true, 8080);
        let b = pod("b", Some("10.0.0.2"), false, 8080);
        let c = pod("c", Some("10.0.0.3"), true, 8081);
        let no_ip = pod("d", None, true, 8080);
        let subsets = compute_subsets(&svc, &[&a, &b, &c, &no_ip]);
        let rendered = serde_json::to_value(&subsets).unwrap();
        // a and c are ready; b is not; c's named port resolves differently, so the
        // subsets split by port set.
        assert_eq!(subsets.len(), 3, "{rendered:#}");
        let ips = |s: &EndpointSubset, ready: bool| -> Vec<String> {
            let list = if ready {
                &s.addresses
            } else {
                &s.not_ready_addresses
            };
            list.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        let ports = |s: &EndpointSubset| -> Vec<(String, i32)> {
            s.ports
                .iter()
                .flatten()
                .map(|p| (p.name.clone().unwrap_or_default(), p.port))
                .collect()
        };
        // 9090 is offered by a and c (ready) and b (not ready).
        let metrics = subsets
            .iter()
            .find(|s| ports(s).contains(&("metrics".into(), 9090)))
            .unwrap();
        assert_eq!(ips(metrics, true), vec!["10.0.0.1", "10.0.0.3"]);
        assert_eq!(ips(metrics, false), vec!["10.0.0.2"]);
        let web8080 = subsets
            .iter()
            .find(|s| ports(s) == vec![("web".into(), 8080)])
            .unwrap();
        assert_eq!(ips(web8080, true), vec!["10.0.0.1"]);
        assert_eq!(ips(web8080, false), vec!["10.0.0.2"]);
        let web8081 = subsets
            .iter()
            .find(|s| ports(s) == vec![("web".into(), 8081)])
            .unwrap();
        assert_eq!(ips(web8081, true), vec!["10.0.0.3"]);
        let addr = &web8081.addresses.as_ref().unwrap()[0];
        assert_eq!(addr.node_name.as_deref(), Some("n1"));
        let target = addr.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("c"), Some("uid-c"))
        );
    }

    #[test]
    fn publish_not_ready_addresses_lists_every_pod_as_ready() {
        let svc = service(
            json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true, "ports": [
                {"port": 80, "targetPort": 8080, "protocol": "TCP"},
            ]}),
        );
        let b = pod("b", Some("10.0.0.2"), false, 8080);
        let subsets = compute_subsets(&svc, &[&b]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.2");
        assert!(subsets[0].not_ready_addresses.is_none());
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].name, None);
    }

    #[test]
    fn unresolvable_named_port_and_finished_pods_are_skipped() {
        let svc = service(json!({"selector": {"app": "web"}, "ports": [
            {"port": 80, "targetPort": "grpc", "protocol": "TCP"},
        ]}));
        let a = pod("a", Some("10.0.0.1"), true, 8080);
        assert!(compute_subsets(&svc, &[&a]).is_empty());
        let svc = service(
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}),
        );
        let mut done = pod("a", Some("10.0.0.1"), true, 8080);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(compute_subsets(&svc, &[&done]).is_empty());
    }

    #[test]
    fn headless_service_without_ports_lists_addresses() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let a = pod("a", Some("10.0.0.1"), true, 8080);
        let subsets = compute_subsets(&svc, &[&a]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        assert_eq!(subsets[0].addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
    }

    #[test]
    fn over_capacity_cuts_not_ready_addresses_first() {
        let addrs = |prefix: &str, n: usize| -> Option<Vec<EndpointAddress>> {
            Some(
                (0..n)
                    .map(|i| EndpointAddress {
                        ip: format!("{prefix}.{}.{}", i / 250, i % 250),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            )
        };
        let mut subsets = vec![EndpointSubset {
            addresses: addrs("10.1", 900),
            not_ready_addresses: addrs("10.2", 300),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);

        // Ready alone over capacity: shared in proportion, not-ready dropped.
        let mut subsets = vec![
            EndpointSubset {
                addresses: addrs("10.1", 1200),
                not_ready_addresses: addrs("10.2", 10),
                ports: None,
            },
            EndpointSubset {
                addresses: addrs("10.3", 400),
                not_ready_addresses: None,
                ports: None,
            },
        ];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 750);
        assert_eq!(subsets[1].addresses.as_ref().unwrap().len(), 250);
        assert!(subsets[0].not_ready_addresses.is_none());

        let mut small = vec![EndpointSubset {
            addresses: addrs("10.1", 10),
            not_ready_addresses: None,
            ports: None,
        }];
        assert!(!truncate(&mut small));
    }

    #[test]
    fn trigger_time_reports_the_earliest_unseen_change() {
        let svc = service(json!({"selector": {"app": "web"}}));
        let tracker = TriggerTimeTracker::default();
        let a = pod("a", Some("10.0.0.1"), true, 8080);
        assert_eq!(
            tracker.compute(&svc, &[&a]),
            None,
            "first sight: nothing to compare"
        );
        assert_eq!(tracker.compute(&svc, &[&a]), None, "nothing changed");
        let mut a2 = a.clone();
        a2.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(serde_json::from_value(json!("2026-01-01T00:01:00.5Z")).unwrap());
        let t = tracker.compute(&svc, &[&a2]).unwrap();
        assert_eq!(util::format_time(t), "2026-01-01T00:01:00.5Z");
    }
}
