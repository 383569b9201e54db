//! Values the downward API exposes (upstream `pkg/fieldpath` and
//! `pkg/api/v1/resource`'s `ExtractResourceValueByContainerNameAndNodeAllocatable`), shared
//! by environment variables and downwardAPI volume files.

use std::collections::BTreeMap;

use k8rs_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};

/// Upstream's `FormatMap`: `key="value"` lines in key order, values quoted as Go's `%q`.
pub fn format_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` for the characters labels and annotations can hold.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `metadata.labels['key']` → `("metadata.labels", "key")`.
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (path, key) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, key))
}

/// Upstream's `ExtractFieldPathAsString` on a pod (the metadata fields).
pub fn extract_field_path(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((path, key)) = split_subscript(field_path) {
        return match path {
            "metadata.annotations" => Ok(meta
                .annotations
                .as_ref()
                .and_then(|m| m.get(key).cloned())
                .unwrap_or_default()),
            "metadata.labels" => Ok(meta
                .labels
                .as_ref()
                .and_then(|m| m.get(key).cloned())
                .unwrap_or_default()),
            _ => Err(format!(
                "fieldPath {field_path:?} does not support subscript"
            )),
        };
    }
    match field_path {
        "metadata.annotations" => Ok(format_map(&meta.annotations.clone().unwrap_or_default())),
        "metadata.labels" => Ok(format_map(&meta.labels.clone().unwrap_or_default())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(format!("unsupported fieldPath: {field_path}")),
    }
}

/// Node-level facts the pod fields need beyond the pod object.
#[derive(Clone, Debug, Default)]
pub struct PodRuntimeFacts {
    /// The pod's IPs (first is primary).
    pub pod_ips: Vec<String>,
    /// The node's IPs.
    pub host_ips: Vec<String>,
}

/// Upstream's `podFieldSelectorRuntimeValue`: the env var value for a `fieldRef`.
pub fn pod_field_value(
    pod: &Pod,
    facts: &PodRuntimeFacts,
    field_path: &str,
) -> Result<String, String> {
    let spec = pod.spec.as_ref();
    match field_path {
        "spec.nodeName" => Ok(spec.and_then(|s| s.node_name.clone()).unwrap_or_default()),
        "spec.serviceAccountName" => Ok(spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default()),
        "status.hostIP" => Ok(facts.host_ips.first().cloned().unwrap_or_default()),
        "status.hostIPs" => Ok(facts.host_ips.join(",")),
        "status.podIP" => Ok(facts.pod_ips.first().cloned().unwrap_or_default()),
        "status.podIPs" => Ok(facts.pod_ips.join(",")),
        _ => extract_field_path(pod, field_path),
    }
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

fn quantity(value: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Quantity {
    value
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_else(|| Quantity::parse("0").expect("zero parses"))
}

/// Upstream's `ExtractResourceValueByContainerNameAndNodeAllocatable`: a container's
/// request or limit in units of the divisor, rounded up; a missing cpu, memory or
/// ephemeral-storage limit reads as the node's allocatable amount.
pub fn resource_field_value(
    selector: &ResourceFieldSelector,
    pod: &Pod,
    container: &Container,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    let container = match selector.container_name.as_deref() {
        None | Some("") => container,
        Some(name) => {
            find_container(pod, name).ok_or_else(|| format!("container {name} not found"))?
        }
    };
    let resources = container.resources.clone().unwrap_or_default();
    let mut limits = resources.limits.unwrap_or_default();
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if !limits.contains_key(name) {
            if let Some(a) = allocatable.get(name) {
                limits.insert(
                    name.to_string(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(a.clone()),
                );
            }
        }
    }
    let requests = resources.requests.unwrap_or_default();
    let divisor = selector
        .divisor
        .as_ref()
        .and_then(|d| Quantity::parse(&d.0).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or_else(|| Quantity::parse("1").expect("one parses"));
    let (map, name) = match selector.resource.split_once('.') {
        Some(("limits", name)) => (&limits, name),
        Some(("requests", name)) => (&requests, name),
        _ => {
            return Err(format!(
                "unsupported container resource : {}",
                selector.resource
            ))
        }
    };
    let value = quantity(map.get(name));
    let ceil_div = |a: i64, b: i64| -> i64 { (a as f64 / b as f64).ceil() as i64 };
    match name {
        "cpu" => Ok(ceil_div(value.milli_value(), divisor.milli_value()).to_string()),
        "memory" | "ephemeral-storage" => Ok(ceil_div(value.value(), divisor.value()).to_string()),
        n if n.starts_with("hugepages-") => {
            Ok(ceil_div(value.value(), divisor.value()).to_string())
        }
        _ => Err(format!(
            "unsupported container resource : {}",
            selector.resource
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"b": "2", "a": "x\"y"}, "annotations": {"k": "v"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [
                {"name": "c", "resources": {"limits": {"cpu": "250m"}, "requests": {"memory": "64Mi"}}},
                {"name": "d"}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn metadata_fields_and_maps() {
        let p = pod();
        assert_eq!(
            extract_field_path(&p, "metadata.labels").unwrap(),
            "a=\"x\\\"y\"\nb=\"2\""
        );
        assert_eq!(extract_field_path(&p, "metadata.labels['b']").unwrap(), "2");
        assert_eq!(
            extract_field_path(&p, "metadata.annotations['k']").unwrap(),
            "v"
        );
        assert_eq!(extract_field_path(&p, "metadata.uid").unwrap(), "u1");
        assert!(extract_field_path(&p, "spec.nodeName").is_err());
        let facts = PodRuntimeFacts {
            pod_ips: vec!["10.0.0.2".into(), "fd00::2".into()],
            host_ips: vec!["192.168.1.1".into()],
        };
        assert_eq!(pod_field_value(&p, &facts, "spec.nodeName").unwrap(), "n1");
        assert_eq!(
            pod_field_value(&p, &facts, "status.podIPs").unwrap(),
            "10.0.0.2,fd00::2"
        );
        assert_eq!(
            pod_field_value(&p, &facts, "status.hostIP").unwrap(),
            "192.168.1.1"
        );
    }

    #[test]
    fn resources_with_divisor_and_allocatable() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let alloc: BTreeMap<String, String> = [
            ("cpu".to_string(), "4".to_string()),
            ("memory".to_string(), "8Gi".to_string()),
        ]
        .into();
        let sel = |r: &str, div: Option<&str>, cn: Option<&str>| ResourceFieldSelector {
            resource: r.into(),
            divisor: div.map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
            container_name: cn.map(str::to_string),
        };
        let v = |s| resource_field_value(&s, &p, c, &alloc).unwrap();
        assert_eq!(v(sel("limits.cpu", None, None)), "1");
        assert_eq!(v(sel("limits.cpu", Some("1m"), None)), "250");
        assert_eq!(v(sel("requests.memory", Some("1Mi"), None)), "64");
        assert_eq!(
            v(sel("limits.memory", None, None)),
            (8u64 << 30).to_string()
        );
        assert_eq!(v(sel("limits.cpu", Some("1m"), Some("d"))), "4000");
        assert_eq!(v(sel("requests.cpu", None, None)), "0");
        assert!(resource_field_value(&sel("limits.gpu", None, None), &p, c, &alloc).is_err());
    }
}
