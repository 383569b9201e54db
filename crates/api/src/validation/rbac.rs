//! `rbac.authorization.k8s.io/v1` kinds (`pkg/apis/rbac/validation/validation.go`).

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::meta::name_is_dns_subdomain;
use super::names::is_valid_path_segment_name;
use super::path::FieldPath;
use crate::FieldError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn validate_rules(rules: &[PolicyRule], namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let rp = FieldPath::new("rules").index(i);
        if r.verbs.is_empty() {
            errs.push(FieldError::required(
                rp.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = r.non_resource_urls.as_deref().unwrap_or_default();
        let nonempty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        if !urls.is_empty() {
            let shown = serde_json::json!(urls);
            if namespaced {
                errs.push(FieldError::invalid(
                    rp.child("nonResourceURLs"),
                    shown.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if nonempty(&r.api_groups) || nonempty(&r.resources) || nonempty(&r.resource_names) {
                errs.push(FieldError::invalid(
                    rp.child("nonResourceURLs"),
                    shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !nonempty(&r.api_groups) {
            errs.push(FieldError::required(
                rp.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !nonempty(&r.resources) {
            errs.push(FieldError::required(
                rp.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

pub fn validate_role(r: &Role, _old: Option<&Role>) -> Vec<FieldError> {
    validate_rules(r.rules.as_deref().unwrap_or_default(), true)
}

pub fn validate_cluster_role(r: &ClusterRole, _old: Option<&ClusterRole>) -> Vec<FieldError> {
    validate_rules(r.rules.as_deref().unwrap_or_default(), false)
}

fn validate_role_ref(r: &RoleRef, kinds: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rp = FieldPath::new("roleRef");
    if r.api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            rp.child("apiGroup"),
            r.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&r.kind.as_str()) {
        errs.push(FieldError::not_supported(
            rp.child("kind"),
            r.kind.as_str(),
            kinds,
        ));
    }
    if r.name.is_empty() {
        errs.push(FieldError::required(rp.child("name"), ""));
    } else {
        errs.extend(
            is_valid_path_segment_name(&r.name)
                .into_iter()
                .map(|m| FieldError::invalid(rp.child("name"), r.name.as_str(), m)),
        );
    }
    errs
}

fn validate_subjects(subjects: &[Subject], namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        let sp = FieldPath::new("subjects").index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(sp.child("name"), ""));
        }
        let group = s.api_group.as_deref().unwrap_or("");
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.name.is_empty() {
                    errs.extend(
                        name_is_dns_subdomain(&s.name, false)
                            .into_iter()
                            .map(|m| FieldError::invalid(sp.child("name"), s.name.as_str(), m)),
                    );
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(sp.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                sp.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return vec![];
    }
    let repr = format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        new.api_group, new.kind, new.name
    );
    vec![FieldError::invalid_repr(
        "roleRef",
        repr,
        "cannot change roleRef",
    )]
}

pub fn validate_role_binding(rb: &RoleBinding, old: Option<&RoleBinding>) -> Vec<FieldError> {
    let mut errs = validate_role_ref(&rb.role_ref, &["Role", "ClusterRole"]);
    errs.extend(validate_subjects(
        rb.subjects.as_deref().unwrap_or_default(),
        true,
    ));
    if let Some(old) = old {
        errs.extend(role_ref_unchanged(&rb.role_ref, &old.role_ref));
    }
    errs
}

pub fn validate_cluster_role_binding(
    rb: &ClusterRoleBinding,
    old: Option<&ClusterRoleBinding>,
) -> Vec<FieldError> {
    let mut errs = validate_role_ref(&rb.role_ref, &["ClusterRole"]);
    errs.extend(validate_subjects(
        rb.subjects.as_deref().unwrap_or_default(),
        false,
    ));
    if let Some(old) = old {
        errs.extend(role_ref_unchanged(&rb.role_ref, &old.role_ref));
    }
    errs
}
