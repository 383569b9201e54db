//! `apps/v1` kinds (`pkg/apis/apps/validation/validation.go`).

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::go_format;
use super::meta::{
    selector_is_empty, selector_matches, validate_label_selector, validate_nonnegative, IMMUTABLE,
};
use super::names::{is_dns1123_label, is_valid_percent};
use super::path::FieldPath;
use super::pod::validate_pod_template_spec;
use crate::FieldError;

/// Selector required, valid and non-empty (`empty selector is invalid for <what>`).
fn validate_selector(sel: &LabelSelector, path: &FieldPath, what: &str) -> Vec<FieldError> {
    // Decoding turns an absent selector into an empty one; upstream reports it as missing.
    if selector_is_empty(sel) && sel.match_labels.is_none() && sel.match_expressions.is_none() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = validate_label_selector(sel, path);
    if selector_is_empty(sel) {
        errs.push(FieldError::invalid_repr(
            path,
            go_format::label_selector(sel),
            format!("empty selector is invalid for {what}"),
        ));
    }
    errs
}

/// The template of a replicated workload: labels match the selector, restartPolicy Always,
/// no activeDeadlineSeconds (`ValidatePodTemplateSpecForReplicaSet` and friends).
pub fn validate_workload_template(
    sel: &LabelSelector,
    t: &PodTemplateSpec,
    path: &FieldPath,
    kind: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if !selector_is_empty(sel) && !selector_matches(sel, labels) {
        errs.push(FieldError::invalid_repr(
            path.child("metadata").child("labels"),
            go_format::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(t, path));
    let spec = t.spec.as_ref();
    let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            path.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if spec.and_then(|s| s.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

fn selector_immutable(new: &LabelSelector, old: &LabelSelector) -> Vec<FieldError> {
    if new == old {
        vec![]
    } else {
        vec![FieldError::invalid_repr(
            FieldPath::new("spec").child("selector"),
            go_format::label_selector(new),
            IMMUTABLE,
        )]
    }
}

/// Ints are non-negative; strings are percentages.
fn validate_positive_int_or_percent(v: &IntOrString, path: &FieldPath) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|m| FieldError::invalid_repr(path, go_format::int_or_string(v), m))
            .collect(),
        IntOrString::Int(i) => validate_nonnegative((*i).into(), path),
    }
}

fn int_or_percent_value(v: Option<&IntOrString>) -> i64 {
    match v {
        Some(IntOrString::Int(i)) => (*i).into(),
        Some(IntOrString::String(s)) => s.trim_end_matches('%').parse().unwrap_or(0),
        None => 0,
    }
}

fn validate_max_surge_unavailable(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, v) in [("maxUnavailable", unavailable), ("maxSurge", surge)] {
        if let Some(v) = v {
            errs.extend(validate_positive_int_or_percent(v, &path.child(field)));
        }
    }
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        let shown = go_format::int_or_string(unavailable.unwrap_or(&IntOrString::Int(0)));
        errs.push(FieldError::invalid_repr(
            path.child("maxUnavailable"),
            shown,
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let Some(IntOrString::String(s)) = unavailable {
        if is_valid_percent(s).is_empty() && int_or_percent_value(unavailable) > 100 {
            errs.push(FieldError::invalid_repr(
                path.child("maxUnavailable"),
                go_format::int_or_string(unavailable.expect("matched")),
                "must not be greater than 100%",
            ));
        }
    }
    errs
}

pub fn validate_deployment(d: &Deployment, old: Option<&Deployment>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = d.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_nonnegative(spec.replicas.unwrap_or(0).into(), &sp.child("replicas"));
    errs.extend(validate_selector(
        &spec.selector,
        &sp.child("selector"),
        "deployment",
    ));
    errs.extend(validate_workload_template(
        &spec.selector,
        &spec.template,
        &sp.child("template"),
        "Deployment",
    ));
    if let Some(strategy) = &spec.strategy {
        let stp = sp.child("strategy");
        match strategy.type_.as_deref().unwrap_or("") {
            "Recreate" => {
                if strategy.rolling_update.is_some() {
                    errs.push(FieldError::forbidden(
                        stp.child("rollingUpdate"),
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => match &strategy.rolling_update {
                None => errs.push(FieldError::required(
                    stp.child("rollingUpdate"),
                    "this should be defaulted and never be nil",
                )),
                Some(ru) => errs.extend(validate_max_surge_unavailable(
                    ru.max_surge.as_ref(),
                    ru.max_unavailable.as_ref(),
                    &stp.child("rollingUpdate"),
                )),
            },
            other => errs.push(FieldError::not_supported(
                &stp,
                other,
                &["Recreate", "RollingUpdate"],
            )),
        }
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        min_ready.into(),
        &sp.child("minReadySeconds"),
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            r.into(),
            &sp.child("revisionHistoryLimit"),
        ));
    }
    if let Some(p) = spec.progress_deadline_seconds {
        errs.extend(validate_nonnegative(
            p.into(),
            &sp.child("progressDeadlineSeconds"),
        ));
        if p <= min_ready {
            errs.push(FieldError::invalid(
                sp.child("progressDeadlineSeconds"),
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old.and_then(|o| o.spec.as_ref()) {
        errs.extend(selector_immutable(&spec.selector, &old.selector));
    }
    errs
}

pub fn validate_replica_set(rs: &ReplicaSet, old: Option<&ReplicaSet>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = rs.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_nonnegative(spec.replicas.unwrap_or(0).into(), &sp.child("replicas"));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &sp.child("minReadySeconds"),
    ));
    // Upstream's message says "deployment" for replica sets too.
    errs.extend(validate_selector(
        &spec.selector,
        &sp.child("selector"),
        "deployment",
    ));
    match &spec.template {
        Some(t) => errs.extend(validate_workload_template(
            &spec.selector,
            t,
            &sp.child("template"),
            "ReplicaSet",
        )),
        None => errs.push(FieldError::required(sp.child("template"), "")),
    }
    if let Some(old) = old.and_then(|o| o.spec.as_ref()) {
        errs.extend(selector_immutable(&spec.selector, &old.selector));
    }
    errs
}

pub fn validate_daemon_set(ds: &DaemonSet, old: Option<&DaemonSet>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = ds.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_selector(&spec.selector, &sp.child("selector"), "daemonset");
    errs.extend(validate_workload_template(
        &spec.selector,
        &spec.template,
        &sp.child("template"),
        "DaemonSet",
    ));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &sp.child("minReadySeconds"),
    ));
    if let Some(r) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            r.into(),
            &sp.child("revisionHistoryLimit"),
        ));
    }
    if let Some(strategy) = &spec.update_strategy {
        let stp = sp.child("updateStrategy");
        match strategy.type_.as_deref().unwrap_or("") {
            "OnDelete" => {}
            "RollingUpdate" => match &strategy.rolling_update {
                None => errs.push(FieldError::required(stp.child("rollingUpdate"), "")),
                Some(ru) => errs.extend(validate_max_surge_unavailable(
                    ru.max_surge.as_ref(),
                    ru.max_unavailable.as_ref(),
                    &stp.child("rollingUpdate"),
                )),
            },
            other => errs.push(FieldError::not_supported(
                stp.child("type"),
                other,
                &["OnDelete", "RollingUpdate"],
            )),
        }
    }
    if let Some(old) = old.and_then(|o| o.spec.as_ref()) {
        errs.extend(selector_immutable(&spec.selector, &old.selector));
    }
    errs
}

pub fn validate_stateful_set(ss: &StatefulSet, old: Option<&StatefulSet>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = ss.spec.as_ref().unwrap_or(&empty);
    let mut errs = Vec::new();
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "OrderedReady" | "Parallel" => {}
        "" => errs.push(FieldError::required(sp.child("podManagementPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("podManagementPolicy"),
            other,
            &["OrderedReady", "Parallel"],
        )),
    }
    if let Some(strategy) = &spec.update_strategy {
        let stp = sp.child("updateStrategy");
        match strategy.type_.as_deref().unwrap_or("") {
            "RollingUpdate" => {
                if let Some(p) = strategy.rolling_update.as_ref().and_then(|r| r.partition) {
                    errs.extend(validate_nonnegative(
                        p.into(),
                        &stp.child("rollingUpdate").child("partition"),
                    ));
                }
            }
            "OnDelete" => {
                if strategy.rolling_update.is_some() {
                    errs.push(FieldError::invalid_repr(
                        stp.child("rollingUpdate"),
                        "&apps.RollingUpdateStatefulSetStrategy{…}",
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "" => errs.push(FieldError::required(&stp, "")),
            other => errs.push(FieldError::invalid(
                &stp,
                other,
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
    }
    errs.extend(validate_nonnegative(
        spec.replicas.unwrap_or(0).into(),
        &sp.child("replicas"),
    ));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &sp.child("minReadySeconds"),
    ));
    // Stricter since 1.33 (`AllowInvalidServiceName`): a new StatefulSet's governing Service
    // name must be a DNS label; stored ones are left alone (the field is immutable).
    if old.is_none() {
        if let Some(name) = spec.service_name.as_deref().filter(|n| !n.is_empty()) {
            errs.extend(
                is_dns1123_label(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(sp.child("serviceName"), name, m)),
            );
        }
    }
    errs.extend(validate_selector(
        &spec.selector,
        &sp.child("selector"),
        "statefulset",
    ));
    errs.extend(validate_workload_template(
        &spec.selector,
        &spec.template,
        &sp.child("template"),
        "StatefulSet",
    ));
    if let Some(old) = old.and_then(|o| o.spec.as_ref()) {
        // Only these fields may change (`ValidateStatefulSetUpdate`).
        let mut clone = spec.clone();
        clone.replicas = old.replicas;
        clone.template = old.template.clone();
        clone.update_strategy.clone_from(&old.update_strategy);
        clone.min_ready_seconds = old.min_ready_seconds;
        clone.ordinals.clone_from(&old.ordinals);
        clone.revision_history_limit = old.revision_history_limit;
        clone
            .persistent_volume_claim_retention_policy
            .clone_from(&old.persistent_volume_claim_retention_policy);
        if clone != *old {
            errs.push(FieldError::forbidden(&sp, "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
        }
    }
    errs
}

pub fn validate_controller_revision(
    cr: &ControllerRevision,
    old: Option<&ControllerRevision>,
) -> Vec<FieldError> {
    let mut errs = validate_nonnegative(cr.revision, &FieldPath::new("revision"));
    if let Some(old) = old {
        if cr.data != old.data {
            errs.push(FieldError::invalid_repr(
                "data",
                "runtime.RawExtension{…}",
                IMMUTABLE,
            ));
        }
    }
    errs
}
