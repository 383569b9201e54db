//! Pods and pod specs (`pkg/apis/core/validation/validation.go`: `ValidatePodSpec`,
//! `validateContainers`, `ValidateVolumes`, `ValidatePodUpdate`, …).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::meta::{validate_labels, validate_nonnegative};
use super::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_relaxed_env_var_name, is_valid_port_name, is_valid_port_num,
};
use super::path::FieldPath;
use super::pod_scheduling::{
    validate_affinity, validate_pod_dns_config, validate_tolerations,
    validate_topology_spread_constraints,
};
use super::security_context::{validate_container_security_context, validate_pod_security_context};
use crate::quantity::Quantity;
use crate::FieldError;

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn dns1123_label(v: &str, path: &FieldPath) -> Vec<FieldError> {
    is_dns1123_label(v)
        .into_iter()
        .map(|m| FieldError::invalid(path, v, m))
        .collect()
}

/// A pod on create or update (metadata is checked by the caller).
pub fn validate_pod(pod: &Pod, old: Option<&Pod>) -> Vec<FieldError> {
    let spec_path = FieldPath::new("spec");
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_pod_spec(spec, &spec_path);
    if let Some(old) = old {
        errs.extend(validate_pod_spec_update(
            spec,
            old.spec.as_ref().unwrap_or(&empty),
            &spec_path,
        ));
    }
    errs
}

/// `ValidatePodTemplateSpec`: template labels and the pod spec.
pub fn validate_pod_template_spec(t: &PodTemplateSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = &t.metadata {
        // Upstream names these `template.labels`, without `metadata`.
        errs.extend(validate_labels(m.labels.as_ref(), &path.child("labels")));
        errs.extend(super::meta::validate_annotations(
            m.annotations.as_ref(),
            &path.child("annotations"),
        ));
    }
    let empty = PodSpec::default();
    errs.extend(validate_pod_spec(
        t.spec.as_ref().unwrap_or(&empty),
        &path.child("spec"),
    ));
    errs
}

/// `ValidatePodSpec`.
pub fn validate_pod_spec(spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let mut errs = validate_volumes(volumes, &path.child("volumes"));
    let volume_names: HashSet<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
    // `hostUsers` defaults to true (the host's user namespace).
    let host_users = spec.host_users.unwrap_or(true);
    errs.extend(validate_containers(
        &spec.containers,
        &volume_names,
        host_users,
        &path.child("containers"),
    ));
    let init = spec.init_containers.as_deref().unwrap_or_default();
    errs.extend(validate_init_containers(
        init,
        &spec.containers,
        &volume_names,
        host_users,
        &path.child("initContainers"),
    ));
    errs.extend(validate_restart_policy(
        spec.restart_policy.as_deref().unwrap_or(""),
        &path.child("restartPolicy"),
    ));
    let dns = spec.dns_policy.as_deref().unwrap_or("");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(path.child("dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    if let Some(sc) = &spec.security_context {
        errs.extend(validate_pod_security_context(
            sc,
            spec.host_pid.unwrap_or(false),
            spec.share_process_namespace,
            &path.child("securityContext"),
        ));
    }
    if let Some(a) = &spec.affinity {
        errs.extend(validate_affinity(a, &path.child("affinity")));
    }
    errs.extend(validate_pod_dns_config(
        spec.dns_config.as_ref(),
        dns,
        &path.child("dnsConfig"),
    ));
    errs.extend(validate_topology_spread_constraints(
        spec.topology_spread_constraints
            .as_deref()
            .unwrap_or_default(),
        &path.child("topologySpreadConstraints"),
    ));
    for (field, v) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
        ("priorityClassName", &spec.priority_class_name),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(
                is_dns1123_subdomain(v)
                    .into_iter()
                    .map(|m| FieldError::invalid(path.child(field), v, m)),
            );
        }
    }
    if let Some(v) = spec.active_deadline_seconds {
        if !(1..=i32::MAX as i64).contains(&v) {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                v,
                inclusive_range_error(1, i32::MAX as i64),
            ));
        }
    }
    for (field, v) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            errs.extend(dns1123_label(v, &path.child(field)));
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds {
        // Negative values are tolerated upstream for backward compatibility (set to 1).
        let _ = g;
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or_default(),
        &path.child("tolerations"),
    ));
    errs
}

fn validate_restart_policy(policy: &str, path: &FieldPath) -> Vec<FieldError> {
    match policy {
        "Always" | "OnFailure" | "Never" => vec![],
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

fn validate_containers(
    containers: &[Container],
    volumes: &HashSet<&str>,
    host_users: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = path.index(i);
        errs.extend(validate_container_common(c, volumes, host_users, &cp));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(cp.child("name"), c.name.as_str()));
        }
        errs.extend(validate_probes(c, &cp));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                cp.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs
}

fn validate_init_containers(
    init: &[Container],
    regular: &[Container],
    volumes: &HashSet<&str>,
    host_users: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: HashSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in init.iter().enumerate() {
        let cp = path.index(i);
        errs.extend(validate_container_common(c, volumes, host_users, &cp));
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        if let Some(p) = c.restart_policy.as_deref().filter(|p| *p != "Always") {
            errs.push(FieldError::not_supported(
                cp.child("restartPolicy"),
                p,
                &["Always"],
            ));
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(cp.child("name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        if sidecar {
            errs.extend(validate_probes(c, &cp));
        } else {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, _) in set.iter().filter(|(_, present)| *present) {
                errs.push(FieldError::forbidden(
                    cp.child(field),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
fn validate_container_common(
    c: &Container,
    volumes: &HashSet<&str>,
    host_users: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c.name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        errs.extend(dns1123_label(&c.name, &path.child("name")));
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            path.child("terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(c, &path.child("ports")));
    errs.extend(validate_env(
        c.env.as_deref().unwrap_or_default(),
        &path.child("env"),
    ));
    errs.extend(validate_volume_mounts(
        c,
        volumes,
        &path.child("volumeMounts"),
    ));
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(path.child("imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            path.child("imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, &path.child("resources")));
    }
    if let Some(sc) = &c.security_context {
        errs.extend(validate_container_security_context(
            sc,
            host_users,
            &path.child("securityContext"),
        ));
    }
    errs
}

fn validate_container_ports(c: &Container, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pp = path.index(i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(pp.child("name"), name, m)),
                );
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(pp.child("name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(pp.child("containerPort"), ""));
        } else {
            for m in is_valid_port_num(p.container_port.into()) {
                errs.push(FieldError::invalid(
                    pp.child("containerPort"),
                    p.container_port,
                    m,
                ));
            }
        }
        if let Some(h) = p.host_port.filter(|h| *h != 0) {
            for m in is_valid_port_num(h.into()) {
                errs.push(FieldError::invalid(pp.child("hostPort"), h, m));
            }
        }
        errs.extend(validate_protocol(
            p.protocol.as_deref().unwrap_or(""),
            &pp.child("protocol"),
        ));
    }
    errs
}

/// `TCP`, `UDP` or `SCTP`.
pub fn validate_protocol(protocol: &str, path: &FieldPath) -> Vec<FieldError> {
    match protocol {
        "TCP" | "UDP" | "SCTP" => vec![],
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["SCTP", "TCP", "UDP"],
        )],
    }
}

fn validate_env(env: &[EnvVar], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in env.iter().enumerate() {
        let ep = path.index(i);
        if e.name.is_empty() {
            errs.push(FieldError::required(ep.child("name"), ""));
        }
        for m in is_relaxed_env_var_name(&e.name) {
            errs.push(FieldError::invalid(ep.child("name"), e.name.as_str(), m));
        }
        let Some(from) = &e.value_from else { continue };
        let vp = ep.child("valueFrom");
        let sources = [
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) && sources > 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        match sources {
            0 => errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(&vp, "", "may not have more than one field specified at a time")),
        }
        let key_refs = [
            (
                "configMapKeyRef",
                from.config_map_key_ref
                    .as_ref()
                    .map(|r| (r.name.as_str(), r.key.as_str())),
            ),
            (
                "secretKeyRef",
                from.secret_key_ref
                    .as_ref()
                    .map(|r| (r.name.as_str(), r.key.as_str())),
            ),
        ];
        for (field, refs) in key_refs {
            let Some((name, key)) = refs else { continue };
            let rp = vp.child(field);
            if name.is_empty() {
                errs.push(FieldError::required(rp.child("name"), ""));
            } else {
                errs.extend(
                    is_dns1123_subdomain(name)
                        .into_iter()
                        .map(|m| FieldError::invalid(rp.child("name"), name, m)),
                );
            }
            if key.is_empty() {
                errs.push(FieldError::required(rp.child("key"), ""));
            } else {
                errs.extend(
                    is_config_map_key(key)
                        .into_iter()
                        .map(|m| FieldError::invalid(rp.child("key"), key, m)),
                );
            }
        }
        if let Some(f) = &from.field_ref {
            let fp = vp.child("fieldRef");
            if f.api_version.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(fp.child("apiVersion"), ""));
            }
            if f.field_path.is_empty() {
                errs.push(FieldError::required(fp.child("fieldPath"), ""));
            } else if !env_field_path_supported(&f.field_path) {
                errs.push(FieldError::not_supported(
                    fp.child("fieldPath"),
                    f.field_path.as_str(),
                    ENV_FIELD_PATHS,
                ));
            }
        }
    }
    errs
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn env_field_path_supported(p: &str) -> bool {
    let subscripted = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|pre| p.starts_with(pre) && p.ends_with("']"));
    subscripted
        || (ENV_FIELD_PATHS.contains(&p) && p != "metadata.labels" && p != "metadata.annotations")
}

fn validate_volume_mounts(
    c: &Container,
    volumes: &HashSet<&str>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_points = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mp = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(mp.child("name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(mp.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(mp.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                mp.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            errs.extend(validate_local_descending_path(sub, &mp.child("subPath")));
        }
    }
    errs
}

fn validate_local_descending_path(p: &str, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|seg| seg == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
    errs
}

/// Requests are non-negative and at most the limit; names are standard or qualified.
fn validate_resources(r: &ResourceRequirements, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    for (which, list) in [("limits", limits), ("requests", requests)] {
        for (name, q) in list {
            let kp = path.child(which).key(name);
            if !name.contains('/')
                && !matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage")
                && !name.starts_with("hugepages-")
            {
                errs.push(FieldError::invalid(
                    &kp,
                    name.as_str(),
                    "must be a standard resource for containers",
                ));
            }
            if Quantity::parse(&q.0).is_ok_and(|v| v.is_negative()) {
                errs.push(FieldError::invalid(
                    &kp,
                    q.0.as_str(),
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    for (name, q) in requests {
        let (Some(limit), Ok(req)) = (limits.get(name), Quantity::parse(&q.0)) else {
            continue;
        };
        if Quantity::parse(&limit.0).is_ok_and(|l| req > l) {
            errs.push(FieldError::invalid(
                path.child("requests"),
                q.0.as_str(),
                format!("must be less than or equal to {name} limit of {}", limit.0),
            ));
        }
    }
    errs
}

fn validate_probes(c: &Container, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ] {
        let Some(p) = probe else { continue };
        let pp = path.child(field);
        errs.extend(validate_probe(p, &pp));
        if field != "readinessProbe" && p.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                pp.child("successThreshold"),
                p.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
        if field == "readinessProbe" {
            if let Some(t) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    pp.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

fn validate_probe(p: &Probe, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers = [
        ("exec", p.exec.is_some()),
        ("httpGet", p.http_get.is_some()),
        ("tcpSocket", p.tcp_socket.is_some()),
        ("grpc", p.grpc.is_some()),
    ];
    let mut seen = 0;
    for (field, present) in handlers {
        if !present {
            continue;
        }
        if seen > 0 {
            errs.push(FieldError::forbidden(
                path.child(field),
                "may not specify more than 1 handler type",
            ));
        }
        seen += 1;
    }
    if seen == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    if let Some(e) = &p.exec {
        if e.command.as_ref().is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required(
                path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(h) = &p.http_get {
        let hp = path.child("httpGet");
        if h.path.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(hp.child("path"), ""));
        }
        errs.extend(validate_port_num_or_name(&h.port, &hp.child("port")));
        let scheme = h.scheme.as_deref().unwrap_or("");
        if scheme != "HTTP" && scheme != "HTTPS" {
            errs.push(FieldError::not_supported(
                hp.child("scheme"),
                scheme,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    if let Some(t) = &p.tcp_socket {
        errs.extend(validate_port_num_or_name(
            &t.port,
            &path.child("tcpSocket").child("port"),
        ));
    }
    for (field, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        errs.extend(validate_nonnegative(
            v.unwrap_or(0).into(),
            &path.child(field),
        ));
    }
    if let Some(t) = p.termination_grace_period_seconds.filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

/// A port given as a number (1-65535) or an IANA service name.
pub fn validate_port_num_or_name(port: &IntOrString, path: &FieldPath) -> Vec<FieldError> {
    match port {
        IntOrString::Int(i) => is_valid_port_num((*i).into())
            .into_iter()
            .map(|m| FieldError::invalid(path, *i, m))
            .collect(),
        IntOrString::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
    }
}

/// `ValidateVolumes`: unique DNS-label names, exactly one source, source-specific checks.
fn validate_volumes(volumes: &[Volume], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let vp = path.index(i);
        errs.extend(validate_volume_source(v, &vp));
        if v.name.is_empty() {
            errs.push(FieldError::required(vp.child("name"), ""));
        } else {
            errs.extend(dns1123_label(&v.name, &vp.child("name")));
        }
        if !names.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(vp.child("name"), v.name.as_str()));
        }
    }
    errs
}

fn validate_volume_source(v: &Volume, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let json = serde_json::to_value(v).unwrap_or(Value::Null);
    let sources: Vec<&String> = json
        .as_object()
        .map(|m| m.keys().filter(|k| *k != "name").collect())
        .unwrap_or_default();
    if sources.is_empty() {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    for extra in sources.iter().skip(1) {
        errs.push(FieldError::forbidden(
            path.child(extra),
            "may not specify more than 1 volume type",
        ));
    }
    let mode = |m: Option<i32>, p: FieldPath| -> Option<FieldError> {
        m.filter(|m| !(0..=0o777).contains(m))
            .map(|m| FieldError::invalid(p, m, FILE_MODE_ERROR))
    };
    if let Some(s) = &v.secret {
        let sp = path.child("secret");
        if s.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(sp.child("secretName"), ""));
        }
        errs.extend(mode(s.default_mode, sp.child("defaultMode")));
    }
    if let Some(c) = &v.config_map {
        let cp = path.child("configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(cp.child("name"), ""));
        }
        errs.extend(mode(c.default_mode, cp.child("defaultMode")));
    }
    if let Some(h) = &v.host_path {
        let hp = path.child("hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(hp.child("path"), ""));
        }
        let ty = h.type_.as_deref().unwrap_or("");
        const TYPES: &[&str] = &[
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(hp.child("type"), ty, TYPES));
        }
    }
    if let Some(c) = &v.persistent_volume_claim {
        if c.claim_name.is_empty() {
            errs.push(FieldError::required(
                path.child("persistentVolumeClaim").child("claimName"),
                "",
            ));
        }
    }
    if let Some(n) = &v.nfs {
        if n.server.is_empty() {
            errs.push(FieldError::required(path.child("nfs").child("server"), ""));
        }
        if n.path.is_empty() {
            errs.push(FieldError::required(path.child("nfs").child("path"), ""));
        }
    }
    errs
}

/// `ValidatePodUpdate`'s spec rules: only images, `activeDeadlineSeconds`, added tolerations
/// and (from negative) `terminationGracePeriodSeconds` may change.
fn validate_pod_spec_update(new: &PodSpec, old: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let init_new = new.init_containers.as_deref().unwrap_or_default();
    let init_old = old.init_containers.as_deref().unwrap_or_default();
    for (field, n, o) in [
        (
            "containers",
            new.containers.as_slice(),
            old.containers.as_slice(),
        ),
        ("initContainers", init_new, init_old),
    ] {
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                path.child(field),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.is_empty() {
                errs.push(FieldError::required(
                    path.child(field).index(i).child("image"),
                    "",
                ));
            } else if image.trim() != image {
                errs.push(FieldError::invalid(
                    path.child(field).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match (new.active_deadline_seconds, old.active_deadline_seconds) {
        (Some(n), _) if !(0..=i32::MAX as i64).contains(&n) => {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                n,
                inclusive_range_error(0, i32::MAX as i64),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tolerations = new.tolerations.as_deref().unwrap_or_default();
    for old_t in old.tolerations.iter().flatten() {
        let kept = new_tolerations.iter().any(|t| {
            t.key == old_t.key
                && t.operator == old_t.operator
                && t.value == old_t.value
                && t.effect == old_t.effect
        });
        if !kept {
            errs.push(FieldError::forbidden(
                path.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    // Everything else must be unchanged: compare with the updatable fields taken from `old`.
    let mut munged = new.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(init_old) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    munged.tolerations.clone_from(&old.tolerations);
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    if munged != *old {
        errs.push(FieldError::forbidden(
            path,
            format!("{POD_UPDATE_FORBIDDEN}\n{}", spec_diff(old, &munged)),
        ));
    }
    errs
}

/// A short account of which top-level spec fields differ (upstream prints a `cmp.Diff`).
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (o, n) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let (Some(o), Some(n)) = (o.as_object(), n.as_object()) else {
        return String::new();
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut lines = vec!["  core.PodSpec{".to_string()];
    for k in keys.into_iter().filter(|k| o.get(*k) != n.get(*k)) {
        if let Some(v) = o.get(k) {
            lines.push(format!("- \t{k}: {v},"));
        }
        if let Some(v) = n.get(k) {
            lines.push(format!("+ \t{k}: {v},"));
        }
    }
    lines.push("  }".into());
    lines.join("\n")
}
