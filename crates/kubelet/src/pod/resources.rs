//! A container's requests and limits as cgroup settings (upstream
//! `kuberuntime_container_linux.go` `generateLinuxContainerResources` /
//! `calculateLinuxResources`, `cm.MilliCPUToShares`, `milliCPUToQuota`) and its OOM score
//! adjustment by QoS class (`pkg/kubelet/qos/policy.go` `GetContainerOOMScoreAdjust`).

use k8rs_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Container, Pod};

use crate::runtime::LinuxResources;

/// cgroup v1 `cpu.shares` bounds and the shares of one CPU (upstream `cm` constants).
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
/// The CFS period the kubelet always sets (100 ms, `quotaPeriod`), and the smallest quota
/// (1 ms, `minQuotaPeriod`).
pub const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1000;

/// OOM score adjustments (upstream `qos` package): Guaranteed and node-critical pods are
/// killed last, BestEffort first.
pub const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
/// BestEffort containers' adjustment.
pub const BESTEFFORT_OOM_SCORE_ADJ: i64 = 1000;
/// `system-node-critical` and above (`scheduling.SystemCriticalPriority`).
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Upstream `MilliCPUToShares`: 1 CPU = 1024 shares, at least 2.
pub fn milli_cpu_to_shares(milli_cpu: i64) -> i64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    (milli_cpu * SHARES_PER_CPU / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream `milliCPUToQuota`: 0 (unlimited) without a limit, else the limit's share of
/// `period`, at least 1 ms.
pub fn milli_cpu_to_quota(milli_cpu: i64, period: i64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    (milli_cpu * period / 1000).max(MIN_QUOTA)
}

fn quantity(
    list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
) -> Option<Quantity> {
    list?.get(name).and_then(|q| Quantity::parse(&q.0).ok())
}

/// The pod's QoS class: `status.qosClass` as the API server set it, else computed.
pub fn pod_qos_class(pod: &Pod) -> String {
    if let Some(class) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return class;
    }
    let value = serde_json::to_value(pod).unwrap_or_default();
    k8rs_api::resources::qos::pod_qos_class(&value).to_string()
}

/// The cgroup settings of `container` in `pod` on a node with `memory_capacity` bytes.
pub fn container_resources(
    pod: &Pod,
    container: &Container,
    memory_capacity: i64,
) -> LinuxResources {
    let res = container.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let cpu_request = quantity(requests, "cpu");
    let cpu_limit = quantity(limits, "cpu")
        .map(|q| q.milli_value())
        .unwrap_or(0);
    // A limit without a request means request = limit (the API server defaults this for
    // new pods; upstream repeats it for older ones).
    let shares = match cpu_request {
        None if cpu_limit != 0 => milli_cpu_to_shares(cpu_limit),
        request => milli_cpu_to_shares(request.map(|q| q.milli_value()).unwrap_or(0)),
    };
    LinuxResources {
        cpu_period: QUOTA_PERIOD,
        cpu_quota: milli_cpu_to_quota(cpu_limit, QUOTA_PERIOD),
        cpu_shares: shares,
        memory_limit_in_bytes: quantity(limits, "memory")
            .map(|q| q.value())
            .unwrap_or(0)
            .max(0),
        oom_score_adj: container_oom_score_adjust(pod, container, memory_capacity),
    }
}

fn memory_request(container: &Container) -> i64 {
    quantity(
        container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref()),
        "memory",
    )
    .map(|q| q.value())
    .unwrap_or(0)
}

/// Upstream `GetContainerOOMScoreAdjust`: -997 for Guaranteed and node-critical pods, 1000
/// for BestEffort, and for Burstable `1000 - 1000·request/capacity` kept between
/// `1000 + GUARANTEED_OOM_SCORE_ADJ` (3) and 999, so a Burstable container always ranks
/// between the other two classes. A restartable (sidecar) init container is never above
/// the pod's smallest regular container, so it is not killed before what it serves.
pub fn container_oom_score_adjust(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    let spec = pod.spec.as_ref();
    if spec
        .and_then(|s| s.priority)
        .is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY)
    {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match pod_qos_class(pod).as_str() {
        "Guaranteed" => return GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => return BESTEFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    let capacity = memory_capacity.max(1);
    let adjust = |request: i64| 1000 - (1000i128 * request as i128 / capacity as i128) as i64;
    let mut score = adjust(memory_request(container));
    let sidecar = container.restart_policy.as_deref() == Some("Always")
        && spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|ics| ics.iter().any(|c| c.name == container.name));
    if sidecar {
        if let Some(min) = spec.and_then(|s| s.containers.iter().map(memory_request).min()) {
            score = score.min(adjust(min));
        }
    }
    if score < 1000 + GUARANTEED_OOM_SCORE_ADJ {
        return 1000 + GUARANTEED_OOM_SCORE_ADJ;
    }
    if score == BESTEFFORT_OOM_SCORE_ADJ {
        return score - 1;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: i64 = 1 << 30;

    fn pod(qos: &str, containers: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "uid": "u"},
            "spec": {"containers": containers},
            "status": {"qosClass": qos},
        }))
        .unwrap()
    }

    fn first(pod: &Pod) -> &Container {
        &pod.spec.as_ref().unwrap().containers[0]
    }

    #[test]
    fn shares_and_quota_follow_upstream() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(500, QUOTA_PERIOD), 50_000);
        assert_eq!(milli_cpu_to_quota(1, QUOTA_PERIOD), 1000);
    }

    #[test]
    fn requests_and_limits_become_cgroup_settings() {
        let p = pod(
            "Burstable",
            serde_json::json!([{"name": "a", "resources": {
                "requests": {"cpu": "250m", "memory": "1Gi"},
                "limits": {"cpu": "500m", "memory": "2Gi"}}}]),
        );
        let r = container_resources(&p, first(&p), 8 * GI);
        assert_eq!(
            r,
            LinuxResources {
                cpu_period: 100_000,
                cpu_quota: 50_000,
                cpu_shares: 256,
                memory_limit_in_bytes: 2 * GI,
                oom_score_adj: 875,
            }
        );
        // A CPU limit alone: shares from the limit.
        let p = pod(
            "Burstable",
            serde_json::json!([{"name": "a", "resources": {"limits": {"cpu": "2"}}}]),
        );
        let r = container_resources(&p, first(&p), 8 * GI);
        assert_eq!((r.cpu_shares, r.cpu_quota), (2048, 200_000));
        // Nothing asked: minimal shares, no quota, no memory limit.
        let p = pod("BestEffort", serde_json::json!([{"name": "a"}]));
        let r = container_resources(&p, first(&p), 8 * GI);
        assert_eq!(
            (
                r.cpu_shares,
                r.cpu_quota,
                r.memory_limit_in_bytes,
                r.oom_score_adj
            ),
            (2, 0, 0, 1000)
        );
    }

    #[test]
    fn oom_score_adjust_by_qos_class() {
        let g = pod(
            "Guaranteed",
            serde_json::json!([{"name": "a", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}]),
        );
        assert_eq!(container_oom_score_adjust(&g, first(&g), 8 * GI), -997);
        let b = |request: &str| {
            pod(
                "Burstable",
                serde_json::json!([{"name": "a", "resources": {"requests": {"memory": request}}}]),
            )
        };
        // Nearly the whole node: floored at 3.
        let p = b("8Gi");
        assert_eq!(container_oom_score_adjust(&p, first(&p), 8 * GI), 3);
        // A tiny request computes to 1000: 999, below BestEffort.
        let p = b("1");
        assert_eq!(container_oom_score_adjust(&p, first(&p), 8 * GI), 999);
        let p = b("2Gi");
        assert_eq!(container_oom_score_adjust(&p, first(&p), 8 * GI), 750);
        // Node-critical pods rank with Guaranteed whatever their class.
        let mut p = b("1Gi");
        p.spec.as_mut().unwrap().priority = Some(2_000_001_000);
        assert_eq!(container_oom_score_adjust(&p, first(&p), 8 * GI), -997);
    }

    #[test]
    fn a_sidecar_never_ranks_above_the_smallest_regular_container() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "side", "restartPolicy": "Always"}],
                "containers": [{"name": "a", "resources": {"requests": {"memory": "4Gi"}}}]},
            "status": {"qosClass": "Burstable"},
        }))
        .unwrap();
        let side = &p.spec.as_ref().unwrap().init_containers.as_ref().unwrap()[0];
        assert_eq!(container_oom_score_adjust(&p, side, 8 * GI), 500);
    }
}
