//! Resource arithmetic: node allocatable and pod requests as integers (milli-CPU, bytes,
//! counts), as upstream's `framework.Resource` and `resourcehelper.PodRequests`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Requests assumed for a container that sets none, so that such pods still spread
/// (upstream's `DefaultMilliCPURequest` and `DefaultMemoryRequest`, used for scoring only).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// 200 MiB.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource a scheduler compares.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Resource {
    /// CPU in thousandths of a core.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// For allocatable: how many pods the node takes.
    pub allowed_pod_number: i64,
    /// Extended resources (`example.com/gpu`), hugepages and the like, as integers.
    pub scalar: BTreeMap<String, i64>,
}

/// Parses a quantity the way upstream's `Value()`/`MilliValue()` read it; unparsable
/// values (rejected by validation) count as zero.
fn quantity(q: &Quantity, milli: bool) -> i64 {
    match k8rs_api::quantity::Quantity::parse(&q.0) {
        Ok(q) if milli => q.milli_value(),
        Ok(q) => q.value(),
        Err(_) => 0,
    }
}

impl Resource {
    /// A resource list (`allocatable`, `requests`) as integers.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => r.milli_cpu += quantity(q, true),
                "memory" => r.memory += quantity(q, false),
                "ephemeral-storage" => r.ephemeral_storage += quantity(q, false),
                "pods" => r.allowed_pod_number += quantity(q, false),
                other if is_scalar(other) => {
                    *r.scalar.entry(other.to_string()).or_default() += quantity(q, false)
                }
                _ => {}
            }
        }
        r
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount of `self` to `other`'s where that is larger.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The amount of the named resource.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// Whether every amount is zero.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`domain/name` outside `kubernetes.io`), hugepages and attachable
/// volumes are compared as plain integers.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = Resource::from_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    if non_zero {
        let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        if !requests.is_some_and(|r| r.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !requests.is_some_and(|r| r.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// What a pod asks of its node, as upstream's `PodRequests`: the sum of its containers,
/// restartable init containers (sidecars) added since they keep running, each ordinary
/// init container counted at its peak (its own request plus the sidecars started before
/// it), the larger of the two, plus the pod overhead. `non_zero` substitutes the default
/// requests for unset CPU and memory (scoring only).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_peak.set_max(&r);
    }
    reqs.set_max(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs.add(&Resource::from_list(Some(overhead)));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        json!({"name": name, "image": "i", "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn containers_add_up_and_init_containers_take_the_max() {
        let p = pod(json!({
            "containers": [c("a", "100m", "1Gi"), c("b", "200m", "1Gi")],
            "initContainers": [c("i1", "500m", "100Mi"), c("i2", "100m", "3Gi")],
            "overhead": {"cpu": "10m"},
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 510);
        assert_eq!(r.memory, 3 << 30);
    }

    #[test]
    fn sidecars_run_beside_the_containers_and_later_init_containers() {
        let mut sidecar = c("s", "200m", "0");
        sidecar["restartPolicy"] = json!("Always");
        let p = pod(json!({
            "containers": [c("a", "100m", "0")],
            "initContainers": [sidecar, c("i", "500m", "0")],
        }));
        // Sidecar + container = 300m; init container while the sidecar runs = 700m.
        assert_eq!(pod_requests(&p, false).milli_cpu, 700);
    }

    #[test]
    fn unset_requests_get_defaults_for_scoring_only() {
        let p = pod(json!({"containers": [{"name": "a", "image": "i"}]}));
        assert_eq!(pod_requests(&p, false), Resource::default());
        let nz = pod_requests(&p, true);
        assert_eq!((nz.milli_cpu, nz.memory), (100, 200 << 20));
    }

    #[test]
    fn extended_resources_are_scalars() {
        let p = pod(json!({"containers": [{"name": "a", "image": "i",
            "resources": {"requests": {"example.com/gpu": "2"}}}]}));
        assert_eq!(pod_requests(&p, false).get("example.com/gpu"), 2);
    }
}
