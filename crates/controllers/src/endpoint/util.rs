//! What the Endpoints and EndpointSlice controllers share (upstream
//! `pkg/controller/util/endpoint` and `endpointslice/util`): which pods back a Service,
//! pod readiness, target-port resolution, and the last-change trigger time.

use std::collections::HashMap;
use std::sync::Mutex;

use k8rs_client::ObjectKey;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

/// The annotation holding when the last change that this write reflects happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label marking Endpoints and slices of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The Service's selector, if it has a non-empty one (services without one are left to
/// whoever writes their Endpoints).
pub fn selector(service: &Service) -> Option<&std::collections::BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether the controllers manage endpoints for this Service: it has a selector and is
/// not an ExternalName.
pub fn manages(service: &Service) -> bool {
    let external = service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    !external && selector(service).is_some()
}

/// Whether the Service's selector matches the pod's labels.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = selector(service) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Upstream `podutil.IsPodReady`: the `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
}

/// Upstream `ShouldPodBeInEndpoints`: not finished, has an IP, and (unless terminating
/// pods are wanted) not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    ) {
        return false;
    }
    if pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's IPv4 address (k8rs Services are single-stack IPv4).
pub fn pod_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let ips = status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.clone())
        .chain(status.pod_ip.clone());
    ips.into_iter()
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
}

/// Upstream `podutil.FindPort`: a numeric target port as is; a named one looked up among
/// the pod's container ports with the Service port's protocol.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            // Sidecars (init containers that keep running) count too, as upstream.
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name)
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A `Pod` object reference (what `targetRef` points at).
pub fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// Upstream `ShouldSetHostname`: a pod with a hostname in the subdomain named after a
/// headless Service gets its hostname published.
pub fn should_set_hostname(pod: &Pod, service: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    let headless = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None");
    (headless
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace)
        .then(|| hostname.clone())
}

/// Whether the Service has no cluster IP (headless).
pub fn is_headless(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    matches!(ip, None | Some("") | Some("None"))
}

/// The keys of the Services in the pod's namespace that select it.
pub fn services_for_pod<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    pod: &Pod,
) -> Vec<ObjectKey> {
    services
        .into_iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace && selects(s, pod))
        .map(ObjectKey::of)
        .collect()
}

/// RFC 3339 with nanoseconds and no trailing zeros (Go's `time.RFC3339Nano`).
pub fn format_time(t: Timestamp) -> String {
    t.to_string()
}

#[derive(Default)]
struct TriggerState {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

/// Upstream `TriggerTimeTracker`: for each Service, the earliest change (a pod's `Ready`
/// transition or the Service's creation) not yet reflected in its endpoints.
#[derive(Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<ObjectKey, TriggerState>>,
}

impl TriggerTimeTracker {
    /// The trigger time to publish for this sync, and remembers what it saw. `None` the
    /// first time a Service is seen (nothing to compare with) and when nothing changed.
    pub fn compute(&self, service: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let key = ObjectKey::of(service);
        let mut states = self.states.lock().unwrap();
        let known = states.contains_key(&key);
        let state = states.entry(key).or_default();
        let mut min: Option<Timestamp> = None;
        let mut seen = HashMap::new();
        for pod in pods {
            let Some(t) = ready_condition(pod).and_then(|c| c.last_transition_time.as_ref()) else {
                continue;
            };
            let name = pod.metadata.name.clone().unwrap_or_default();
            if state.pods.get(&name).is_none_or(|last| t.0 > *last) {
                min = Some(min.map_or(t.0, |m| m.min(t.0)));
            }
            seen.insert(name, t.0);
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(c) = created {
            if state.service.is_none_or(|last| c > last) {
                min = Some(min.map_or(c, |m| m.min(c)));
            }
        }
        state.pods = seen;
        state.service = created;
        if known {
            min
        } else {
            None
        }
    }

    /// Forgets a deleted Service.
    pub fn forget(&self, key: &ObjectKey) {
        self.states.lock().unwrap().remove(key);
    }
}
