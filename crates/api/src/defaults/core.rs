//! Core group defaults (`pkg/apis/core/v1/defaults.go` and the declarative `+default` tags
//! applied by `zz_generated.defaults.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, Endpoints, EphemeralContainer, HTTPGetAction, LimitRange, Namespace,
    Node, ObjectFieldSelector, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    Pod, PodSpec, PodTemplate, PodTemplateSpec, Probe, ReplicationController, ResourceRequirements,
    Secret, Service, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{default_i32, default_str};

/// Mode upstream gives secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_VOLUME_MODE: i32 = 0o644;

/// `SetDefaults_Pod` plus the pod spec defaults every pod template gets.
pub(super) fn pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec(spec);
    // Only pods (not templates) get requests from limits and service links.
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        requests_from_limits(c.resources.get_or_insert_with(Default::default));
    }
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for p in c.ports.iter_mut().flatten() {
                default_i32(&mut p.host_port, p.container_port);
            }
        }
    }
}

/// Defaults for a pod template embedded in a workload (`SetDefaults_PodSpec` and friends).
pub(super) fn pod_template_spec(t: &mut PodTemplateSpec) {
    pod_spec(t.spec.get_or_insert_with(Default::default));
}

pub(super) fn pod_template(t: &mut PodTemplate) {
    if let Some(t) = t.template.as_mut() {
        pod_template_spec(t);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything nested in a pod spec.
pub(super) fn pod_spec(spec: &mut PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    spec.security_context.get_or_insert_with(Default::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    default_str(&mut spec.scheduler_name, "default-scheduler");
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        ephemeral_container(c);
    }
}

/// Both container types share these fields; upstream defaults them the same way.
macro_rules! container_defaults {
    ($c:expr) => {{
        let c = $c;
        if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
            c.image_pull_policy =
                Some(pull_policy_for(c.image.as_deref().unwrap_or("")).to_string());
        }
        default_str(&mut c.termination_message_path, "/dev/termination-log");
        default_str(&mut c.termination_message_policy, "File");
        // Go's `resources` is a struct without omitempty: upstream always emits `{}`.
        c.resources.get_or_insert_with(Default::default);
        for p in c.ports.iter_mut().flatten() {
            container_port(p);
        }
        for probe in [
            &mut c.liveness_probe,
            &mut c.readiness_probe,
            &mut c.startup_probe,
        ]
        .into_iter()
        .flatten()
        {
            probe_defaults(probe);
        }
        if let Some(l) = c.lifecycle.as_mut() {
            for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
                if let Some(g) = h.http_get.as_mut() {
                    http_get(g);
                }
            }
        }
        for e in c.env.iter_mut().flatten() {
            if let Some(f) = e.value_from.as_mut().and_then(|s| s.field_ref.as_mut()) {
                object_field_selector(f);
            }
        }
    }};
}

fn container(c: &mut Container) {
    container_defaults!(c);
}

fn ephemeral_container(c: &mut EphemeralContainer) {
    container_defaults!(c);
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (upstream parses the
/// reference; a digest without a tag counts as tagged).
pub(crate) fn pull_policy_for(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, has_digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
        None if has_digest => "IfNotPresent",
        None => "Always",
    }
}

fn container_port(p: &mut ContainerPort) {
    default_str(&mut p.protocol, "TCP");
}

fn probe_defaults(p: &mut Probe) {
    default_i32(&mut p.timeout_seconds, 1);
    default_i32(&mut p.period_seconds, 10);
    default_i32(&mut p.success_threshold, 1);
    default_i32(&mut p.failure_threshold, 3);
    if let Some(g) = p.http_get.as_mut() {
        http_get(g);
    }
    if let Some(g) = p.grpc.as_mut() {
        g.service.get_or_insert_with(String::new);
    }
}

fn http_get(g: &mut HTTPGetAction) {
    default_str(&mut g.path, "/");
    default_str(&mut g.scheme, "HTTP");
}

fn object_field_selector(f: &mut ObjectFieldSelector) {
    default_str(&mut f.api_version, "v1");
}

/// Requests default to limits for every resource that has a limit but no request.
fn requests_from_limits(r: &mut ResourceRequirements) {
    let Some(limits) = r.limits.as_ref() else {
        return;
    };
    let requests: &mut BTreeMap<String, Quantity> = r.requests.get_or_insert_with(Default::default);
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// `SetDefaults_Volume` and the volume sources' own defaults.
fn volume(v: &mut Volume) {
    // A volume with no source at all becomes an emptyDir.
    let only_name = serde_json::to_value(&*v)
        .ok()
        .and_then(|j| j.as_object().map(|m| m.len() == 1))
        .unwrap_or(false);
    if only_name {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for f in s
            .items
            .iter_mut()
            .flatten()
            .filter_map(|i| i.field_ref.as_mut())
        {
            object_field_selector(f);
        }
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for src in s.sources.iter_mut().flatten() {
            if let Some(t) = src.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
            if let Some(d) = src.downward_api.as_mut() {
                for f in d
                    .items
                    .iter_mut()
                    .flatten()
                    .filter_map(|i| i.field_ref.as_mut())
                {
                    object_field_selector(f);
                }
            }
        }
    }
    if let Some(s) = v.host_path.as_mut() {
        s.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = v.iscsi.as_mut() {
        default_str(&mut s.iscsi_interface, "default");
    }
    if let Some(s) = v.rbd.as_mut() {
        default_str(&mut s.pool, "rbd");
        default_str(&mut s.user, "admin");
        default_str(&mut s.keyring, "/etc/ceph/keyring");
    }
    if let Some(s) = v.azure_disk.as_mut() {
        s.caching_mode.get_or_insert_with(|| "ReadWrite".into());
        s.fs_type.get_or_insert_with(|| "ext4".into());
        s.read_only.get_or_insert(false);
        s.kind.get_or_insert_with(|| "Shared".into());
    }
    if let Some(s) = v.scale_io.as_mut() {
        default_str(&mut s.storage_mode, "ThinProvisioned");
        default_str(&mut s.fs_type, "xfs");
    }
    if let Some(t) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        pvc_spec(&mut t.spec);
    }
    if let Some(i) = v.image.as_mut() {
        if i.pull_policy.as_deref().unwrap_or("").is_empty() {
            i.pull_policy = Some(pull_policy_for(i.reference.as_deref().unwrap_or("")).to_string());
        }
    }
}

pub(super) fn replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        // The selector and the object's labels default to the template's labels.
        if let Some(labels) = t.metadata.as_ref().and_then(|m| m.labels.clone()) {
            if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
                spec.selector = Some(labels.clone());
            }
            if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
                rc.metadata.labels = Some(labels);
            }
        }
        pod_template_spec(t);
    }
}

pub(super) fn service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config =
                    Some(k8s_openapi::api::core::v1::SessionAffinityConfig {
                        client_ip: Some(k8s_openapi::api::core::v1::ClientIPConfig {
                            timeout_seconds: Some(10800),
                        }),
                    });
            }
        }
        _ => {}
    }
    default_str(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = spec.type_.clone().unwrap_or_default();
    // `service.ExternallyAccessible`: LoadBalancer, NodePort, or ClusterIP with external IPs.
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP"
            && spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty()));
    if externally_accessible {
        default_str(&mut spec.external_traffic_policy, "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        spec.internal_traffic_policy
            .get_or_insert_with(|| "Cluster".into());
    }
    if ty == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
        let ingress = svc
            .status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|l| l.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
                ing.ip_mode.get_or_insert_with(|| "VIP".into());
            }
        }
    }
}

pub(super) fn endpoints(ep: &mut Endpoints) {
    for s in ep.subsets.iter_mut().flatten() {
        for p in s.ports.iter_mut().flatten() {
            default_str(&mut p.protocol, "TCP");
        }
    }
}

/// Namespaces carry their own name as the `kubernetes.io/metadata.name` label.
pub(super) fn namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
    default_str(
        &mut ns.status.get_or_insert_with(Default::default).phase,
        "Active",
    );
}

pub(super) fn node(node: &mut Node) {
    if let Some(status) = node.status.as_mut() {
        if status.allocatable.is_none() && status.capacity.is_some() {
            status.allocatable = status.capacity.clone();
        }
    }
}

/// `stringData` is merged into `data` (overriding it) and dropped, as upstream's conversion does.
pub(super) fn secret(s: &mut Secret) {
    default_str(&mut s.type_, "Opaque");
    if let Some(strings) = s.string_data.take() {
        let data = s.data.get_or_insert_with(Default::default);
        for (k, v) in strings {
            data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
        }
    }
}

pub(super) fn persistent_volume(pv: &mut PersistentVolume) {
    default_str(
        &mut pv.status.get_or_insert_with(Default::default).phase,
        "Pending",
    );
    let spec = pv.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
    spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    if let Some(h) = spec.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
}

pub(super) fn persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    default_str(
        &mut pvc.status.get_or_insert_with(Default::default).phase,
        "Pending",
    );
    pvc_spec(pvc.spec.get_or_insert_with(Default::default));
}

pub(super) fn pvc_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
}

/// Container limit ranges: default limit from max, default request from the default limit
/// or from min.
pub(super) fn limit_range(lr: &mut LimitRange) {
    let items = lr
        .spec
        .as_mut()
        .map(|s| s.limits.iter_mut())
        .into_iter()
        .flatten();
    for item in items.filter(|i| i.type_ == "Container") {
        let default = item.default.get_or_insert_with(Default::default);
        for (k, v) in item.max.iter().flatten() {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let default = default.clone();
        let request = item.default_request.get_or_insert_with(Default::default);
        for (k, v) in default.iter().chain(item.min.iter().flatten()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}
