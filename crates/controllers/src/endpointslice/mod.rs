//! The EndpointSlice controller (upstream `pkg/controller/endpointslice`): for every
//! Service with a selector, `discovery.k8s.io/v1` EndpointSlices (IPv4) listing the
//! selected pods with `ready`/`serving`/`terminating` conditions, at most 100 endpoints
//! per slice, one group of slices per distinct set of resolved ports.
//!
//! [`reconciler`] computes the writes from the desired endpoints and the existing
//! slices, keeping endpoints in the slice they are already in (fewer writes, as
//! upstream's reconciler); a tracker of our own writes keeps a lagging cache from
//! causing duplicate slices (upstream's `EndpointSliceTracker`).

pub mod reconciler;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};

use self::reconciler::Desired;
use self::writer::SliceWriter;
use crate::controller::{run_workers, Context, Controller};
use crate::endpoint::util::{self, TriggerTimeTracker};
use k8rs_client::{Informer, ObjectKey, WorkQueue};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Endpoints per slice (upstream `--max-endpoints-per-slice`, default 100).
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Workers (upstream `--concurrent-service-endpoint-syncs`, default 5).
const WORKERS: usize = 4;

/// Keeps each selector Service's EndpointSlices in line with its pods.
pub struct EndpointSliceController {
    queue: WorkQueue<ObjectKey>,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    trigger_times: TriggerTimeTracker,
    writer: SliceWriter,
}

/// Registers the handlers (services, pods, nodes, our slices) and starts the workers;
/// keys are Service keys.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let slices = ctx.informers.get::<EndpointSlice>();
    crate::endpoint::enqueue_services_on_changes(&queue, &services, &pods);
    let q = queue.clone();
    slices.add_handler(move |change| {
        let slice = change.object();
        if let Some(service) = managed_service(slice) {
            q.add(ObjectKey::new(
                slice.metadata.namespace.clone().unwrap_or_default(),
                service,
            ));
        }
    });
    // A node appearing (or its zone changing) changes which pods can be listed.
    let q = queue.clone();
    let services_for_nodes = services.clone();
    nodes.add_handler(move |_| {
        for svc in services_for_nodes.list() {
            if util::manages(&svc) {
                q.add(ObjectKey::of(svc.as_ref()));
            }
        }
    });
    let controller = Arc::new(EndpointSliceController {
        queue: queue.clone(),
        services,
        pods,
        nodes,
        slices,
        trigger_times: TriggerTimeTracker::default(),
        writer: SliceWriter::new(ctx.client.clone()),
    });
    run_workers(controller, queue, WORKERS)
}

/// The Service a slice belongs to, if this controller manages it.
fn managed_service(slice: &EndpointSlice) -> Option<String> {
    managed_by(slice, CONTROLLER_NAME)
}

/// The owner a slice names in its labels, if `controller` manages it.
pub(crate) fn managed_by(slice: &EndpointSlice, controller: &str) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(controller) {
        return None;
    }
    labels.get(SERVICE_NAME_LABEL).cloned()
}

#[async_trait::async_trait]
impl Controller for EndpointSliceController {
    fn name(&self) -> &'static str {
        "endpointslice-controller"
    }

    /// Upstream `syncService` then `reconciler.reconcile`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.services.wait_synced().await;
        self.pods.wait_synced().await;
        self.nodes.wait_synced().await;
        self.slices.wait_synced().await;
        let existing: Vec<EndpointSlice> = self
            .slices
            .list_namespace(&key.namespace)
            .into_iter()
            .filter(|s| managed_service(s).as_deref() == Some(key.name.as_str()))
            .map(|s| (*s).clone())
            .collect();
        if !self.writer.caught_up(key, &existing) {
            // Our last writes are not in the cache yet: acting now could duplicate them.
            self.queue
                .add_after(key.clone(), Duration::from_millis(100));
            return Ok(());
        }
        let Some(service) = self.services.get(key) else {
            // Owner references let the garbage collector remove the slices.
            self.trigger_times.forget(key);
            return Ok(());
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
        let mut missing_nodes = Vec::new();
        let desired = self.desired(&service, &selected, &mut missing_nodes);
        let template = reconciler::SliceTemplate::for_service(&service);
        let writes = reconciler::reconcile(&template, desired, &existing, MAX_ENDPOINTS_PER_SLICE);
        self.writer
            .apply(key, writes, trigger.map(util::format_time))
            .await?;
        if !missing_nodes.is_empty() {
            anyhow::bail!(
                "skipping Pods {} for Service {key}: Node not found",
                missing_nodes.join(", ")
            );
        }
        Ok(())
    }
}

impl EndpointSliceController {
    /// The endpoints each pod contributes, grouped by their resolved ports (upstream's
    /// loop over pods in `reconcile`). Pods on nodes that do not exist are left out
    /// unless the Service publishes not-ready addresses.
    fn desired(
        &self,
        service: &Service,
        pods: &[&Pod],
        missing_nodes: &mut Vec<String>,
    ) -> Desired {
        let publish_not_ready = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        let mut desired: Desired = BTreeMap::new();
        for pod in pods {
            if !util::should_pod_be_in_endpoints(pod, true) {
                continue;
            }
            let ports = endpoint_ports(service, pod);
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let node = self.nodes.get(&ObjectKey::cluster(&node_name));
            if node.is_none() && !publish_not_ready {
                missing_nodes.push(pod.metadata.name.clone().unwrap_or_default());
                continue;
            }
            let endpoint = pod_to_endpoint(pod, node.as_deref(), service);
            if endpoint.addresses.is_empty() {
                continue;
            }
            desired
                .entry(reconciler::ports_key(&ports))
                .or_insert_with(|| (ports.clone(), Vec::new()))
                .1
                .push(endpoint);
        }
        desired
    }
}

/// Upstream `getEndpointPorts`: each Service port resolved against the pod; ports
/// that do not resolve are left out.
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|p| {
            let number = util::find_port(pod, p)?;
            Some(EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
        })
        .collect()
}

/// Upstream `podToEndpoint`.
pub fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, service: &Service) -> Endpoint {
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let serving = util::is_pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    // Never "ready" while terminating, unless the Service publishes not-ready addresses.
    let ready = publish_not_ready || (serving && !terminating);
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get("topology.kubernetes.io/zone"))
        .filter(|z| !z.is_empty())
        .cloned();
    Endpoint {
        addresses: util::pod_ip(pod).into_iter().collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: util::should_set_hostname(pod, service),
        node_name,
        target_ref: Some(util::pod_reference(pod)),
        zone,
        ..Endpoint::default()
    }
}
