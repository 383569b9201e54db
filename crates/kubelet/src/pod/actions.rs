//! What to do next for one pod, given what the runtime reports: upstream's
//! `kuberuntime_manager.go` `computePodActions`, a pure function so it can be tested
//! decision by decision.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::runtime::{ContainerState, ContainerStatus, SandboxState, SandboxStatus};

/// Crash-loop back-off: 10 s doubling to 5 min (upstream `backOffPeriod`, `MaxContainerBackOff`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
/// The longest crash-loop back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Per-container restart back-off, as client-go's `flowcontrol.Backoff` used by the kubelet.
#[derive(Default, Debug)]
pub struct Backoff {
    entries: HashMap<String, (Duration, SystemTime)>,
}

impl Backoff {
    /// Whether a container that finished at `finished` must still wait (and how long the
    /// current back-off is), as `IsInBackOffSince`.
    pub fn in_backoff(&self, key: &str, finished: SystemTime, now: SystemTime) -> Option<Duration> {
        let (delay, last) = self.entries.get(key)?;
        if now.duration_since(*last).unwrap_or_default() > 2 * MAX_BACKOFF {
            return None;
        }
        (now.duration_since(finished).unwrap_or_default() < *delay).then_some(*delay)
    }

    /// The current back-off and when it was last armed, if `now` is still within it
    /// (`IsInBackOffSinceUpdate`, used for image pulls).
    pub fn in_backoff_since_update(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Option<(Duration, SystemTime)> {
        let (delay, last) = self.entries.get(key)?;
        (now.duration_since(*last).unwrap_or_default() < *delay).then_some((*delay, *last))
    }

    /// Records a restart of a container that finished at `finished`, as `Next`: the first
    /// restart (or one after a long healthy run) is immediate and arms 10 s; each later one
    /// doubles the wait up to 5 min.
    pub fn next(&mut self, key: &str, finished: SystemTime) {
        let entry = self
            .entries
            .entry(key.to_string())
            .or_insert((Duration::ZERO, finished));
        let expired = finished.duration_since(entry.1).unwrap_or_default() > 2 * MAX_BACKOFF;
        entry.0 = if entry.0.is_zero() || expired {
            INITIAL_BACKOFF
        } else {
            (entry.0 * 2).min(MAX_BACKOFF)
        };
        entry.1 = finished;
    }
}

/// The runtime's view of one pod: its sandbox and, per container name, the newest
/// container and the one before it (for `lastState`).
#[derive(Default, Debug, Clone)]
pub struct RuntimePod {
    /// The newest sandbox.
    pub sandbox: Option<SandboxStatus>,
    /// Newest container per name.
    pub latest: HashMap<String, ContainerStatus>,
    /// The previous attempt per name, if still kept.
    pub previous: HashMap<String, ContainerStatus>,
}

impl RuntimePod {
    /// Groups a sandbox's containers by name, newest attempt first.
    pub fn new(sandbox: Option<SandboxStatus>, containers: Vec<ContainerStatus>) -> Self {
        let mut by_name: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
        for c in containers {
            by_name.entry(c.name.clone()).or_default().push(c);
        }
        let mut pod = RuntimePod {
            sandbox,
            ..Default::default()
        };
        for (name, mut list) in by_name {
            list.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
            let mut list = list.into_iter();
            if let Some(latest) = list.next() {
                pod.latest.insert(name.clone(), latest);
            }
            if let Some(previous) = list.next() {
                pod.previous.insert(name, previous);
            }
        }
        pod
    }
}

/// Why a running container is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillReason {
    /// Its liveness (or startup) probe failed.
    Unhealthy(String),
}

/// A container to create and start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAction {
    /// Container name.
    pub name: String,
    /// Whether it is an init container (regular or sidecar).
    pub init: bool,
    /// The attempt number the new container gets (= its restart count).
    pub attempt: u32,
    /// `finishedAt` of the container it replaces, for the back-off bookkeeping.
    pub replaces_finished: Option<SystemTime>,
}

/// The decision for one sync.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodActions {
    /// Stop every container and the sandbox (before re-creating it, or because the pod
    /// has finished).
    pub kill_pod: bool,
    /// Create a new sandbox (then start containers on the next pass).
    pub create_sandbox: bool,
    /// Containers to start, in order.
    pub start: Vec<StartAction>,
    /// Running containers to stop: (container id, name, reason).
    pub kill: Vec<(String, String, KillReason)>,
    /// Containers waiting out a crash-loop back-off: name → (back-off, when it ends).
    pub backoff: HashMap<String, (Duration, SystemTime)>,
    /// Nothing will ever run again in this pod (its phase is Succeeded or Failed).
    pub terminal: bool,
}

/// The restart policy that applies to a container: a sidecar's own, else the pod's.
fn restarts(spec: &PodSpec, container: &Container, exit_code: i32) -> bool {
    let policy = container
        .restart_policy
        .as_deref()
        .or(spec.restart_policy.as_deref())
        .unwrap_or("Always");
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

/// Whether an init container is a restartable sidecar (`restartPolicy: Always`).
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

fn nanos_to_time(nanos: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64)
}

/// The back-off key of a container (upstream: pod uid, container name and spec hash).
pub fn backoff_key(pod_uid: &str, name: &str) -> String {
    format!("{pod_uid}/{name}")
}

/// Decides the next steps for a pod that is not being deleted.
/// `unhealthy` names running containers whose liveness/startup probe has failed;
/// `started` tells whether a running container has passed its startup probe.
pub fn compute_pod_actions(
    pod_uid: &str,
    spec: &PodSpec,
    runtime: &RuntimePod,
    unhealthy: &HashSet<String>,
    started: &dyn Fn(&str) -> bool,
    backoff: &Backoff,
    now: SystemTime,
) -> PodActions {
    let mut actions = PodActions::default();
    let sandbox_ready = runtime
        .sandbox
        .as_ref()
        .is_some_and(|s| s.state == SandboxState::Ready);
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");

    if !sandbox_ready {
        // A pod that must not restart and whose containers already ran stays as it is
        // (upstream: "should not restart the pod, just return").
        if runtime.sandbox.is_some() && policy == "Never" && !runtime.latest.is_empty() {
            actions.terminal = true;
            return actions;
        }
        actions.kill_pod = runtime.sandbox.is_some();
        actions.create_sandbox = true;
        return actions;
    }

    // The restart decision for an exited container, honouring the back-off.
    let restart = |actions: &mut PodActions, c: &Container, st: &ContainerStatus, init: bool| {
        let finished = nanos_to_time(st.finished_at);
        let key = backoff_key(pod_uid, &c.name);
        if let Some(delay) = backoff.in_backoff(&key, finished, now) {
            actions
                .backoff
                .insert(c.name.clone(), (delay, finished + delay));
        } else {
            actions.start.push(StartAction {
                name: c.name.clone(),
                init,
                attempt: st.attempt + 1,
                replaces_finished: Some(finished),
            });
        }
    };

    // Init containers, in order: regular ones must each succeed before the next starts;
    // sidecars must have started (and keep running) before the next one.
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    let mut initialized = true;
    for c in init_containers {
        let status = runtime.latest.get(&c.name);
        if is_sidecar(c) {
            match status {
                None => {
                    actions.start.push(StartAction {
                        name: c.name.clone(),
                        init: true,
                        attempt: 0,
                        replaces_finished: None,
                    });
                    initialized = false;
                }
                Some(st) if st.state == ContainerState::Running => {
                    if unhealthy.contains(&c.name) {
                        actions.kill.push((
                            st.id.clone(),
                            c.name.clone(),
                            KillReason::Unhealthy(c.name.clone()),
                        ));
                    }
                    if !started(&c.name) {
                        initialized = false;
                    }
                }
                Some(st) if st.state == ContainerState::Exited => {
                    restart(&mut actions, c, st, true);
                    if st.started_at == 0 || !started(&c.name) {
                        initialized = false;
                    }
                }
                Some(st) => {
                    if st.state == ContainerState::Created {
                        initialized = false;
                    }
                }
            }
            if !initialized {
                break;
            }
            continue;
        }
        match status {
            None => {
                actions.start.push(StartAction {
                    name: c.name.clone(),
                    init: true,
                    attempt: 0,
                    replaces_finished: None,
                });
                initialized = false;
            }
            Some(st) if st.state == ContainerState::Exited && st.exit_code == 0 => continue,
            Some(st) if st.state == ContainerState::Exited => {
                if policy == "Never" {
                    // A failed init container fails the whole pod.
                    actions.kill_pod = true;
                    actions.terminal = true;
                    return actions;
                }
                restart(&mut actions, c, st, true);
                initialized = false;
            }
            Some(_) => initialized = false,
        }
        break;
    }
    if !initialized {
        return actions;
    }

    // App containers.
    let mut all_done = true;
    for c in &spec.containers {
        match runtime.latest.get(&c.name) {
            None => {
                all_done = false;
                actions.start.push(StartAction {
                    name: c.name.clone(),
                    init: false,
                    attempt: 0,
                    replaces_finished: None,
                });
            }
            Some(st) if st.state == ContainerState::Running => {
                all_done = false;
                if unhealthy.contains(&c.name) {
                    actions.kill.push((
                        st.id.clone(),
                        c.name.clone(),
                        KillReason::Unhealthy(c.name.clone()),
                    ));
                }
            }
            Some(st) if st.state == ContainerState::Exited => {
                if restarts(spec, c, st.exit_code) {
                    all_done = false;
                    restart(&mut actions, c, st, false);
                }
            }
            Some(_) => all_done = false,
        }
    }
    if all_done && !spec.containers.is_empty() {
        // Every regular container finished for good: sidecars stop, the sandbox goes.
        actions.terminal = true;
        actions.kill_pod = true;
        actions.start.clear();
        actions.backoff.clear();
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PodIdentity;
    use std::collections::BTreeMap;

    fn spec(json: serde_json::Value) -> PodSpec {
        serde_json::from_value(json).unwrap()
    }

    fn sandbox() -> SandboxStatus {
        SandboxStatus {
            id: "s".into(),
            identity: PodIdentity::default(),
            state: SandboxState::Ready,
            created_at: 1,
            ips: vec!["10.42.0.2".into()],
            labels: BTreeMap::new(),
        }
    }

    fn container(
        name: &str,
        state: ContainerState,
        exit_code: i32,
        attempt: u32,
    ) -> ContainerStatus {
        ContainerStatus {
            id: format!("{name}-{attempt}"),
            sandbox_id: "s".into(),
            name: name.into(),
            attempt,
            state,
            created_at: 1,
            started_at: 1_000_000_000,
            finished_at: if state == ContainerState::Exited {
                2_000_000_000
            } else {
                0
            },
            exit_code,
            image: "busybox".into(),
            image_ref: String::new(),
            reason: String::new(),
            message: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    fn decide(spec: &PodSpec, pod: &RuntimePod, backoff: &Backoff, now_secs: u64) -> PodActions {
        compute_pod_actions(
            "uid",
            spec,
            pod,
            &HashSet::new(),
            &|_| true,
            backoff,
            SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs),
        )
    }

    fn names(actions: &PodActions) -> Vec<&str> {
        actions.start.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_first() {
        let s = spec(serde_json::json!({"containers": [{"name": "a"}]}));
        let a = decide(&s, &RuntimePod::default(), &Backoff::default(), 10);
        assert!(a.create_sandbox && !a.kill_pod && a.start.is_empty());
    }

    #[test]
    fn init_containers_run_one_at_a_time_before_the_app() {
        let s = spec(serde_json::json!({
            "initContainers": [{"name": "i1"}, {"name": "i2"}],
            "containers": [{"name": "a"}, {"name": "b"}]}));
        let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
        assert_eq!(names(&decide(&s, &pod, &Backoff::default(), 10)), ["i1"]);
        pod.latest
            .insert("i1".into(), container("i1", ContainerState::Running, 0, 0));
        assert!(names(&decide(&s, &pod, &Backoff::default(), 10)).is_empty());
        pod.latest
            .insert("i1".into(), container("i1", ContainerState::Exited, 0, 0));
        assert_eq!(names(&decide(&s, &pod, &Backoff::default(), 10)), ["i2"]);
        pod.latest
            .insert("i2".into(), container("i2", ContainerState::Exited, 0, 0));
        assert_eq!(
            names(&decide(&s, &pod, &Backoff::default(), 10)),
            ["a", "b"]
        );
    }

    #[test]
    fn a_sidecar_must_start_before_the_next_init_container_and_keeps_running() {
        let s = spec(serde_json::json!({
            "initContainers": [{"name": "side", "restartPolicy": "Always"}, {"name": "i"}],
            "containers": [{"name": "a"}]}));
        let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
        assert_eq!(names(&decide(&s, &pod, &Backoff::default(), 10)), ["side"]);
        pod.latest.insert(
            "side".into(),
            container("side", ContainerState::Running, 0, 0),
        );
        let not_started = compute_pod_actions(
            "uid",
            &s,
            &pod,
            &HashSet::new(),
            &|_| false,
            &Backoff::default(),
            SystemTime::now(),
        );
        assert!(
            not_started.start.is_empty(),
            "waits for the sidecar's startup probe"
        );
        assert_eq!(names(&decide(&s, &pod, &Backoff::default(), 10)), ["i"]);
        pod.latest
            .insert("i".into(), container("i", ContainerState::Exited, 0, 0));
        assert_eq!(names(&decide(&s, &pod, &Backoff::default(), 10)), ["a"]);
    }

    #[test]
    fn a_failed_init_container_fails_a_never_pod_and_restarts_otherwise() {
        let mut s = spec(serde_json::json!({
            "restartPolicy": "Never",
            "initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}));
        let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
        pod.latest
            .insert("i".into(), container("i", ContainerState::Exited, 1, 0));
        let a = decide(&s, &pod, &Backoff::default(), 10);
        assert!(a.terminal && a.kill_pod && a.start.is_empty());
        s.restart_policy = Some("OnFailure".into());
        let a = decide(&s, &pod, &Backoff::default(), 10);
        assert!(!a.terminal);
        assert_eq!(a.start[0].attempt, 1);
    }

    #[test]
    fn restart_policy_decides_which_exits_restart() {
        let pod_with = |code| {
            let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
            pod.latest
                .insert("a".into(), container("a", ContainerState::Exited, code, 0));
            pod
        };
        for (policy, code, restarts) in [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 2, true),
            ("Never", 1, false),
            ("Never", 0, false),
        ] {
            let s =
                spec(serde_json::json!({"restartPolicy": policy, "containers": [{"name": "a"}]}));
            let a = decide(&s, &pod_with(code), &Backoff::default(), 10);
            assert_eq!(!a.start.is_empty(), restarts, "{policy} exit {code}");
            assert_eq!(a.terminal, !restarts, "{policy} exit {code}");
        }
    }

    #[test]
    fn crash_loop_back_off_doubles_from_10s_to_5_minutes() {
        let s = spec(serde_json::json!({"containers": [{"name": "a"}]}));
        let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
        pod.latest
            .insert("a".into(), container("a", ContainerState::Exited, 1, 0));
        let mut backoff = Backoff::default();
        // The first crash restarts at once.
        let a = decide(&s, &pod, &backoff, 2);
        assert_eq!(names(&a), ["a"]);
        let finished = SystemTime::UNIX_EPOCH + Duration::from_secs(2);
        backoff.next(&backoff_key("uid", "a"), finished);
        // The second waits 10 s after it finished.
        let a = decide(&s, &pod, &backoff, 11);
        assert!(a.start.is_empty());
        assert_eq!(a.backoff["a"].0, Duration::from_secs(10));
        assert_eq!(names(&decide(&s, &pod, &backoff, 12)), ["a"]);
        let mut delays = vec![];
        for _ in 0..8 {
            backoff.next(&backoff_key("uid", "a"), finished);
            delays.push(backoff.entries[&backoff_key("uid", "a")].0.as_secs());
        }
        assert_eq!(delays, [20, 40, 80, 160, 300, 300, 300, 300]);
    }

    #[test]
    fn an_unhealthy_container_is_killed_and_a_finished_pod_stops() {
        let s = spec(serde_json::json!({"containers": [{"name": "a"}]}));
        let mut pod = RuntimePod::new(Some(sandbox()), vec![]);
        pod.latest
            .insert("a".into(), container("a", ContainerState::Running, 0, 0));
        let unhealthy: HashSet<String> = ["a".to_string()].into();
        let a = compute_pod_actions(
            "uid",
            &s,
            &pod,
            &unhealthy,
            &|_| true,
            &Backoff::default(),
            SystemTime::now(),
        );
        assert_eq!(
            a.kill,
            [(
                "a-0".to_string(),
                "a".to_string(),
                KillReason::Unhealthy("a".into())
            )]
        );

        let s = spec(serde_json::json!({"restartPolicy": "OnFailure",
            "initContainers": [{"name": "side", "restartPolicy": "Always"}],
            "containers": [{"name": "a"}]}));
        pod.latest.insert(
            "side".into(),
            container("side", ContainerState::Running, 0, 0),
        );
        pod.latest
            .insert("a".into(), container("a", ContainerState::Exited, 0, 0));
        let a = decide(&s, &pod, &Backoff::default(), 10);
        assert!(
            a.terminal && a.kill_pod,
            "sidecars do not keep a finished pod alive"
        );
    }

    #[test]
    fn a_lost_sandbox_is_recreated_unless_the_pod_must_not_restart() {
        let s = spec(serde_json::json!({"containers": [{"name": "a"}]}));
        let mut sb = sandbox();
        sb.state = SandboxState::NotReady;
        let mut pod = RuntimePod::new(Some(sb), vec![]);
        pod.latest
            .insert("a".into(), container("a", ContainerState::Exited, 0, 0));
        let a = decide(&s, &pod, &Backoff::default(), 10);
        assert!(a.kill_pod && a.create_sandbox);
        let s = spec(serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "a"}]}));
        let a = decide(&s, &pod, &Backoff::default(), 10);
        assert!(!a.create_sandbox && a.terminal);
    }
}
