//! The pod status the kubelet reports: upstream's `generateAPIPodStatus`,
//! `convertToAPIContainerStatuses`, `getPhase` and `status/generate.go`, as pure functions.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::actions::{is_sidecar, RuntimePod};
use crate::runtime::{ContainerState, ContainerStatus, SandboxState};

/// Conditions the kubelet owns; others (PodScheduled, DisruptionTarget, readiness gates)
/// are kept as the API has them.
const KUBELET_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

/// What the worker knows beyond the runtime's view.
pub struct StatusInputs<'a> {
    /// The runtime's view of the pod.
    pub runtime: &'a RuntimePod,
    /// Containers whose readiness probe passes (or that have none and run).
    pub ready: &'a HashSet<String>,
    /// Containers that passed their startup probe (or have none and run).
    pub started: &'a HashSet<String>,
    /// Containers in crash-loop back-off: name → message.
    pub backoff: &'a HashMap<String, String>,
    /// Containers whose last start failed: name → (reason, message), such as
    /// `ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull`, `CreateContainerError`.
    pub waiting: &'a HashMap<String, (String, String)>,
    /// The node's address.
    pub host_ip: &'a str,
    /// `containerd`, `hollow`: the scheme of container ids.
    pub runtime_name: &'a str,
    /// The pod will run nothing more.
    pub terminal: bool,
    /// Now, for new transitions.
    pub now: SystemTime,
}

/// A `Time` at second precision, as the API stores it.
pub fn time(at: SystemTime) -> Time {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn nanos_time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| time(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(nanos as u64)))
}

fn terminated(st: &ContainerStatus, runtime_name: &str) -> ContainerStateTerminated {
    let reason = if !st.reason.is_empty() {
        st.reason.clone()
    } else if st.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: st.exit_code,
        reason: Some(reason),
        message: (!st.message.is_empty()).then(|| st.message.clone()),
        started_at: nanos_time(st.started_at),
        finished_at: nanos_time(st.finished_at),
        container_id: Some(format!("{runtime_name}://{}", st.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    }
}

/// One container's API status.
fn container_status(
    c: &Container,
    inputs: &StatusInputs,
    default_waiting: &str,
) -> ApiContainerStatus {
    let latest = inputs.runtime.latest.get(&c.name);
    let previous = inputs.runtime.previous.get(&c.name);
    let mut status = ApiContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let failed_start = inputs.waiting.get(&c.name);
    let Some(st) = latest else {
        status.state = Some(match failed_start {
            Some((reason, message)) => waiting(reason, Some(message.clone())),
            None => waiting(default_waiting, None),
        });
        return status;
    };
    status.image_id = st.image_ref.clone();
    status.container_id = Some(format!("{}://{}", inputs.runtime_name, st.id));
    status.restart_count = st.attempt as i32;
    if let Some(prev) = previous {
        status.last_state = Some(ApiState {
            terminated: Some(terminated(prev, inputs.runtime_name)),
            ..Default::default()
        });
    }
    match st.state {
        ContainerState::Running => {
            status.state = Some(ApiState {
                running: Some(ContainerStateRunning {
                    started_at: nanos_time(st.started_at),
                }),
                ..Default::default()
            });
            status.ready = inputs.ready.contains(&c.name);
            status.started = Some(inputs.started.contains(&c.name));
        }
        ContainerState::Exited => {
            if let Some((reason, message)) = failed_start {
                // Its restart failed (an image pull, say): waiting, the exit as last state.
                status.state = Some(waiting(reason, Some(message.clone())));
                status.last_state = Some(ApiState {
                    terminated: Some(terminated(st, inputs.runtime_name)),
                    ..Default::default()
                });
            } else if let Some(message) = inputs.backoff.get(&c.name) {
                // Waiting to restart: the exit becomes the last state.
                status.state = Some(waiting("CrashLoopBackOff", Some(message.clone())));
                status.last_state = Some(ApiState {
                    terminated: Some(terminated(st, inputs.runtime_name)),
                    ..Default::default()
                });
            } else {
                status.state = Some(ApiState {
                    terminated: Some(terminated(st, inputs.runtime_name)),
                    ..Default::default()
                });
            }
        }
        ContainerState::Created | ContainerState::Unknown => {
            status.state = Some(match failed_start {
                Some((reason, message)) => waiting(reason, Some(message.clone())),
                None => waiting("ContainerCreating", None),
            });
        }
    }
    status
}

/// Upstream `getPhase`.
fn phase(
    pod: &Pod,
    init: &[ApiContainerStatus],
    app: &[ApiContainerStatus],
    terminal: bool,
) -> &'static str {
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let init_specs = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let (mut pending_init, mut failed_init) = (0, 0);
    for (c, st) in init_specs.iter().zip(init) {
        let state = st.state.clone().unwrap_or_default();
        if is_sidecar(c) {
            if st.started != Some(true) {
                pending_init += 1;
            }
            continue;
        }
        if state.running.is_some() {
            pending_init += 1;
        } else if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if let Some(last) = st.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            if last.exit_code != 0 {
                failed_init += 1;
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for st in app {
        let state = st.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if st
                .last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some()
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || (failed_init > 0 && !terminal) {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: kind.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

/// The complete status the kubelet wants the API to hold for `pod`.
pub fn compute_pod_status(pod: &Pod, inputs: &StatusInputs) -> PodStatus {
    let empty = Default::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let old = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.as_deref().unwrap_or_default();

    // Init statuses first: app containers wait with PodInitializing until init is done.
    let init: Vec<ApiContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(c, inputs, "PodInitializing"))
        .collect();
    let incomplete_init: Vec<&str> = init_specs
        .iter()
        .zip(&init)
        .filter(|(c, st)| {
            let state = st.state.clone().unwrap_or_default();
            if is_sidecar(c) {
                st.started != Some(true)
            } else {
                state.terminated.as_ref().is_none_or(|t| t.exit_code != 0)
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    let initialized = incomplete_init.is_empty();
    let app_default = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app: Vec<ApiContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, inputs, app_default))
        .collect();
    let phase = phase(pod, &init, &app, inputs.terminal);

    let sandbox_ready = inputs
        .runtime
        .sandbox
        .as_ref()
        .is_some_and(|s| s.state == SandboxState::Ready);
    let mut unready: Vec<&str> = init_specs
        .iter()
        .zip(&init)
        .filter(|(c, st)| is_sidecar(c) && !st.ready)
        .map(|(c, _)| c.name.as_str())
        .collect();
    unready.extend(app.iter().filter(|st| !st.ready).map(|st| st.name.as_str()));

    let completed = phase == "Succeeded" || phase == "Failed";
    let mut conditions = vec![condition(
        "PodReadyToStartContainers",
        sandbox_ready,
        None,
        None,
    )];
    conditions.push(if completed && phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None)
    } else if initialized {
        condition("Initialized", true, None, None)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete_init.join(" ")
            )),
        )
    });
    let ready = |kind: &str| {
        if completed {
            condition(kind, false, Some("PodCompleted"), None)
        } else if unready.is_empty() {
            condition(kind, true, None, None)
        } else {
            condition(
                kind,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        }
    };
    conditions.push(ready("ContainersReady"));
    conditions.push(ready("Ready"));
    // Keep others' conditions, and the transition time of unchanged ones.
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let now = time(inputs.now);
    for c in &mut conditions {
        let previous = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match previous {
            Some(o) if o.status == c.status => o.last_transition_time.clone(),
            _ => Some(now.clone()),
        };
        c.last_probe_time = None;
    }
    let mut all = vec![];
    let mut scheduled = false;
    for o in &old_conditions {
        if !KUBELET_CONDITIONS.contains(&o.type_.as_str()) {
            scheduled |= o.type_ == "PodScheduled";
            all.push(o.clone());
        }
    }
    if !scheduled {
        let mut c = condition("PodScheduled", true, None, None);
        c.last_transition_time = Some(now.clone());
        all.insert(0, c);
    }
    // Upstream's order: PodReadyToStartContainers, Initialized, Ready, ContainersReady,
    // PodScheduled; ours groups the kubelet's four after the scheduler's.
    all.extend(conditions);

    let pod_ips: Vec<String> = inputs
        .runtime
        .sandbox
        .as_ref()
        .filter(|_| sandbox_ready)
        .map(|s| s.ips.clone())
        .unwrap_or_default();
    let host_network = spec.host_network == Some(true);
    let pod_ips = if host_network && sandbox_ready {
        vec![inputs.host_ip.to_string()]
    } else if pod_ips.is_empty() {
        // Keep the address once the sandbox is gone (upstream reports the last one).
        old.pod_ips
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.ip)
            .collect()
    } else {
        pod_ips
    };

    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(all),
        host_ip: Some(inputs.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: inputs.host_ip.to_string(),
        }]),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or(Some(now)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(app),
        qos_class: old.qos_class.clone(),
        nominated_node_name: old.nominated_node_name.clone(),
        message: old.message.clone(),
        reason: old.reason.clone(),
        ephemeral_container_statuses: old.ephemeral_container_statuses.clone(),
        resize: old.resize.clone(),
        resource_claim_statuses: old.resource_claim_statuses.clone(),
        observed_generation: old.observed_generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{PodIdentity, SandboxStatus};
    use std::collections::BTreeMap;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": json,
            "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn rt(state: Option<ContainerState>, exit_code: i32) -> RuntimePod {
        let mut r = RuntimePod::new(
            Some(SandboxStatus {
                id: "s".into(),
                identity: PodIdentity::default(),
                state: SandboxState::Ready,
                created_at: 1,
                ips: vec!["10.42.1.5".into()],
                labels: BTreeMap::new(),
            }),
            vec![],
        );
        if let Some(state) = state {
            r.latest.insert(
                "a".into(),
                ContainerStatus {
                    id: "cid".into(),
                    sandbox_id: "s".into(),
                    name: "a".into(),
                    attempt: 0,
                    state,
                    created_at: 1,
                    started_at: 1_700_000_000_000_000_000,
                    finished_at: if state == ContainerState::Exited {
                        1_700_000_010_000_000_000
                    } else {
                        0
                    },
                    exit_code,
                    image: "busybox".into(),
                    image_ref: "sha256:1".into(),
                    reason: String::new(),
                    message: String::new(),
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                },
            );
        }
        r
    }

    fn status(
        p: &Pod,
        r: &RuntimePod,
        ready: &[&str],
        backoff: &[(&str, &str)],
        terminal: bool,
    ) -> serde_json::Value {
        let ready: HashSet<String> = ready.iter().map(|s| s.to_string()).collect();
        let backoff: HashMap<String, String> = backoff
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let inputs = StatusInputs {
            runtime: r,
            ready: &ready,
            started: &ready,
            backoff: &backoff,
            waiting: &HashMap::new(),
            host_ip: "127.0.0.1",
            runtime_name: "hollow",
            terminal,
            now: SystemTime::now(),
        };
        serde_json::to_value(compute_pod_status(p, &inputs)).unwrap()
    }

    fn cond(s: &serde_json::Value, kind: &str) -> (String, String) {
        let c = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap();
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap_or("").into(),
        )
    }

    #[test]
    fn a_running_ready_pod() {
        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "busybox"}]}));
        let s = status(
            &p,
            &rt(Some(ContainerState::Running), 0),
            &["a"],
            &[],
            false,
        );
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.1.5");
        assert_eq!(s["podIPs"][0]["ip"], "10.42.1.5");
        assert_eq!(s["hostIP"], "127.0.0.1");
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["containerStatuses"][0]["containerID"], "hollow://cid");
        assert!(s["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        for kind in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "Ready",
            "PodScheduled",
        ] {
            assert_eq!(cond(&s, kind).0, "True", "{kind}");
        }
        // The scheduler's condition keeps its time.
        let scheduled = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "PodScheduled")
            .unwrap();
        assert_eq!(scheduled["lastTransitionTime"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn waiting_reasons_and_not_ready_conditions() {
        let p = pod(
            serde_json::json!({"initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "a", "image": "busybox"}]}),
        );
        let s = status(&p, &rt(None, 0), &[], &[], false);
        assert_eq!(s["phase"], "Pending");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert_eq!(
            cond(&s, "Initialized"),
            ("False".into(), "ContainersNotInitialized".into())
        );
        assert_eq!(
            cond(&s, "Ready"),
            ("False".into(), "ContainersNotReady".into())
        );
        let msg = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Initialized")
            .unwrap()["message"]
            .clone();
        assert_eq!(msg, "containers with incomplete status: [i]");

        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "busybox"}]}));
        let s = status(&p, &rt(None, 0), &[], &[], false);
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
        let s = status(&p, &rt(Some(ContainerState::Running), 0), &[], &[], false);
        assert_eq!(
            cond(&s, "ContainersReady"),
            ("False".into(), "ContainersNotReady".into())
        );
    }

    #[test]
    fn config_errors_wait_in_create_container_config_error() {
        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "busybox"}]}));
        let errors: HashMap<String, (String, String)> = [(
            "a".to_string(),
            (
                "CreateContainerConfigError".to_string(),
                "configmap \"x\" not found".to_string(),
            ),
        )]
        .into();
        let none = HashSet::new();
        for (r, phase) in [
            (rt(None, 0), "Pending"),
            // A restart that cannot be configured: Running, as for a crash loop.
            (rt(Some(ContainerState::Exited), 1), "Running"),
        ] {
            let inputs = StatusInputs {
                runtime: &r,
                ready: &none,
                started: &none,
                backoff: &HashMap::new(),
                waiting: &errors,
                host_ip: "127.0.0.1",
                runtime_name: "hollow",
                terminal: false,
                now: SystemTime::now(),
            };
            let s = serde_json::to_value(compute_pod_status(&p, &inputs)).unwrap();
            let waiting = &s["containerStatuses"][0]["state"]["waiting"];
            assert_eq!(waiting["reason"], "CreateContainerConfigError");
            assert_eq!(waiting["message"], "configmap \"x\" not found");
            assert_eq!(s["phase"], phase);
        }
    }

    #[test]
    fn crash_loop_and_completion() {
        let p = pod(serde_json::json!({"containers": [{"name": "a", "image": "busybox"}]}));
        let msg = "back-off 10s restarting failed container=a pod=p_default(u)";
        let s = status(
            &p,
            &rt(Some(ContainerState::Exited), 1),
            &[],
            &[("a", msg)],
            false,
        );
        assert_eq!(s["phase"], "Running");
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["message"],
            msg
        );
        assert_eq!(
            s["containerStatuses"][0]["lastState"]["terminated"]["reason"],
            "Error"
        );
        assert_eq!(
            s["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
            1
        );

        let p = pod(
            serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "busybox"}]}),
        );
        let s = status(&p, &rt(Some(ContainerState::Exited), 0), &[], &[], true);
        assert_eq!(s["phase"], "Succeeded");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(cond(&s, "Ready"), ("False".into(), "PodCompleted".into()));
        let s = status(&p, &rt(Some(ContainerState::Exited), 2), &[], &[], true);
        assert_eq!(s["phase"], "Failed");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );
    }
}
