//! Built-in admission: what upstream's admission plugins and registry hooks do to objects
//! on their way in — namespace lifecycle, Service IP and node-port allocation, pods'
//! ServiceAccounts and token volumes, legacy token Secrets, pods' graceful deletion,
//! Event TTLs.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
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
                match cache.get(&ns_res.key(None, &ns)).map(|n| n.value()) {
                    None => return Err(ApiError::not_found(ns_res.info(), &ns)),
                    Some(n) if meta::is_deleting(&n) => {
                        // Upstream names the group resource (`deployments.apps`).
                        let resource = if info.group.is_empty() {
                            info.plural.to_string()
                        } else {
                            format!("{}.{}", info.plural, info.group)
                        };
                        return Err(ApiError::forbidden(format!(
                            "{resource} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            meta::name(obj)
                        )));
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
            resolve_priority(registry, obj)?;
        }
        if info.group == "scheduling.k8s.io" && info.kind == "PriorityClass" {
            check_single_global_default(registry, res, obj)?;
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
        if info.group.is_empty() && info.kind == "Pod" {
            // Priority was resolved on create; an update that omits it keeps it (upstream's
            // Priority plugin), and validation rejects any other change.
            for field in ["priority", "preemptionPolicy"] {
                let kept = old.pointer(&format!("/spec/{field}")).cloned();
                if let (Some(kept), Some(spec)) =
                    (kept, obj.get_mut("spec").and_then(Value::as_object_mut))
                {
                    spec.entry(field).or_insert(kept);
                }
            }
        }
        if info.group == "scheduling.k8s.io" && info.kind == "PriorityClass" {
            check_single_global_default(registry, res, obj)?;
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

/// Upstream's `Priority` admission plugin for pods: `spec.priorityClassName` (or the global
/// default class) becomes `spec.priority` and `spec.preemptionPolicy`.
fn resolve_priority(registry: &Registry, pod: &mut Value) -> ApiResult<()> {
    let name = meta::name(pod).to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let classes = priority_classes(registry)?;
    let forbidden =
        |message: String| ApiError::forbidden(format!("pods {name:?} is forbidden: {message}"));
    let (class_name, priority, policy) = if class_name.is_empty() {
        // The global default with the lowest value, else priority 0.
        match classes
            .iter()
            .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
        {
            Some(c) => (
                meta::name(c).to_string(),
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(String::from),
            ),
            None => (String::new(), 0, Some("PreemptLowerPriority".to_string())),
        }
    } else {
        match classes.iter().find(|c| meta::name(c) == class_name) {
            Some(c) => (
                class_name.clone(),
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .map(String::from),
            ),
            None => {
                return Err(forbidden(format!(
                    "no PriorityClass with name {class_name} was found"
                )))
            }
        }
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(forbidden(format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name")));
        }
    }
    if !class_name.is_empty() {
        spec.insert("priorityClassName".into(), json!(class_name));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
            if given != policy {
                return Err(forbidden(format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name")));
            }
        }
        spec.insert("preemptionPolicy".into(), json!(policy));
    }
    Ok(())
}

/// Every PriorityClass (the built-in system classes are bootstrapped as objects).
fn priority_classes(registry: &Registry) -> ApiResult<Vec<Arc<Value>>> {
    let Some(res) = registry.resource_by_kind("scheduling.k8s.io", "PriorityClass") else {
        return Ok(Vec::new());
    };
    let cache = registry.resource_cache(res)?;
    Ok(cache
        .list(&res.storage_prefix, 0)
        .objects
        .iter()
        .map(|o| Arc::new(o.value()))
        .collect())
}

/// Only one PriorityClass may be the global default (upstream's Priority plugin).
fn check_single_global_default(registry: &Registry, res: &Resource, obj: &Value) -> ApiResult<()> {
    let is_default = |c: &Value| c.get("globalDefault").and_then(Value::as_bool) == Some(true);
    if !is_default(obj) {
        return Ok(());
    }
    let name = meta::name(obj);
    if let Some(existing) = priority_classes(registry)?
        .iter()
        .find(|c| is_default(c) && meta::name(c) != name)
    {
        return Err(ApiError::forbidden(format!(
            "{}.{} {name:?} is forbidden: PriorityClass {} is marked as default. Only one default can exist",
            res.info().plural,
            res.info().group,
            meta::name(existing)
        )));
    }
    Ok(())
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
    Ok(snap.objects.iter().flat_map(|s| f(&s.value())).collect())
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
