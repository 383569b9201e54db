//! Which pod goes first (upstream `pkg/kubelet/eviction/helpers.go` `rankMemoryPressure`,
//! `rankDiskPressureFunc`, `rankPIDPressure`): pods whose usage exceeds their requests,
//! then lower priority, then larger usage above requests. Critical pods (static, mirror,
//! or at system-critical priority) are never candidates.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// `scheduling.SystemCriticalPriority`: pods at or above it are never evicted.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// A pod and what it uses of the resource being reclaimed.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Its usage (working set bytes, disk bytes, inodes or processes); `None` without stats.
    pub usage: Option<i64>,
    /// Per container `(name, usage)`, for the eviction message.
    pub containers: Vec<(String, i64)>,
}

/// Upstream `IsCriticalPod`: static and mirror pods, and system-critical priorities.
pub fn is_critical(pod: &Pod) -> bool {
    crate::static_pods::is_static_pod(pod)
        || crate::static_pods::is_mirror_pod(pod)
        || priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// The pod's request of `resource` (upstream `podRequest`: the larger of the sum over
/// app containers and the largest init container).
pub fn pod_request(pod: &Pod, resource: &str) -> i64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let request = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| k8rs_api::quantity::Quantity::parse(&q.0).ok())
            .map_or(0, |q| q.value())
    };
    let containers: i64 = spec.containers.iter().map(request).sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(request)
        .max()
        .unwrap_or(0);
    containers.max(init)
}

/// Sorts `candidates` so the first is evicted first, for reclaiming `resource`
/// (`memory`, `ephemeral-storage`, `inodes`, `pids`).
pub fn rank(candidates: &mut [Candidate], resource: &str) {
    candidates.sort_by(|a, b| {
        if resource == "pids" {
            // `rankPIDPressure`: priority only.
            return priority(&a.pod).cmp(&priority(&b.pod));
        }
        exceeds_requests(a, b, resource)
            .then_with(|| priority(&a.pod).cmp(&priority(&b.pod)))
            .then_with(|| usage_above_requests(a, b, resource))
    });
}

/// Pods using more than they requested come first; without stats, no opinion.
fn exceeds_requests(a: &Candidate, b: &Candidate, resource: &str) -> Ordering {
    let (Some(ua), Some(ub)) = (a.usage, b.usage) else {
        return Ordering::Equal;
    };
    let ea = ua > pod_request(&a.pod, resource);
    let eb = ub > pod_request(&b.pod, resource);
    eb.cmp(&ea)
}

/// Larger usage above requests first; pods without stats first of all.
fn usage_above_requests(a: &Candidate, b: &Candidate, resource: &str) -> Ordering {
    match (a.usage, b.usage) {
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(ua), Some(ub)) => {
            let above_a = ua - pod_request(&a.pod, resource);
            let above_b = ub - pod_request(&b.pod, resource);
            above_b.cmp(&above_a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, request: Option<&str>, priority: i32) -> Arc<Pod> {
        let resources = match request {
            Some(r) => json!({"requests": {"memory": r}, "limits": {"memory": r}}),
            None => json!({}),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"priority": priority, "containers": [{"name": "c", "resources": resources}]},
            }))
            .unwrap(),
        )
    }

    fn candidate(pod: Arc<Pod>, usage: Option<i64>) -> Candidate {
        Candidate {
            pod,
            usage,
            containers: vec![],
        }
    }

    fn names(c: &[Candidate]) -> Vec<&str> {
        c.iter()
            .map(|c| c.pod.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn best_effort_over_its_request_goes_before_guaranteed_within() {
        let mi = 1 << 20;
        let mut c = vec![
            candidate(pod("guaranteed", Some("500Mi"), 0), Some(400 * mi)),
            candidate(pod("besteffort", None, 0), Some(10 * mi)),
            candidate(pod("burstable-over", Some("100Mi"), 0), Some(300 * mi)),
        ];
        rank(&mut c, "memory");
        // Both over their requests: the one further above goes first.
        assert_eq!(names(&c), ["burstable-over", "besteffort", "guaranteed"]);
    }

    #[test]
    fn priority_then_usage() {
        let mi = 1 << 20;
        let mut c = vec![
            candidate(pod("high", None, 1000), Some(500 * mi)),
            candidate(pod("low-small", None, 0), Some(10 * mi)),
            candidate(pod("low-big", None, 0), Some(50 * mi)),
        ];
        rank(&mut c, "memory");
        assert_eq!(names(&c), ["low-big", "low-small", "high"]);
        // PID pressure ranks by priority alone.
        let mut c = vec![
            candidate(pod("high", None, 1000), Some(1)),
            candidate(pod("low", None, -5), Some(0)),
        ];
        rank(&mut c, "pids");
        assert_eq!(names(&c), ["low", "high"]);
    }

    #[test]
    fn pods_without_stats_go_first_by_usage() {
        let mut c = vec![
            candidate(pod("measured", None, 0), Some(1 << 20)),
            candidate(pod("unmeasured", None, 0), None),
        ];
        rank(&mut c, "memory");
        assert_eq!(names(&c), ["unmeasured", "measured"]);
    }

    #[test]
    fn requests_and_critical_pods() {
        let p = pod("g", Some("1Gi"), 0);
        assert_eq!(pod_request(&p, "memory"), 1 << 30);
        assert_eq!(pod_request(&p, "cpu"), 0);
        assert!(!is_critical(&p));
        assert!(is_critical(&pod("sys", None, SYSTEM_CRITICAL_PRIORITY)));
        let mut mirror = (*p).clone();
        mirror.metadata.annotations =
            Some([("kubernetes.io/config.mirror".to_string(), "h".to_string())].into());
        assert!(is_critical(&mirror));
    }
}
