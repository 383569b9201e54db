//! Where a pod may run: tolerations, affinity, topology spread constraints and DNS settings
//! (`pkg/apis/core/validation/validation.go`: `ValidateTolerations`, `validateAffinity`,
//! `validateTopologySpreadConstraints`, `validatePodDNSConfig`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    Affinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm,
    PodDNSConfig, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::go_format::string_slice;
use super::meta::{name_is_dns_label, name_is_dns_subdomain, validate_label_selector};
use super::names::{is_dns1123_subdomain_with_underscore, is_qualified_name, is_valid_label_value};
use super::path::FieldPath;
use crate::FieldError;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const WEIGHT_RANGE: &str = "must be in the range 1-100";
const NOT_POSITIVE: &str = "must be greater than zero";
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

/// `ValidateLabelName`: a qualified name, errors carrying the name.
fn validate_label_name(name: &str, path: &FieldPath) -> Vec<FieldError> {
    is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect()
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let tp = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let operator = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &tp.child("key")));
        }
        // An empty key with Exists matches every taint; with any other operator it is an error.
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                tp.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                tp.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        tp.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                tp.child("operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                tp.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                tp.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
    }
    errs
}

/// `validateAffinity`.
pub fn validate_affinity(affinity: &Affinity, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(na) = &affinity.node_affinity {
        let np = path.child("nodeAffinity");
        if let Some(required) = &na.required_during_scheduling_ignored_during_execution {
            errs.extend(validate_node_selector(
                required,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let preferred = na
            .preferred_during_scheduling_ignored_during_execution
            .as_deref()
            .unwrap_or_default();
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in preferred.iter().enumerate() {
            if !(1..=100).contains(&term.weight) {
                errs.push(FieldError::invalid(
                    pp.index(i).child("weight"),
                    term.weight,
                    WEIGHT_RANGE,
                ));
            }
            // Preferred terms always allow invalid label values: they may still match.
            errs.extend(validate_node_selector_term(
                &term.preference,
                true,
                &pp.index(i).child("preference"),
            ));
        }
    }
    let pod_affinities = [
        (
            "podAffinity",
            affinity.pod_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            affinity.pod_anti_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (field, terms) in pod_affinities {
        let Some((required, preferred)) = terms else {
            continue;
        };
        let ap = path.child(field);
        let rp = ap.child("requiredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in required.iter().flatten().enumerate() {
            errs.extend(validate_pod_affinity_term(term, &rp.index(i)));
        }
        let wp = ap.child("preferredDuringSchedulingIgnoredDuringExecution");
        errs.extend(validate_weighted_pod_affinity_terms(
            preferred.as_deref().unwrap_or_default(),
            &wp,
        ));
    }
    errs
}

fn validate_weighted_pod_affinity_terms(
    terms: &[WeightedPodAffinityTerm],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, term) in terms.iter().enumerate() {
        if !(1..=100).contains(&term.weight) {
            errs.push(FieldError::invalid(
                path.index(j).child("weight"),
                term.weight,
                WEIGHT_RANGE,
            ));
        }
        errs.extend(validate_pod_affinity_term(
            &term.pod_affinity_term,
            &path.index(j).child("podAffinityTerm"),
        ));
    }
    errs
}

/// `ValidateNodeSelector`: at least one term, each term valid.
pub fn validate_node_selector(selector: &NodeSelector, path: &FieldPath) -> Vec<FieldError> {
    let tp = path.child("nodeSelectorTerms");
    if selector.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            tp,
            "must have at least one node selector term",
        )];
    }
    selector
        .node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, term)| validate_node_selector_term(term, false, &tp.index(i)))
        .collect()
}

/// `ValidateNodeSelectorTerm`.
fn validate_node_selector_term(
    term: &NodeSelectorTerm,
    allow_invalid_label_values: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, req) in term.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_node_selector_requirement(
            req,
            allow_invalid_label_values,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, req) in term.match_fields.iter().flatten().enumerate() {
        errs.extend(validate_node_field_selector_requirement(
            req,
            &path.child("matchFields").index(j),
        ));
    }
    errs
}

/// `ValidateNodeSelectorRequirement`.
fn validate_node_selector_requirement(
    req: &NodeSelectorRequirement,
    allow_invalid_label_values: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            path.child("values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "In" | "NotIn" => {}
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Exists" | "DoesNotExist" => {}
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            path.child("values"),
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "Gt" | "Lt" => {}
        op => errs.push(FieldError::invalid(
            path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    if !allow_invalid_label_values {
        for (i, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    path.child("values").index(i),
                    v.as_str(),
                    m,
                ));
            }
        }
    }
    errs
}

/// `ValidateNodeFieldSelectorRequirement`: only `metadata.name`, with `In`/`NotIn` and one value.
fn validate_node_field_selector_requirement(
    req: &NodeSelectorRequirement,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" if values.len() != 1 => errs.push(FieldError::required(
            path.child("values"),
            "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
        )),
        "In" | "NotIn" => {}
        op => errs.push(FieldError::invalid(
            path.child("operator"),
            op,
            "not a valid selector operator",
        )),
    }
    if req.key != "metadata.name" {
        errs.push(FieldError::invalid(
            path.child("key"),
            req.key.as_str(),
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            for m in name_is_dns_subdomain(v, false) {
                errs.push(FieldError::invalid(
                    path.child("values").index(i),
                    v.as_str(),
                    m,
                ));
            }
        }
    }
    errs
}

/// `validatePodAffinityTerm`.
fn validate_pod_affinity_term(term: &PodAffinityTerm, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(s) = &term.label_selector {
        errs.extend(validate_label_selector(s, &path.child("labelSelector")));
    }
    if let Some(s) = &term.namespace_selector {
        errs.extend(validate_label_selector(s, &path.child("namespaceSelector")));
    }
    for name in term.namespaces.iter().flatten() {
        // Upstream names this `namespace`, singular, and does not index it.
        for m in name_is_dns_label(name, false) {
            errs.push(FieldError::invalid(
                path.child("namespace"),
                name.as_str(),
                m,
            ));
        }
    }
    errs.extend(validate_match_label_keys_and_mismatch_label_keys(
        path,
        term.match_label_keys.as_deref().unwrap_or_default(),
        term.mismatch_label_keys.as_deref().unwrap_or_default(),
        term.label_selector.as_ref(),
    ));
    if term.topology_key.is_empty() {
        errs.push(FieldError::required(
            path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(
        &term.topology_key,
        &path.child("topologyKey"),
    ));
    errs
}

/// `validateLabelKeys`: label names, and only alongside a label selector.
fn validate_label_keys(
    keys: &[String],
    selector: Option<&LabelSelector>,
    path: &FieldPath,
) -> Vec<FieldError> {
    if keys.is_empty() {
        return Vec::new();
    }
    if selector.is_none() {
        return vec![FieldError::forbidden(
            path,
            "must not be specified when labelSelector is not set",
        )];
    }
    keys.iter()
        .enumerate()
        .flat_map(|(i, k)| validate_label_name(k, &path.index(i)))
        .collect()
}

/// `validateMatchLabelKeysAndMismatchLabelKeys`.
fn validate_match_label_keys_and_mismatch_label_keys(
    path: &FieldPath,
    match_keys: &[String],
    mismatch_keys: &[String],
    selector: Option<&LabelSelector>,
) -> Vec<FieldError> {
    let mut errs = validate_label_keys(match_keys, selector, &path.child("matchLabelKeys"));
    errs.extend(validate_label_keys(
        mismatch_keys,
        selector,
        &path.child("mismatchLabelKeys"),
    ));
    if let Some(sel) = selector {
        let match_index: HashMap<&str, usize> = match_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut selector_keys: HashSet<&str> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        for expr in sel.match_expressions.iter().flatten() {
            let key = expr.key.as_str();
            if let Some(i) = match_index.get(key) {
                if selector_keys.contains(key) {
                    // Upstream indexes the term path itself here, not `matchLabelKeys`.
                    errs.push(FieldError::invalid(
                        path.index(*i),
                        key,
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
            selector_keys.insert(key);
        }
    }
    let mismatch: HashSet<&str> = mismatch_keys.iter().map(String::as_str).collect();
    for (i, k) in match_keys.iter().enumerate() {
        if mismatch.contains(k.as_str()) {
            errs.push(FieldError::invalid(
                path.child("matchLabelKeys").index(i),
                k.as_str(),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    errs
}

/// `validateTopologySpreadConstraints`.
pub fn validate_topology_spread_constraints(
    constraints: &[TopologySpreadConstraint],
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let cp = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                cp.child("maxSkew"),
                c.max_skew,
                NOT_POSITIVE,
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                cp.child("topologyKey"),
                "can not be empty",
            ));
        }
        let action = c.when_unsatisfiable.as_str();
        if !matches!(action, "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(FieldError::not_supported(
                cp.child("whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        // {topologyKey, whenUnsatisfiable} names one kind of constraint: each at most once.
        if constraints[i + 1..]
            .iter()
            .any(|r| r.topology_key == c.topology_key && r.when_unsatisfiable == action)
        {
            errs.push(FieldError::duplicate(
                cp.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {action}}}", c.topology_key),
            ));
        }
        if let Some(min) = c.min_domains {
            let mp = cp.child("minDomains");
            if min <= 0 {
                errs.push(FieldError::invalid(&mp, min, NOT_POSITIVE));
            }
            if action != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &mp,
                    min,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for (field, policy) in [
            ("nodeAffinityPolicy", &c.node_affinity_policy),
            ("nodeTaintsPolicy", &c.node_taints_policy),
        ] {
            if let Some(p) = policy
                .as_deref()
                .filter(|p| !matches!(*p, "Honor" | "Ignore"))
            {
                errs.push(FieldError::not_supported(
                    cp.child(field),
                    p,
                    &["Honor", "Ignore"],
                ));
            }
        }
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        if !keys.is_empty() {
            let kp = cp.child("matchLabelKeys");
            let mut selector_keys: HashSet<&str> = HashSet::new();
            match &c.label_selector {
                Some(sel) => {
                    selector_keys
                        .extend(sel.match_labels.iter().flatten().map(|(k, _)| k.as_str()));
                    selector_keys.extend(
                        sel.match_expressions
                            .iter()
                            .flatten()
                            .map(|e| e.key.as_str()),
                    );
                }
                None => errs.push(FieldError::forbidden(
                    &kp,
                    "must not be specified when labelSelector is not set",
                )),
            }
            for (j, key) in keys.iter().enumerate() {
                errs.extend(validate_label_name(key, &kp.index(j)));
                if selector_keys.contains(key.as_str()) {
                    errs.push(FieldError::invalid(
                        kp.index(j),
                        key.as_str(),
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        if let Some(sel) = &c.label_selector {
            errs.extend(validate_label_selector(sel, &cp.child("labelSelector")));
        }
    }
    errs
}

/// `validatePodDNSConfig`: `dnsPolicy: None` needs nameservers; libc's limits on the lists.
pub fn validate_pod_dns_config(
    config: Option<&PodDNSConfig>,
    dns_policy: &str,
    path: &FieldPath,
) -> Vec<FieldError> {
    let nameservers = config
        .and_then(|c| c.nameservers.as_deref())
        .unwrap_or_default();
    if dns_policy == "None" {
        if config.is_none() {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        }
        if nameservers.is_empty() {
            return vec![FieldError::required(
                path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(config) = config else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid_repr(
            path.child("nameservers"),
            string_slice(config.nameservers.as_ref()),
            format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if ns.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                path.child("nameservers").index(i),
                ns.as_str(),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(FieldError::invalid_repr(
            path.child("searches"),
            string_slice(config.searches.as_ref()),
            format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        errs.push(FieldError::invalid_repr(
            path.child("searches"),
            string_slice(config.searches.as_ref()),
            format!("must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"),
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        // RelaxedDNSSearchValidation (on by default since 1.33): "." alone, a trailing dot
        // and underscores are allowed.
        if search == "." {
            continue;
        }
        let search = search.strip_suffix('.').unwrap_or(search);
        for m in is_dns1123_subdomain_with_underscore(search) {
            errs.push(FieldError::invalid(
                path.child("searches").index(i),
                search,
                m,
            ));
        }
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    fn tolerations(v: Value) -> Vec<String> {
        let t: Vec<Toleration> = serde_json::from_value(v).unwrap();
        msgs(validate_tolerations(
            &t,
            &FieldPath::new("spec.tolerations"),
        ))
    }

    fn affinity(v: Value) -> Vec<String> {
        let a: Affinity = serde_json::from_value(v).unwrap();
        msgs(validate_affinity(&a, &FieldPath::new("spec.affinity")))
    }

    fn spread(v: Value) -> Vec<String> {
        let c: Vec<TopologySpreadConstraint> = serde_json::from_value(v).unwrap();
        msgs(validate_topology_spread_constraints(
            &c,
            &FieldPath::new("spec.topologySpreadConstraints"),
        ))
    }

    fn dns(config: Option<Value>, policy: &str) -> Vec<String> {
        let c: Option<PodDNSConfig> = config.map(|c| serde_json::from_value(c).unwrap());
        msgs(validate_pod_dns_config(
            c.as_ref(),
            policy,
            &FieldPath::new("spec.dnsConfig"),
        ))
    }

    #[test]
    fn valid_tolerations_pass() {
        assert!(tolerations(json!([
            {"key": "foo", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "foo", "operator": "Equal", "value": "bar", "effect": "NoExecute", "tolerationSeconds": 60},
            {"operator": "Exists"},
            {"key": "node.kubernetes.io/not-ready", "value": "x"}
        ]))
        .is_empty());
    }

    #[test]
    fn toleration_errors_match_upstream() {
        assert_eq!(
            tolerations(json!([{"key": "foo", "operator": "Exists", "value": "bar"}])),
            ["spec.tolerations[0].operator: Invalid value: \"bar\": value must be empty when `operator` is 'Exists'"]
        );
        assert_eq!(
            tolerations(json!([{"value": "bar"}])),
            ["spec.tolerations[0].operator: Invalid value: \"\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""]
        );
        assert_eq!(
            tolerations(json!([{"key": "foo", "effect": "NoSchedule", "tolerationSeconds": 5}])),
            ["spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"]
        );
        assert_eq!(
            tolerations(json!([{"key": "foo", "operator": "In"}])),
            ["spec.tolerations[0].operator: Unsupported value: \"In\": supported values: \"Equal\", \"Exists\""]
        );
        assert_eq!(
            tolerations(json!([{"key": "foo", "effect": "Never"}])),
            ["spec.tolerations[0].effect: Unsupported value: \"Never\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""]
        );
        assert_eq!(
            tolerations(json!([{"key": "nospecialchars^=@", "operator": "Exists"}]))[0],
            "spec.tolerations[0].key: Invalid value: \"nospecialchars^=@\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            tolerations(json!([{"key": "foo", "value": "a b"}])),
            ["spec.tolerations[0].operator: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
    }

    #[test]
    fn valid_affinity_passes() {
        assert!(affinity(json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "key2", "operator": "In", "values": ["value1", "value2"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["host1"]}]}
                ]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": {"matchExpressions": [{"key": "foo", "operator": "Gt", "values": ["2"]}]}}
                ]
            },
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone", "namespaces": ["ns"]}
            ]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone", "matchLabelKeys": ["pod-template-hash"]}}
            ]}
        }))
        .is_empty());
    }

    #[test]
    fn node_affinity_errors_match_upstream() {
        let required = |terms: Value| {
            affinity(
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}),
            )
        };
        let prefix = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
        assert_eq!(
            required(json!([])),
            [format!(
                "{prefix}: Required value: must have at least one node selector term"
            )]
        );
        assert_eq!(
            required(json!([{"matchExpressions": [{"key": "k", "operator": "In"}]}])),
            [format!("{prefix}[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")]
        );
        assert_eq!(
            required(json!([{"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}])),
            [format!("{prefix}[0].matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
        );
        assert_eq!(
            required(json!([{"matchExpressions": [{"key": "k", "operator": "Lt", "values": ["1", "2"]}]}])),
            [format!("{prefix}[0].matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")]
        );
        assert_eq!(
            required(json!([{"matchExpressions": [{"key": "k", "operator": "Gte", "values": ["1"]}]}])),
            [format!("{prefix}[0].matchExpressions[0].operator: Invalid value: \"Gte\": not a valid selector operator")]
        );
        assert_eq!(
            required(json!([{"matchFields": [{"key": "metadata.namespace", "operator": "In", "values": ["a", "b"]}]}])),
            [
                format!("{prefix}[0].matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
                format!("{prefix}[0].matchFields[0].key: Invalid value: \"metadata.namespace\": not a valid field selector key"),
            ]
        );
        assert_eq!(
            affinity(json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 199, "preference": {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}}
            ]}})),
            ["spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 199: must be in the range 1-100"]
        );
    }

    #[test]
    fn pod_affinity_errors_match_upstream() {
        assert_eq!(
            affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}}
            ]}})),
            ["spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
             "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: \"\": name part must be non-empty",
             "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
        );
        assert_eq!(
            affinity(json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}}
            ]}})),
            ["spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
             "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
        assert_eq!(
            affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone", "namespaces": ["Bad_NS"]}
            ]}}))[0],
            "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone", "matchLabelKeys": ["k"]}
            ]}})),
            ["spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"]
        );
        assert_eq!(
            affinity(json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone", "labelSelector": {"matchLabels": {"k": "v"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
                 "matchLabelKeys": ["k"], "mismatchLabelKeys": ["k"]}
            ]}})),
            ["spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0][0]: Invalid value: \"k\": exists in both matchLabelKeys and labelSelector",
             "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].matchLabelKeys[0]: Invalid value: \"k\": exists in both matchLabelKeys and mismatchLabelKeys"]
        );
    }

    #[test]
    fn topology_spread_errors_match_upstream() {
        assert!(spread(json!([
            {"maxSkew": 1, "topologyKey": "k8s.io/zone", "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3,
             "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash"]},
            {"maxSkew": 1, "topologyKey": "k8s.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "nodeAffinityPolicy": "Honor"}
        ]))
        .is_empty());
        assert_eq!(
            spread(json!([{"maxSkew": 0, "topologyKey": "", "whenUnsatisfiable": "N/A"}])),
            ["spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
             "spec.topologySpreadConstraints[0].topologyKey: Required value: can not be empty",
             "spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: \"N/A\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\""]
        );
        assert_eq!(
            spread(json!([
                {"maxSkew": 1, "topologyKey": "k8s.io/zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 2, "topologyKey": "k8s.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
            ])),
            ["spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: \"{k8s.io/zone, DoNotSchedule}\""]
        );
        assert_eq!(
            spread(json!([{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": -1}])),
            ["spec.topologySpreadConstraints[0].minDomains: Invalid value: -1: must be greater than zero",
             "spec.topologySpreadConstraints[0].minDomains: Invalid value: -1: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"]
        );
        assert_eq!(
            spread(json!([{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule", "nodeTaintsPolicy": "Always"}])),
            ["spec.topologySpreadConstraints[0].nodeTaintsPolicy: Unsupported value: \"Always\": supported values: \"Honor\", \"Ignore\""]
        );
        assert_eq!(
            spread(json!([{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"foo": "bar"}}, "matchLabelKeys": ["foo"]}])),
            ["spec.topologySpreadConstraints[0].matchLabelKeys[0]: Invalid value: \"foo\": exists in both matchLabelKeys and labelSelector"]
        );
        assert_eq!(
            spread(json!([{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "DoNotSchedule", "matchLabelKeys": ["foo"]}])),
            ["spec.topologySpreadConstraints[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"]
        );
    }

    #[test]
    fn dns_config_errors_match_upstream() {
        assert!(dns(None, "ClusterFirst").is_empty());
        assert!(dns(
            Some(json!({"nameservers": ["1.2.3.4"], "searches": ["ns.svc.cluster.local."]})),
            "None"
        )
        .is_empty());
        assert_eq!(
            dns(None, "None"),
            ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]
        );
        assert_eq!(
            dns(Some(json!({"searches": ["a"]})), "None"),
            ["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"]
        );
        assert_eq!(
            dns(Some(json!({"nameservers": ["1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.7"]})), "ClusterFirst"),
            ["spec.dnsConfig.nameservers: Invalid value: []string{\"1.2.3.4\", \"1.2.3.5\", \"1.2.3.6\", \"1.2.3.7\"}: must not have more than 3 nameservers"]
        );
        assert_eq!(
            dns(Some(json!({"nameservers": ["invalid"]})), "ClusterFirst"),
            ["spec.dnsConfig.nameservers[0]: Invalid value: \"invalid\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        let searches: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
        assert_eq!(
            dns(Some(json!({"searches": searches})), "ClusterFirst").len(),
            1
        );
        assert!(dns(
            Some(json!({"searches": [".", "_sip._tcp.example.com"]})),
            "ClusterFirst"
        )
        .is_empty());
        assert_eq!(
            dns(Some(json!({"searches": ["custom_"]})), "ClusterFirst"),
            ["spec.dnsConfig.searches[0]: Invalid value: \"custom_\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*')"]
        );
        assert_eq!(
            dns(Some(json!({"options": [{"value": "1"}]})), "Default"),
            ["spec.dnsConfig.options[0]: Required value: must not be empty"]
        );
    }
}
