//! Built-in admission: what upstream's admission plugins and registry hooks do to objects
//! on their way in — namespace lifecycle, Service IP and node-port allocation, pods'
//! ServiceAccounts and token volumes, legacy token Secrets, pods' graceful deletion,
//! Event TTLs.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::meta;
use super::{Registry, Resource};
use crate::status::{ApiError, ApiResult};

/// The Service cluster-IP range (k3s's default), and the node-port range.
const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 43, 0, 0), 16);
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;
/// Events expire an hour after their last write (upstream `--event-ttl`).
const EVENT_TTL: Duration = Duration::from_secs(3600);

/// State shared by admission steps (allocations are serialised so two creates never get
/// the same address).
#[derive(Default)]
pub(crate) struct Admission {
    allocation: Mutex<()>,
}

/// The first address of the Service range, reserved for the `kubernetes` Service.
pub fn kubernetes_service_ip() -> Ipv4Addr {
    let base = u32::from(SERVICE_CIDR.0);
    Ipv4Addr::from(base + 1)
}

impl Admission {
    /// Checks and mutations on create, after defaulting and before validation.
    pub(crate) async fn admit_create(
        &self,
        registry: &Registry,
        res: &Resource,
        obj: &mut Value,
    ) -> ApiResult<()> {
        let info = res.info();
        if info.namespaced {
            let ns = meta::namespace(obj).to_string();
            if let Some(ns_res) = registry.resource_by_kind("", "Namespace") {
                let cache = registry.resource_cache(ns_res)?;
                match cache.get(&ns_res.key(None, &ns)) {
                    None => return Err(ApiError::not_found(ns_res.info(), &ns)),
                    Some(n) if meta::is_deleting(&n) => {
                        return Err(ApiError::forbidden(format!(
                            "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            info.plural,
                            meta::name(obj)
                        )))
                    }
                    _ => {}
                }
            }
        }
        if info.group.is_empty() && info.kind == "Service" {
            let _guard = self.allocation.lock().await;
            allocate_service(registry, res, obj, None)?;
        }
        if info.group.is_empty() && info.kind == "Pod" {
            registry.admit_pod_service_account(obj).await?;
            default_toleration_seconds(obj);
        }
        if info.group.is_empty() && info.kind == "Secret" {
            registry.fill_legacy_token_secret(obj).await?;
        }
        Ok(())
    }

    /// Checks and mutations on update.
    pub(crate) fn admit_update(
        &self,
        registry: &Registry,
        res: &Resource,
        obj: &mut Value,
        old: &Value,
    ) -> ApiResult<()> {
        let info = res.info();
        if info.group.is_empty() && info.kind == "Service" {
            allocate_service(registry, res, obj, Some(old))?;
        }
        Ok(())
    }

    /// The lease a new object gets in the store (Events expire).
    pub(crate) fn ttl(&self, res: &Resource) -> Option<Duration> {
        let info = res.info();
        (info.kind == "Event" && (info.group.is_empty() || info.group == "events.k8s.io"))
            .then_some(EVENT_TTL)
    }

    /// For pods bound to a node: the grace period the kubelet gets before the object goes
    /// (`None` = delete now), as upstream's pod `CheckGracefulDelete`.
    pub(crate) fn graceful_deletion(
        &self,
        res: &Resource,
        obj: &Value,
        requested: Option<i64>,
    ) -> Option<i64> {
        let info = res.info();
        if !(info.group.is_empty() && info.kind == "Pod") {
            return None;
        }
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound || phase == "Succeeded" || phase == "Failed" {
            return None;
        }
        let grace = requested
            .or_else(|| {
                obj.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        (grace > 0).then_some(grace)
    }
}

/// Upstream's `DefaultTolerationSeconds` admission plugin: a new pod that does not
/// tolerate the `not-ready` or `unreachable` NoExecute taints gets tolerations for them
/// of 300 s, so taint-based eviction waits five minutes before evicting it.
fn default_toleration_seconds(pod: &mut Value) {
    const DEFAULT_SECONDS: i64 = 300;
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let field = |name: &str| t.get(name).and_then(Value::as_str).unwrap_or("");
            (field("key") == key || field("key").is_empty())
                && (field("effect") == "NoExecute" || field("effect").is_empty())
        })
    };
    let mut added = tolerations.clone();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(key) {
            added.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS,
            }));
        }
    }
    if added.len() != tolerations.len() {
        spec.insert("tolerations".into(), Value::Array(added));
    }
}

/// Give a Service its cluster IP and node ports (or keep the ones it had).
fn allocate_service(
    registry: &Registry,
    res: &Resource,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    let type_ = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if type_ == "ExternalName" {
        return Ok(());
    }
    let spec = &mut obj["spec"];
    let old_ip = old
        .and_then(|o| o.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .map(String::from);
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ip = if requested.is_empty() {
        match old_ip {
            Some(ip) => ip,
            None => {
                let used = used_service_values(registry, res, |s| {
                    s.pointer("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .into_iter()
                        .collect()
                })?;
                allocate_ip(&used).ok_or_else(|| {
                    ApiError::internal("failed to allocate a serviceIP: range is full")
                })?
            }
        }
    } else {
        requested
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if let Some(s) = spec.as_object_mut() {
        s.entry("ipFamilies").or_insert(json!(["IPv4"]));
        s.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
    }
    if type_ == "NodePort" || type_ == "LoadBalancer" {
        let old_ports: Vec<Value> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut used: HashSet<String> = used_service_values(registry, res, |s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                        .map(|n| n.to_string())
                        .collect()
                })
                .unwrap_or_default()
        })?;
        if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut() {
                if p.get("nodePort").and_then(Value::as_i64).is_some() {
                    continue;
                }
                let kept = old_ports
                    .iter()
                    .find(|o| {
                        o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol")
                    })
                    .and_then(|o| o.get("nodePort").and_then(Value::as_i64));
                let port = match kept {
                    Some(n) => n,
                    None => {
                        let start = NODE_PORTS.start()
                            + rand::random::<i64>()
                                .rem_euclid(NODE_PORTS.end() - NODE_PORTS.start());
                        let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
                        (0..span)
                            .map(|i| NODE_PORTS.start() + (start - NODE_PORTS.start() + i) % span)
                            .find(|n| !used.contains(&n.to_string()))
                            .ok_or_else(|| {
                                ApiError::internal("failed to allocate a nodePort: range is full")
                            })?
                    }
                };
                used.insert(port.to_string());
                p["nodePort"] = json!(port);
            }
        }
    }
    Ok(())
}

fn used_service_values(
    registry: &Registry,
    res: &Resource,
    f: impl Fn(&Value) -> Vec<String>,
) -> ApiResult<HashSet<String>> {
    let cache = registry.resource_cache(res)?;
    let snap = cache.list(&res.storage_prefix, 0);
    Ok(snap.objects.iter().flat_map(|s| f(s)).collect())
}

fn allocate_ip(used: &HashSet<String>) -> Option<String> {
    let base = u32::from(SERVICE_CIDR.0);
    let size = 1u32 << (32 - SERVICE_CIDR.1);
    // Skip the network address and the `kubernetes` Service's address.
    let offset = 2 + rand::random::<u32>() % (size - 3);
    (0..size - 3)
        .map(|i| 2 + (offset - 2 + i) % (size - 3))
        .map(|o| Ipv4Addr::from(base + o).to_string())
        .find(|ip| !used.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toleration_seconds_adds_what_is_missing() {
        let mut pod = json!({"spec": {"containers": []}});
        default_toleration_seconds(&mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2});
        let mut pod = json!({"spec": {"tolerations": [own.clone()]}});
        default_toleration_seconds(&mut pod);
        let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0], own, "the pod's own toleration is kept");
        assert_eq!(tolerations[1]["key"], "node.kubernetes.io/not-ready");
        // Tolerating everything (empty key, any effect) needs nothing added.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        default_toleration_seconds(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
