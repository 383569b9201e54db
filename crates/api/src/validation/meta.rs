//! ObjectMeta, labels, annotations and label selectors
//! (`apimachinery/pkg/api/validation/objectmeta.go`, `apis/meta/v1/validation`).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, is_valid_path_segment_name,
};
use super::path::FieldPath;
use crate::FieldError;

/// Upstream's `field is immutable`.
pub const IMMUTABLE: &str = "field is immutable";

/// Total size limit of all annotations (256 KiB).
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Checks an object name (`prefix` when it is a `generateName`, whose trailing `-` is allowed).
pub type NameFn = fn(&str, bool) -> Vec<String>;

fn mask_trailing_dash(name: &str, prefix: bool) -> String {
    if prefix && name.len() > 1 && name.ends_with('-') {
        format!("{}a", &name[..name.len() - 1])
    } else {
        name.to_string()
    }
}

/// Most kinds: a DNS-1123 subdomain.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    is_dns1123_subdomain(&mask_trailing_dash(name, prefix))
}

/// Namespaces: a DNS-1123 label.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    is_dns1123_label(&mask_trailing_dash(name, prefix))
}

/// Services: a DNS-1035 label.
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    is_dns1035_label(&mask_trailing_dash(name, prefix))
}

/// RBAC objects: anything usable as a path segment.
pub fn name_is_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        // A generated name gets a suffix, so `.`/`..` cannot result.
        is_valid_path_segment_name(name)
            .into_iter()
            .filter(|m| m.starts_with("may not contain"))
            .collect()
    } else {
        is_valid_path_segment_name(name)
    }
}

/// `ValidateObjectMeta` for a create (the namespace's presence is the server's check).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    name_fn: NameFn,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        for m in name_fn(g, true) {
            errs.push(FieldError::invalid(path.child("generateName"), g, m));
        }
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        )),
        Some(n) => {
            for m in name_fn(n, false) {
                errs.push(FieldError::invalid(path.child("name"), n, m));
            }
        }
    }
    errs.extend(validate_nonnegative(
        meta.generation.unwrap_or(0),
        &path.child("generation"),
    ));
    errs.extend(common_meta(meta, path));
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable; labels and friends revalidated.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f: HashSet<&String> = old.finalizers.iter().flatten().collect();
        for f in new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
        {
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{f:?}}}"),
            ));
        }
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            path.child("generation"),
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    for (field, n, o) in [
        ("name", s(&new.name), s(&old.name)),
        ("namespace", s(&new.namespace), s(&old.namespace)),
        ("uid", s(&new.uid), s(&old.uid)),
    ] {
        if n != o {
            errs.push(FieldError::invalid(path.child(field), n, IMMUTABLE));
        }
    }
    let time = |t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.as_ref().map(|t| t.0.to_string())
    };
    if time(&new.creation_timestamp) != time(&old.creation_timestamp) {
        let shown = time(&new.creation_timestamp).unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            path.child("creationTimestamp"),
            shown,
            IMMUTABLE,
        ));
    }
    if time(&new.deletion_timestamp) != time(&old.deletion_timestamp) {
        let shown = time(&new.deletion_timestamp).unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            path.child("deletionTimestamp"),
            shown,
            IMMUTABLE,
        ));
    }
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        let shown = new
            .deletion_grace_period_seconds
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            path.child("deletionGracePeriodSeconds"),
            shown,
            IMMUTABLE,
        ));
    }
    errs.extend(common_meta(new, path));
    errs
}

/// Checks shared by create and update: labels, annotations, owner references, finalizers.
fn common_meta(meta: &ObjectMeta, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = validate_labels(meta.labels.as_ref(), &path.child("labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta,
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or_default(),
        &path.child("finalizers"),
    ));
    errs
}

/// Label keys are qualified names, values are label values; errors name the map, not the key.
pub fn validate_labels(
    labels: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), m));
        }
    }
    errs
}

/// Annotation keys are qualified names (case-insensitive); all of them together at most 256 KiB.
pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in annotations.into_iter().flatten() {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn validate_owner_references(meta: &ObjectMeta, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in meta.owner_references.iter().flatten() {
        let version = r.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        for (field, v) in [("kind", &r.kind), ("name", &r.name), ("uid", &r.uid)] {
            if v.is_empty() {
                errs.push(FieldError::invalid(
                    path.child(field),
                    "",
                    "must not be empty",
                ));
            }
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid_repr(
                    path,
                    "[]v1.OwnerReference{…}",
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Finalizers are qualified names, unless one of the standard short names; no duplicates.
fn validate_finalizers(finalizers: &[String], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, f) in finalizers.iter().enumerate() {
        for m in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), m));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(path, f.as_str()));
        }
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(FieldError::invalid(
                path.index(i),
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if seen.contains(&"orphan".to_string()) && seen.contains(&"foregroundDeletion".to_string()) {
        let shown = format!(
            "[]string{{{}}}",
            finalizers
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        errs.push(FieldError::invalid_repr(
            path,
            shown,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// `ValidateLabelSelector` (strict label values).
pub fn validate_label_selector(sel: &LabelSelector, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        let rp = path.child("matchExpressions").index(i);
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                rp.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                rp.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                rp.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        for m in is_qualified_name(&r.key) {
            errs.push(FieldError::invalid(rp.child("key"), r.key.as_str(), m));
        }
        for (j, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    rp.child("values").index(j),
                    v.as_str(),
                    m,
                ));
            }
        }
    }
    errs.extend(validate_labels(
        sel.match_labels.as_ref(),
        &path.child("matchLabels"),
    ));
    errs
}

/// Whether `sel` matches `labels` (matchLabels and matchExpressions, as `LabelSelectorAsSelector`).
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" => labels.get(&r.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&r.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&r.key),
            "DoesNotExist" => !labels.contains_key(&r.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Whether the selector selects nothing in particular (no labels, no expressions).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

/// `must be greater than or equal to 0`.
pub fn validate_nonnegative(v: i64, path: &FieldPath) -> Vec<FieldError> {
    if v < 0 {
        vec![FieldError::invalid(
            path,
            v,
            "must be greater than or equal to 0",
        )]
    } else {
        vec![]
    }
}

/// `must be greater than 0`.
pub fn validate_positive(v: i64, path: &FieldPath) -> Vec<FieldError> {
    if v <= 0 {
        vec![FieldError::invalid(path, v, "must be greater than 0")]
    } else {
        vec![]
    }
}
