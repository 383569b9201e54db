//! Core group kinds other than pods (`pkg/apis/core/validation/validation.go`).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, PodTemplate, ReplicationController, ResourceQuota, Secret, Service,
    ServiceAccount,
};

use super::go_format;
use super::meta::{validate_labels, validate_nonnegative, IMMUTABLE};
use super::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_port_num,
};
use super::path::FieldPath;
use super::pod::{validate_pod_template_spec, validate_port_num_or_name, validate_protocol};
use crate::FieldError;

/// ConfigMaps and Secrets together may hold at most 1 MiB of data.
const MAX_DATA_SIZE: usize = 1024 * 1024;
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

fn root() -> FieldPath {
    FieldPath::new("")
}

pub fn validate_service(svc: &Service, old: Option<&Service>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = svc.spec.as_ref().unwrap_or(&empty);
    let ty = spec.type_.as_deref().unwrap_or("");
    let cluster_ip = spec.cluster_ip.as_deref().or(spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(|s| s.as_str()));
    let headless = ty == "ClusterIP" && cluster_ip == Some("None");
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(sp.child("ports"), ""));
    }
    match ty {
        "ClusterIP" | "NodePort" | "LoadBalancer" => {}
        "ExternalName" => {
            let name = spec.external_name.as_deref().unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(sp.child("externalName"), ""));
            } else {
                for m in is_dns1123_subdomain(name.trim_end_matches('.')) {
                    errs.push(FieldError::invalid(sp.child("externalName"), name, m));
                }
            }
        }
        "" => errs.push(FieldError::required(sp.child("type"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = sp.child("ports").index(i);
        let name = p.name.as_deref().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(pp.child("name"), ""));
        } else if !name.is_empty() {
            errs.extend(
                is_dns1123_label(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(pp.child("name"), name, m)),
            );
            if !names.insert(name) {
                errs.push(FieldError::duplicate(pp.child("name"), name));
            }
        }
        for m in is_valid_port_num(p.port.into()) {
            errs.push(FieldError::invalid(pp.child("port"), p.port, m));
        }
        let protocol = p.protocol.as_deref().unwrap_or("");
        errs.extend(validate_protocol(protocol, &pp.child("protocol")));
        if let Some(t) = &p.target_port {
            errs.extend(validate_port_num_or_name(t, &pp.child("targetPort")));
        }
        if ty == "ClusterIP" && p.node_port.unwrap_or(0) != 0 {
            errs.push(FieldError::forbidden(
                pp.child("nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            for m in is_valid_port_num(np.into()) {
                errs.push(FieldError::invalid(pp.child("nodePort"), np, m));
            }
        }
        if !seen.insert((protocol, p.port)) {
            // Upstream prints the internal ServicePort struct here.
            errs.push(FieldError::duplicate(
                &pp,
                serde_json::json!({"port": p.port, "protocol": protocol}),
            ));
        }
    }
    errs.extend(validate_labels(
        spec.selector.as_ref(),
        &sp.child("selector"),
    ));
    match spec.session_affinity.as_deref().unwrap_or("") {
        "None" | "ClientIP" => {}
        "" => errs.push(FieldError::required(sp.child("sessionAffinity"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if let Some(p) = spec.internal_traffic_policy.as_deref() {
        if p != "Cluster" && p != "Local" {
            errs.push(FieldError::not_supported(
                sp.child("internalTrafficPolicy"),
                p,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(p) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if p != "Cluster" && p != "Local" {
            errs.push(FieldError::not_supported(
                sp.child("externalTrafficPolicy"),
                p,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(validate_cluster_ips_update(svc, old));
    }
    errs
}

/// Assigned cluster IPs may not change (except to or from ExternalName).
fn validate_cluster_ips_update(svc: &Service, old: &Service) -> Vec<FieldError> {
    let empty = Default::default();
    let (new_spec, old_spec) = (
        svc.spec.as_ref().unwrap_or(&empty),
        old.spec.as_ref().unwrap_or(&empty),
    );
    let external =
        |s: &k8s_openapi::api::core::v1::ServiceSpec| s.type_.as_deref() == Some("ExternalName");
    if external(new_spec) || external(old_spec) {
        return vec![];
    }
    let ips = |s: &k8s_openapi::api::core::v1::ServiceSpec| -> Vec<String> {
        match (&s.cluster_ips, &s.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips.clone(),
            (_, Some(ip)) if !ip.is_empty() => vec![ip.clone()],
            _ => vec![],
        }
    };
    let (new_ips, old_ips) = (ips(new_spec), ips(old_spec));
    if old_ips.is_empty() {
        return vec![];
    }
    let path = FieldPath::new("spec").child("clusterIPs").index(0);
    if new_ips.first() != old_ips.first() {
        return vec![FieldError::invalid_repr(
            path,
            go_format::string_slice(Some(&new_ips)),
            "may not change once set",
        )];
    }
    vec![]
}

/// ConfigMaps: keys, total size, and no changes once `immutable`.
pub fn validate_config_map(cm: &ConfigMap, old: Option<&ConfigMap>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        let kp = FieldPath::new("data").key(k);
        errs.extend(
            is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&kp, k.as_str(), m)),
        );
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                &kp,
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in binary.into_iter().flatten() {
        let kp = FieldPath::new("binaryData").key(k);
        errs.extend(
            is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&kp, k.as_str(), m)),
        );
        if data.is_some_and(|d| d.contains_key(k)) {
            errs.push(FieldError::invalid(
                &kp,
                k.as_str(),
                "duplicate of key present in data",
            ));
        }
        total += v.0.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(root(), "", MAX_DATA_SIZE));
    }
    if let Some(old) = old.filter(|o| o.immutable == Some(true)) {
        if cm.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        if cm.data != old.data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
        }
        if cm.binary_data != old.binary_data {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_WHEN_SET));
        }
    }
    errs
}

/// Secrets: keys, per-type required keys, size, immutable type and `immutable` data.
pub fn validate_secret(s: &Secret, old: Option<&Secret>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data_path = FieldPath::new("data");
    let empty = BTreeMap::new();
    let data = s.data.as_ref().unwrap_or(&empty);
    let mut total = 0;
    for (k, v) in data {
        errs.extend(
            is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(data_path.key(k), k.as_str(), m)),
        );
        total += v.0.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&data_path, "", MAX_DATA_SIZE));
    }
    let require_key = |errs: &mut Vec<FieldError>, key: &str| {
        if !data.contains_key(key) {
            errs.push(FieldError::required(data_path.key(key), ""));
        }
    };
    match s.type_.as_deref().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            let name = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(|n| n.is_empty()) {
                errs.push(FieldError::required(
                    FieldPath::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => require_key(&mut errs, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => require_key(&mut errs, ".dockerconfigjson"),
        // Either may be empty, but one of the two keys must be present.
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            require_key(&mut errs, "username");
            require_key(&mut errs, "password");
        }
        "kubernetes.io/ssh-auth" => require_key(&mut errs, "ssh-privatekey"),
        "kubernetes.io/tls" => {
            require_key(&mut errs, "tls.crt");
            require_key(&mut errs, "tls.key");
        }
        _ => {}
    }
    if let Some(old) = old {
        if s.type_ != old.type_ {
            errs.push(FieldError::invalid(
                "type",
                s.type_.clone().unwrap_or_default(),
                IMMUTABLE,
            ));
        }
        if old.immutable == Some(true) {
            if s.immutable != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
            }
            if s.data != old.data {
                errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
            }
        }
    }
    errs
}

/// Namespace finalizers are qualified or standard names.
pub fn validate_namespace(ns: &Namespace, _old: Option<&Namespace>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let finalizers = ns.spec.as_ref().and_then(|s| s.finalizers.as_ref());
    for (i, f) in finalizers.into_iter().flatten().enumerate() {
        let fp = FieldPath::new("spec").child("finalizers").index(i);
        errs.extend(
            is_qualified_name(f)
                .into_iter()
                .map(|m| FieldError::invalid(&fp, f.as_str(), m)),
        );
        if !f.contains('/') && f != "kubernetes" {
            errs.push(FieldError::invalid(
                &fp,
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

/// Node taints and pod CIDR immutability.
pub fn validate_node(node: &Node, old: Option<&Node>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = FieldPath::new("spec");
    let spec = node.spec.as_ref();
    let mut seen = HashSet::new();
    for (i, t) in spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let tp = sp.child("taints").index(i);
        errs.extend(
            is_qualified_name(&t.key)
                .into_iter()
                .map(|m| FieldError::invalid(tp.child("key"), t.key.as_str(), m)),
        );
        match t.effect.as_str() {
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            "" => errs.push(FieldError::required(tp.child("effect"), "")),
            e => errs.push(FieldError::not_supported(
                tp.child("effect"),
                e,
                &["NoExecute", "NoSchedule", "PreferNoSchedule"],
            )),
        }
        if !seen.insert((t.key.as_str(), t.effect.as_str())) {
            errs.push(FieldError::duplicate(
                &tp,
                serde_json::json!({"key": t.key, "effect": t.effect}),
            ));
        }
    }
    if let (Some(old_cidr), Some(spec)) = (
        old.and_then(|o| o.spec.as_ref())
            .and_then(|s| s.pod_cidr.as_deref()),
        spec,
    ) {
        if !old_cidr.is_empty() && spec.pod_cidr.as_deref() != Some(old_cidr) {
            errs.push(FieldError::forbidden(
                sp.child("podCIDR"),
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
    }
    errs
}

pub fn validate_service_account(
    _sa: &ServiceAccount,
    _old: Option<&ServiceAccount>,
) -> Vec<FieldError> {
    Vec::new()
}

pub fn validate_replication_controller(
    rc: &ReplicationController,
    _old: Option<&ReplicationController>,
) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = rc.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_nonnegative(spec.replicas.unwrap_or(0).into(), &sp.child("replicas"));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &sp.child("minReadySeconds"),
    ));
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(sp.child("selector"), ""));
    }
    errs.extend(validate_labels(Some(&selector), &sp.child("selector")));
    match &spec.template {
        None => errs.push(FieldError::required(sp.child("template"), "")),
        Some(t) => {
            let tp = sp.child("template");
            let labels = t
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            if !selector.is_empty() && !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                errs.push(FieldError::invalid_repr(
                    tp.child("metadata").child("labels"),
                    go_format::string_map(t.metadata.as_ref().and_then(|m| m.labels.as_ref())),
                    "`selector` does not match template `labels`",
                ));
            }
            errs.extend(validate_pod_template_spec(t, &tp));
            let restart = t
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.as_deref())
                .unwrap_or("");
            if restart != "Always" {
                errs.push(FieldError::not_supported(
                    tp.child("spec").child("restartPolicy"),
                    restart,
                    &["Always"],
                ));
            }
            if t.spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .is_some()
            {
                errs.push(FieldError::forbidden(
                    tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    errs
}

pub fn validate_pod_template(pt: &PodTemplate, _old: Option<&PodTemplate>) -> Vec<FieldError> {
    match &pt.template {
        Some(t) => validate_pod_template_spec(t, &FieldPath::new("template")),
        None => Vec::new(),
    }
}

/// Claims: access modes and a storage request; the spec is immutable once bound except size.
pub fn validate_pvc(
    pvc: &PersistentVolumeClaim,
    old: Option<&PersistentVolumeClaim>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = pvc.spec.as_ref().unwrap_or(&empty);
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(
            sp.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    const MODES: &[&str] = &[
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    for m in modes.iter().filter(|m| !MODES.contains(&m.as_str())) {
        errs.push(FieldError::not_supported(
            sp.child("accessModes"),
            m.as_str(),
            MODES,
        ));
    }
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    if storage.is_none() {
        errs.push(FieldError::required(
            sp.child("resources").key("storage"),
            "",
        ));
    }
    if let Some(old) = old {
        let bound = old.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let mut new_spec = spec.clone();
        let old_spec = old.spec.clone().unwrap_or_default();
        // Size (expansion) and the volume attributes class may change; the rest may not.
        new_spec.resources.clone_from(&old_spec.resources);
        new_spec
            .volume_attributes_class_name
            .clone_from(&old_spec.volume_attributes_class_name);
        if !bound && old_spec.volume_name.as_deref().unwrap_or("").is_empty() {
            new_spec.volume_name.clone_from(&old_spec.volume_name);
        }
        if new_spec != old_spec {
            errs.push(FieldError::forbidden(
                &sp,
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
    errs
}

pub fn validate_pv(pv: &PersistentVolume, _old: Option<&PersistentVolume>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = pv.spec.as_ref().unwrap_or(&empty);
    if spec.access_modes.as_ref().is_none_or(|m| m.is_empty()) {
        errs.push(FieldError::required(sp.child("accessModes"), ""));
    }
    if spec.capacity.as_ref().is_none_or(|c| c.is_empty()) {
        errs.push(FieldError::required(sp.child("capacity"), ""));
    }
    match spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("")
    {
        "Retain" | "Delete" | "Recycle" | "" => {}
        p => errs.push(FieldError::not_supported(
            sp.child("persistentVolumeReclaimPolicy"),
            p,
            &["Delete", "Recycle", "Retain"],
        )),
    }
    errs
}

pub fn validate_endpoints(ep: &Endpoints, _old: Option<&Endpoints>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, s) in ep.subsets.iter().flatten().enumerate() {
        let sp = FieldPath::new("subsets").index(i);
        for (j, p) in s.ports.iter().flatten().enumerate() {
            let pp = sp.child("ports").index(j);
            for m in is_valid_port_num(p.port.into()) {
                errs.push(FieldError::invalid(pp.child("port"), p.port, m));
            }
            errs.extend(validate_protocol(
                p.protocol.as_deref().unwrap_or(""),
                &pp.child("protocol"),
            ));
        }
    }
    errs
}

/// Core events: the involved object's namespace must match the event's.
pub fn validate_event(ev: &Event, _old: Option<&Event>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = ev.metadata.namespace.as_deref().unwrap_or("");
    let involved_ns = ev.involved_object.namespace.as_deref().unwrap_or("");
    if !involved_ns.is_empty() && involved_ns != ns {
        errs.push(FieldError::invalid(
            FieldPath::new("involvedObject").child("namespace"),
            involved_ns,
            "does not match event.namespace",
        ));
    }
    if let Some(t) = ev.type_.as_deref().filter(|t| !t.is_empty()) {
        if t != "Normal" && t != "Warning" {
            errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"]));
        }
    }
    errs
}

pub fn validate_resource_quota(
    rq: &ResourceQuota,
    _old: Option<&ResourceQuota>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let hard = rq.spec.as_ref().and_then(|s| s.hard.as_ref());
    for (k, q) in hard.into_iter().flatten() {
        if crate::quantity::Quantity::parse(&q.0).is_ok_and(|v| v.is_negative()) {
            errs.push(FieldError::invalid(
                FieldPath::new("spec").child("hard").key(k),
                q.0.as_str(),
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}

pub fn validate_limit_range(lr: &LimitRange, _old: Option<&LimitRange>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, item) in lr
        .spec
        .as_ref()
        .map(|s| s.limits.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let ip = FieldPath::new("spec").child("limits").index(i);
        match item.type_.as_str() {
            "Pod" | "Container" | "PersistentVolumeClaim" => {}
            "" => errs.push(FieldError::required(ip.child("type"), "")),
            _ => {}
        }
    }
    errs
}
