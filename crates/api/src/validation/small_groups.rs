//! The smaller groups: `policy`, `coordination.k8s.io`, `scheduling.k8s.io`,
//! `discovery.k8s.io`, `networking.k8s.io` and `storage.k8s.io`.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::go_format;
use super::meta::{validate_label_selector, validate_nonnegative, validate_positive, IMMUTABLE};
use super::names::is_valid_percent;
use super::path::FieldPath;
use super::pod::validate_protocol;
use crate::FieldError;

/// Highest priority a user-defined class may have.
const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// Built-in priority classes and their fixed values.
const SYSTEM_PRIORITY_CLASSES: &[(&str, i32)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

fn int_or_percent(v: &IntOrString, path: &FieldPath) -> Vec<FieldError> {
    match v {
        IntOrString::Int(i) => validate_nonnegative((*i).into(), path),
        IntOrString::String(s) => {
            let mut errs: Vec<FieldError> = is_valid_percent(s)
                .into_iter()
                .map(|m| FieldError::invalid_repr(path, go_format::int_or_string(v), m))
                .collect();
            if errs.is_empty()
                && s.trim_end_matches('%')
                    .parse::<i64>()
                    .is_ok_and(|p| p > 100)
            {
                errs.push(FieldError::invalid_repr(
                    path,
                    go_format::int_or_string(v),
                    "must not be greater than 100%",
                ));
            }
            errs
        }
    }
}

pub fn validate_pdb(
    pdb: &PodDisruptionBudget,
    _old: Option<&PodDisruptionBudget>,
) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = pdb.spec.as_ref().unwrap_or(&empty);
    let mut errs = Vec::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid_repr(
            &sp,
            "policy.PodDisruptionBudgetSpec{…}",
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if let Some(v) = &spec.min_available {
        errs.extend(int_or_percent(v, &sp.child("minAvailable")));
    }
    if let Some(v) = &spec.max_unavailable {
        errs.extend(int_or_percent(v, &sp.child("maxUnavailable")));
    }
    if let Some(sel) = &spec.selector {
        errs.extend(validate_label_selector(sel, &sp.child("selector")));
    }
    if let Some(p) = spec.unhealthy_pod_eviction_policy.as_deref() {
        if p != "IfHealthyBudget" && p != "AlwaysAllow" {
            errs.push(FieldError::not_supported(
                sp.child("unhealthyPodEvictionPolicy"),
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

pub fn validate_lease(l: &Lease, _old: Option<&Lease>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    if let Some(spec) = &l.spec {
        if let Some(d) = spec.lease_duration_seconds {
            errs.extend(validate_positive(
                d.into(),
                &sp.child("leaseDurationSeconds"),
            ));
        }
        if let Some(t) = spec.lease_transitions {
            errs.extend(validate_nonnegative(
                t.into(),
                &sp.child("leaseTransitions"),
            ));
        }
    }
    errs
}

pub fn validate_priority_class(pc: &PriorityClass, old: Option<&PriorityClass>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = pc.metadata.name.as_deref().unwrap_or("");
    if name.starts_with("system-") {
        match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _)| *n == name) {
            None => errs.push(FieldError::forbidden(
                FieldPath::new("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {name} is not a known system priority class"),
            )),
            Some((_, v)) if *v != pc.value => errs.push(FieldError::forbidden(
                FieldPath::new("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: value of {name} PriorityClass must be {v}"),
            )),
            Some(_) => {}
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    if let Some(p) = pc.preemption_policy.as_deref() {
        if p != "PreemptLowerPriority" && p != "Never" {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    if let Some(old) = old {
        if pc.value != old.value {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        if pc.preemption_policy != old.preemption_policy {
            errs.push(FieldError::invalid(
                "preemptionPolicy",
                pc.preemption_policy.clone().unwrap_or_default(),
                IMMUTABLE,
            ));
        }
    }
    errs
}

pub fn validate_endpoint_slice(es: &EndpointSlice, old: Option<&EndpointSlice>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if es.address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&es.address_type.as_str()) {
        errs.push(FieldError::not_supported(
            "addressType",
            es.address_type.as_str(),
            TYPES,
        ));
    }
    for (i, p) in es.ports.iter().flatten().enumerate() {
        let pp = FieldPath::new("ports").index(i);
        if let Some(proto) = p.protocol.as_deref() {
            errs.extend(validate_protocol(proto, &pp.child("protocol")));
        }
    }
    if let Some(old) = old {
        if es.address_type != old.address_type {
            errs.push(FieldError::invalid(
                "addressType",
                es.address_type.as_str(),
                IMMUTABLE,
            ));
        }
    }
    errs
}

pub fn validate_network_policy(
    np: &NetworkPolicy,
    _old: Option<&NetworkPolicy>,
) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    let Some(spec) = &np.spec else { return errs };
    if let Some(sel) = &spec.pod_selector {
        errs.extend(validate_label_selector(sel, &sp.child("podSelector")));
    }
    for (i, t) in spec.policy_types.iter().flatten().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                sp.child("policyTypes").index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    let ingress = spec
        .ingress
        .iter()
        .flatten()
        .map(|r| ("ingress", r.ports.as_deref().unwrap_or_default()));
    let egress = spec
        .egress
        .iter()
        .flatten()
        .map(|r| ("egress", r.ports.as_deref().unwrap_or_default()));
    let mut index = std::collections::HashMap::new();
    for (dir, ports) in ingress.chain(egress) {
        let i = index.entry(dir).or_insert(0usize);
        for (j, p) in ports.iter().enumerate() {
            if let Some(proto) = p.protocol.as_deref() {
                errs.extend(validate_protocol(
                    proto,
                    &sp.child(dir)
                        .index(*i)
                        .child("ports")
                        .index(j)
                        .child("protocol"),
                ));
            }
        }
        *i += 1;
    }
    errs
}

pub fn validate_storage_class(sc: &StorageClass, old: Option<&StorageClass>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if sc.provisioner.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    }
    if let Some(p) = sc.reclaim_policy.as_deref() {
        if p != "Delete" && p != "Retain" {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                p,
                &["Delete", "Retain"],
            ));
        }
    }
    if let Some(m) = sc.volume_binding_mode.as_deref() {
        if m != "Immediate" && m != "WaitForFirstConsumer" {
            errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
    }
    if let Some(old) = old {
        if sc.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if sc.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if sc.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        if sc.volume_binding_mode != old.volume_binding_mode {
            errs.push(FieldError::invalid(
                "volumeBindingMode",
                sc.volume_binding_mode.clone().unwrap_or_default(),
                IMMUTABLE,
            ));
        }
    }
    errs
}
