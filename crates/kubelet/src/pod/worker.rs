//! One pod worker per pod (upstream `pod_workers.go` + `kubelet.go` `SyncPod` /
//! `SyncTerminatingPod`): a task that receives the latest version of its pod, brings the
//! runtime to it with [`compute_pod_actions`], runs the probes, and writes the status
//! when it changed; on deletion it runs preStop hooks, stops the containers within the
//! grace period, removes the sandbox and finally deletes the pod object.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8rs_client::EventType;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, Preconditions};
use serde_json::Value;
use tokio::sync::watch;

use super::actions::{backoff_key, compute_pod_actions, Backoff, PodActions, RuntimePod};
use super::config::{container_config, sandbox_config};
use super::images::ImageManager;
use super::prober::{ContainerProbes, ProbeTarget};
use super::resources::container_resources;
use super::status::{compute_pod_status, StatusInputs};
use crate::node::NodeContext;
use crate::runtime::{ContainerState, SandboxState};

/// The latest state of a pod as the informer saw it.
#[derive(Clone, Debug)]
pub struct PodUpdate {
    /// The pod.
    pub pod: Arc<Pod>,
    /// The object is gone from the API (force-deleted or already removed).
    pub deleted: bool,
    /// Where the pod comes from, and so where its status goes.
    pub source: PodSource,
}

/// Where a worker's pod comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PodSource {
    /// The API server: status is written to the pod itself, which is deleted at the end.
    #[default]
    Api,
    /// A manifest file (a static pod): status goes to its mirror pod, when there is one
    /// (`mirror_uid`); the pod passed carries the mirror's status and resourceVersion.
    Static {
        /// The uid of the current mirror pod.
        mirror_uid: Option<String>,
    },
}

/// How soon to look again while something is about to change (a container starting, a
/// probe deciding).
const FAST_RESYNC: Duration = Duration::from_millis(500);
/// Upstream's `minimumGracePeriodInSeconds` for kills.
const MIN_KILL_GRACE: Duration = Duration::from_secs(2);

struct Worker {
    node: Arc<NodeContext>,
    uid: String,
    backoff: Backoff,
    probes: HashMap<String, ContainerProbes>,
    sandbox_id: Option<String>,
    sandbox_attempt: u32,
    /// The pod ran to completion: nothing is started again.
    finished: bool,
    /// Image pulls and their back-off.
    images: ImageManager,
    /// Containers whose last start failed: name → (waiting reason, message), e.g.
    /// `ErrImagePull` (upstream's reason cache).
    waiting: HashMap<String, (String, String)>,
    /// When a failed start should be looked at again (back-off ends, status changes).
    retry_at: Option<Instant>,
    /// The status last written, and the pod resourceVersion seen when writing it.
    last_written: Option<(Value, Option<String>)>,
    /// Where the pod comes from (the latest update's).
    source: PodSource,
}

/// How long a finished pod's SIGKILLed container may take to be reported OOMKilled.
const OOM_EVENT_GRACE: Duration = Duration::from_secs(1);

/// How long a container whose config failed waits before the next attempt.
const CONFIG_RETRY: Duration = Duration::from_secs(2);

/// Runs the worker of one pod until the pod is gone; `updates` carries new versions.
pub async fn run(node: Arc<NodeContext>, mut updates: watch::Receiver<PodUpdate>) {
    let first = updates.borrow().pod.clone();
    let mut worker = Worker {
        node,
        uid: first.metadata.uid.clone().unwrap_or_default(),
        backoff: Backoff::default(),
        probes: HashMap::new(),
        sandbox_id: None,
        sandbox_attempt: 0,
        finished: matches!(
            first.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ),
        last_written: None,
        images: ImageManager::default(),
        waiting: HashMap::new(),
        retry_at: None,
        source: updates.borrow().source.clone(),
    };
    // A pod that had already finished before this worker started (a kubelet restart)
    // is never run again; its recorded status stands until it is deleted.
    let finished_before = worker.finished;
    loop {
        let update = updates.borrow_and_update().clone();
        worker.source = update.source.clone();
        if update.deleted || update.pod.metadata.deletion_timestamp.is_some() {
            worker.terminate(&update.pod, update.deleted).await;
            return;
        }
        if finished_before {
            if updates.changed().await.is_err() {
                return;
            }
            continue;
        }
        let wake = match worker.sync(&update.pod).await {
            Ok(wake) => wake,
            Err(e) => {
                tracing::debug!(pod = %pod_name(&update.pod), error = %e, "pod sync failed; retrying");
                Some(Instant::now() + Duration::from_secs(1))
            }
        };
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = updates.changed() => if changed.is_err() {
                // The kubelet stopped; leave the runtime as it is (a restart adopts it).
                return;
            },
            _ = sleep => {}
        }
    }
}

/// The event reference of a container: the pod, with the container's field path.
fn container_reference(pod: &Pod, container: &str) -> ObjectReference {
    let spec = pod.spec.as_ref();
    let field = if spec.is_some_and(|s| s.containers.iter().any(|c| c.name == container)) {
        "spec.containers"
    } else if spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|ics| ics.iter().any(|c| c.name == container))
    {
        "spec.initContainers"
    } else {
        "spec.ephemeralContainers"
    };
    ObjectReference {
        field_path: Some(format!("{field}{{{container}}}")),
        ..k8rs_client::events::object_reference(pod)
    }
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

fn nanos_instant(nanos: i64) -> Instant {
    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64);
    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

impl Worker {
    /// What the runtime has for this pod: the newest sandbox and its containers.
    async fn observe(&mut self) -> crate::runtime::Result<RuntimePod> {
        let runtime = &self.node.runtime;
        if self.sandbox_id.is_none() {
            // Adopt what a previous kubelet left (upstream's runtime pod cache).
            let mut sandboxes: Vec<_> = runtime
                .list_pod_sandboxes()
                .await?
                .into_iter()
                .filter(|s| s.identity.uid == self.uid)
                .collect();
            sandboxes.sort_by_key(|s| std::cmp::Reverse((s.identity.attempt, s.created_at)));
            if let Some(s) = sandboxes.first() {
                self.sandbox_id = Some(s.id.clone());
                self.sandbox_attempt = s.identity.attempt;
            }
        }
        let Some(id) = self.sandbox_id.clone() else {
            return Ok(RuntimePod::default());
        };
        let sandbox = match runtime.pod_sandbox_status(&id).await {
            Ok(s) => s,
            Err(crate::runtime::RuntimeError::NotFound(_)) => {
                self.sandbox_id = None;
                return Ok(RuntimePod::default());
            }
            Err(e) => return Err(e),
        };
        let mut containers = runtime.list_containers(Some(&id)).await?;
        super::mounts::read_termination_messages(&mut containers);
        Ok(RuntimePod::new(Some(sandbox), containers))
    }

    /// Probes of running containers; returns the next probe time.
    async fn probe(&mut self, pod: &Pod, rt: &RuntimePod) -> Option<Instant> {
        let now = Instant::now();
        let pod_ip = rt
            .sandbox
            .as_ref()
            .and_then(|s| s.ips.first().cloned())
            .unwrap_or_default();
        self.probes.retain(|name, p| {
            rt.latest
                .get(name)
                .is_some_and(|c| c.id == p.container_id && c.state == ContainerState::Running)
        });
        let mut next: Option<Instant> = None;
        let mut unhealthy = Vec::new();
        for (name, c) in &rt.latest {
            if c.state != ContainerState::Running {
                continue;
            }
            let Some(spec) = find_container(pod, name) else {
                continue;
            };
            let probes = self
                .probes
                .entry(name.clone())
                .or_insert_with(|| ContainerProbes::new(spec, &c.id, nanos_instant(c.started_at)));
            let target = ProbeTarget {
                runtime: self.node.runtime.as_ref(),
                container_id: &c.id,
                pod_ip: &pod_ip,
                network: self.node.probe_network,
                container: Some(spec),
            };
            if let Some(at) = probes.run_due(&target, now).await {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            unhealthy.extend(
                probes
                    .take_failures()
                    .into_iter()
                    .map(|m| (name.clone(), m)),
            );
        }
        for (name, message) in unhealthy {
            self.record(pod, &name, EventType::Warning, "Unhealthy", message);
        }
        next
    }

    /// One `SyncPod`: returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> anyhow::Result<Option<Instant>> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut rt = self.observe().await?;
        let mut next_probe = self.probe(pod, &rt).await;
        let grace = termination_grace(pod);
        self.retry_at = None;

        // A pod the API already reports terminal (evicted by the eviction manager) is
        // killed and never started again; upstream's status manager never moves a pod
        // out of a terminal phase.
        let api_phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .filter(|p| p == "Failed" || p == "Succeeded");
        if api_phase.is_some() && !self.finished {
            self.kill_containers(pod, &rt, Duration::ZERO, false).await;
            if let Some(id) = &self.sandbox_id {
                self.node.runtime.stop_pod_sandbox(id).await?;
            }
            self.finished = true;
            rt = self.observe().await?;
        }

        // Upstream's WaitForAttachAndMount: nothing starts before the volumes are set up.
        let volumes_ready = self.finished || self.mount_volumes(pod).await;
        let mut actions = PodActions::default();
        if !self.finished && volumes_ready {
            let unhealthy: HashSet<String> = self
                .probes
                .iter()
                .filter(|(_, p)| p.unhealthy().is_some())
                .map(|(n, _)| n.clone())
                .collect();
            let probes = &self.probes;
            let started = |name: &str| probes.get(name).is_none_or(|p| p.started());
            actions = compute_pod_actions(
                &self.uid,
                &spec,
                &rt,
                &unhealthy,
                &started,
                &self.backoff,
                SystemTime::now(),
            );
            let acted = self.execute(pod, &rt, &actions, grace).await?;
            // A container that runs again no longer reports its failed start.
            self.waiting.retain(|name, _| {
                rt.latest
                    .get(name)
                    .is_none_or(|c| c.state != ContainerState::Running)
            });
            for name in actions.backoff.keys() {
                if self.waiting.contains_key(name) {
                    continue;
                }
                self.record(
                    pod,
                    name,
                    EventType::Warning,
                    "BackOff",
                    format!(
                        "Back-off restarting failed container {name} in pod {}_{}({})",
                        pod.metadata.name.as_deref().unwrap_or(""),
                        pod.metadata.namespace.as_deref().unwrap_or(""),
                        self.uid
                    ),
                );
            }
            if actions.terminal {
                // containerd can report an exit before the OOM event of the same container
                // (the reason says `Error` until it lands); the final status is written
                // once, so a SIGKILLed container gets a moment to show as OOMKilled.
                if rt.latest.values().any(|c| {
                    matches!(c.state, crate::runtime::ContainerState::Exited)
                        && c.exit_code == 137
                        && c.reason != "OOMKilled"
                }) {
                    tokio::time::sleep(OOM_EVENT_GRACE).await;
                    rt = self.observe().await?;
                }
                self.finished = true;
            }
            if acted {
                rt = self.observe().await?;
                next_probe = self.probe(pod, &rt).await.or(next_probe);
            }
        }

        // Status.
        let mut ready = HashSet::new();
        let mut started = HashSet::new();
        for (name, c) in &rt.latest {
            if c.state != ContainerState::Running {
                continue;
            }
            let probes = self.probes.get(name);
            if probes.is_none_or(|p| p.started()) {
                started.insert(name.clone());
            }
            if probes.is_none_or(|p| p.ready()) {
                ready.insert(name.clone());
            }
        }
        let pod_name = format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            self.uid
        );
        let backoff: HashMap<String, String> = actions
            .backoff
            .iter()
            .map(|(name, (delay, _))| {
                (
                    name.clone(),
                    format!(
                        "back-off {} restarting failed container={name} pod={pod_name}",
                        human(*delay)
                    ),
                )
            })
            .collect();
        let mut status = compute_pod_status(
            pod,
            &StatusInputs {
                runtime: &rt,
                ready: &ready,
                started: &started,
                backoff: &backoff,
                waiting: &self.waiting,
                host_ip: &self.node.host_ip,
                runtime_name: self
                    .node
                    .runtime_name
                    .get()
                    .map(String::as_str)
                    .unwrap_or(""),
                terminal: self.finished,
                now: SystemTime::now(),
            },
        );
        if api_phase.is_some() {
            status.phase = api_phase;
        }
        self.write_status(pod, serde_json::to_value(&status)?)
            .await?;

        if self.finished {
            return Ok(None);
        }
        let mut wake = Instant::now() + self.node.resync;
        let mut soon = |at: Instant| wake = wake.min(at);
        if let Some(at) = next_probe {
            soon(at);
        }
        if let Some(at) = self.retry_at {
            soon(at);
        }
        for (_, until) in actions.backoff.values() {
            let left = until.duration_since(SystemTime::now()).unwrap_or_default();
            soon(Instant::now() + left);
        }
        // Containers whose start failed are looked at again when `retry_at` says.
        let blocked = !self.waiting.is_empty();
        let settling = rt
            .sandbox
            .as_ref()
            .is_none_or(|s| s.state != SandboxState::Ready)
            || rt
                .latest
                .values()
                .any(|c| c.state == ContainerState::Created)
            || (!blocked && (rt.latest.len() < spec.containers.len() || !actions.start.is_empty()));
        if settling {
            soon(Instant::now() + FAST_RESYNC);
        }
        Ok(Some(wake))
    }

    /// Carries out a decision; returns whether anything changed in the runtime.
    async fn execute(
        &mut self,
        pod: &Pod,
        rt: &RuntimePod,
        actions: &PodActions,
        grace: Duration,
    ) -> anyhow::Result<bool> {
        let runtime = self.node.runtime.clone();
        let mut acted = false;
        if actions.kill_pod {
            self.kill_containers(pod, rt, grace, false).await;
            if let Some(id) = &self.sandbox_id {
                runtime.stop_pod_sandbox(id).await?;
            }
            acted = true;
        }
        if actions.create_sandbox {
            if let Some(old) = self.sandbox_id.take() {
                runtime.remove_pod_sandbox(&old).await?;
                self.sandbox_attempt += 1;
            }
            self.probes.clear();
            let config = sandbox_config(pod, self.sandbox_attempt);
            let id = runtime.run_pod_sandbox(&config).await?;
            self.sandbox_id = Some(id);
            return Ok(true);
        }
        for (id, name, _) in &actions.kill {
            tracing::debug!(pod = %pod_name(pod), container = %name, "container failed its liveness probe; restarting");
            let kind = self
                .probes
                .get(name)
                .and_then(|p| p.unhealthy())
                .map(|m| {
                    if m.contains("startup") {
                        "startup"
                    } else {
                        "liveness"
                    }
                })
                .unwrap_or("liveness");
            self.record(
                pod,
                name,
                EventType::Normal,
                "Killing",
                format!("Container {name} failed {kind} probe, will be restarted"),
            );
            runtime
                .stop_container(id, grace.max(MIN_KILL_GRACE))
                .await?;
            self.probes.remove(name);
            acted = true;
        }
        let Some(sandbox_id) = self.sandbox_id.clone() else {
            return Ok(acted);
        };
        let sandbox = sandbox_config(pod, self.sandbox_attempt);
        for start in &actions.start {
            let Some(container) = find_container(pod, &start.name) else {
                continue;
            };
            // Regular init containers run one at a time, and a failed one stops the rest.
            let one_at_a_time = start.init && !super::actions::is_sidecar(container);
            if let Some(finished) = start.replaces_finished {
                self.backoff
                    .next(&backoff_key(&self.uid, &start.name), finished);
            }
            match self
                .start_container(pod, rt, &sandbox_id, &sandbox, container, start.attempt)
                .await
            {
                Ok(()) => {
                    self.waiting.remove(&start.name);
                    acted = true;
                }
                Err((reason, message)) => {
                    // Upstream's startContainer: the reason becomes the waiting state and
                    // a `Failed` event says `Error: <reason>`.
                    let event = if matches!(
                        reason.as_str(),
                        "CreateContainerError" | "RunContainerError" | "CreateContainerConfigError"
                    ) {
                        format!("Error: {message}")
                    } else {
                        format!("Error: {reason}")
                    };
                    self.record(pod, &start.name, EventType::Warning, "Failed", event);
                    self.waiting.insert(start.name.clone(), (reason, message));
                }
            }
            if one_at_a_time {
                break;
            }
        }
        Ok(acted)
    }

    /// Sets up or refreshes the pod's volumes; false while one was never set up.
    async fn mount_volumes(&self, pod: &Pod) -> bool {
        let Some(volumes) = &self.node.volumes else {
            return true;
        };
        match volumes.mount_pod(&Arc::new(pod.clone())).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(pod = %pod_name(pod), error = %e, "volumes not ready");
                false
            }
        }
    }

    /// Environment, mounts and expansion for a container about to be created (upstream
    /// `generateContainerConfig`); a failure is `CreateContainerConfigError`, tried again
    /// after [`CONFIG_RETRY`].
    fn generate_config(
        &mut self,
        pod: &Pod,
        rt: &RuntimePod,
        container: &Container,
        sandbox: &crate::runtime::SandboxConfig,
        config: &mut crate::runtime::ContainerConfig,
    ) -> Result<(), (String, String)> {
        let pod_ips = rt
            .sandbox
            .as_ref()
            .map(|s| s.ips.clone())
            .unwrap_or_default();
        match super::generate::complete_container_config(
            &self.node, pod, container, &pod_ips, sandbox, config,
        ) {
            Ok(warnings) => {
                for w in warnings {
                    self.record(
                        pod,
                        &container.name,
                        EventType::Warning,
                        "InvalidEnvironmentVariableNames",
                        w,
                    );
                }
                Ok(())
            }
            Err(e) => {
                let at = Instant::now() + CONFIG_RETRY;
                self.retry_at = Some(self.retry_at.map_or(at, |r| r.min(at)));
                Err(("CreateContainerConfigError".to_string(), e))
            }
        }
    }

    /// Pulls the image as the policy says, then creates and starts one container; a
    /// failure is the container's waiting (reason, message).
    async fn start_container(
        &mut self,
        pod: &Pod,
        rt: &RuntimePod,
        sandbox_id: &str,
        sandbox: &crate::runtime::SandboxConfig,
        container: &Container,
        attempt: u32,
    ) -> Result<(), (String, String)> {
        let runtime = self.node.runtime.clone();
        let ensured = self
            .images
            .ensure_image_exists(runtime.as_ref(), &self.uid, container)
            .await;
        for e in ensured.events {
            let kind = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.record(pod, &container.name, kind, e.reason, e.message);
        }
        if let Some(at) = ensured.retry_at {
            self.retry_at = Some(self.retry_at.map_or(at, |r| r.min(at)));
        }
        if let Err(e) = ensured.result {
            return Err((e.reason().to_string(), e.message().to_string()));
        }
        // Keep the replaced container (for lastState), drop older ones.
        if let Some(c) = rt.previous.get(&container.name) {
            let _ = runtime.remove_container(&c.id).await;
        }
        let mut config = container_config(pod, container, attempt);
        config.image = super::images::with_default_tag(&config.image);
        config.resources = container_resources(pod, container, self.node.memory_capacity);
        self.generate_config(pod, rt, container, sandbox, &mut config)?;
        let id = runtime
            .create_container(sandbox_id, &config, sandbox)
            .await
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        if let Err(e) = runtime.start_container(&id).await {
            return Err(("RunContainerError".to_string(), e.to_string()));
        }
        Ok(())
    }

    /// Records a kubelet event about one of the pod's containers (`involvedObject` with
    /// upstream's `spec.containers{name}` field path).
    fn record(&self, pod: &Pod, container: &str, kind: EventType, reason: &str, message: String) {
        self.node
            .events
            .record_for(container_reference(pod, container), kind, reason, message);
    }

    /// Stops the running containers: preStop hooks, then stop within the grace period.
    async fn kill_containers(&mut self, pod: &Pod, rt: &RuntimePod, grace: Duration, hooks: bool) {
        let runtime = self.node.runtime.clone();
        let kills = rt
            .latest
            .values()
            .filter(|c| matches!(c.state, ContainerState::Running | ContainerState::Created))
            .map(|c| {
                let runtime = runtime.clone();
                let pre_stop = find_container(pod, &c.name)
                    .and_then(|s| s.lifecycle.as_ref())
                    .and_then(|l| l.pre_stop.clone());
                let id = c.id.clone();
                async move {
                    // Upstream's killContainer: the hook's whole seconds come off the
                    // grace period, and the runtime gets at least 2 s to stop.
                    let started = Instant::now();
                    if let (true, Some(hook)) = (hooks, pre_stop) {
                        if let Some(cmd) = hook.exec.and_then(|e| e.command) {
                            let _ =
                                tokio::time::timeout(grace, runtime.exec_sync(&id, &cmd, grace))
                                    .await;
                        } else if let Some(sleep) = hook.sleep {
                            let pause = Duration::from_secs(sleep.seconds.max(0) as u64);
                            tokio::time::sleep(pause.min(grace)).await;
                        }
                    }
                    let used = started.elapsed().as_secs();
                    let left = Duration::from_secs(grace.as_secs().saturating_sub(used))
                        .max(MIN_KILL_GRACE);
                    let _ = runtime.stop_container(&id, left).await;
                }
            });
        futures::future::join_all(kills).await;
        self.probes.clear();
    }

    /// `SyncTerminatingPod` + the status manager's final delete.
    async fn terminate(&mut self, pod: &Pod, gone: bool) {
        let grace = Duration::from_secs(
            pod.metadata
                .deletion_grace_period_seconds
                .map(|s| s.max(0) as u64)
                .unwrap_or_else(|| termination_grace(pod).as_secs()),
        );
        let rt = self.observe().await.unwrap_or_default();
        self.kill_containers(pod, &rt, grace, true).await;
        let rt = self.observe().await.unwrap_or_default();
        if let Some(id) = self.sandbox_id.take() {
            let _ = self.node.runtime.stop_pod_sandbox(&id).await;
            let _ = self.node.runtime.remove_pod_sandbox(&id).await;
        }
        if let Some(volumes) = &self.node.volumes {
            volumes.tear_down_pod(&self.uid).await;
        }
        if gone {
            return;
        }
        // Report the stopped containers, then release the object.
        self.finished = true;
        let status = compute_pod_status(
            pod,
            &StatusInputs {
                runtime: &RuntimePod {
                    sandbox: None,
                    ..rt
                },
                ready: &HashSet::new(),
                started: &HashSet::new(),
                backoff: &HashMap::new(),
                waiting: &HashMap::new(),
                host_ip: &self.node.host_ip,
                runtime_name: self
                    .node
                    .runtime_name
                    .get()
                    .map(String::as_str)
                    .unwrap_or(""),
                terminal: true,
                now: SystemTime::now(),
            },
        );
        if let Ok(value) = serde_json::to_value(&status) {
            let _ = self.write_status(pod, value).await;
        }
        let api: Api<Pod> = Api::namespaced(
            self.node.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        for attempt in 0..5u32 {
            match api
                .delete(pod.metadata.name.as_deref().unwrap_or(""), &params)
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
                Err(e) => {
                    tracing::debug!(pod = %pod_name(pod), error = %e, "final pod delete failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }

    /// The status manager: writes the status through `pods/status` when it differs from
    /// what the API holds (a JSON patch replacing `status`, guarded by the pod's uid).
    async fn write_status(&mut self, pod: &Pod, status: Value) -> anyhow::Result<()> {
        let current = serde_json::to_value(&pod.status)?;
        if current == status {
            self.last_written = None;
            return Ok(());
        }
        if let Some((written, seen)) = &self.last_written {
            if *written == status && *seen == pod.metadata.resource_version {
                return Ok(());
            }
        }
        let uid = match &self.source {
            PodSource::Api => self.uid.clone(),
            PodSource::Static {
                mirror_uid: Some(uid),
            } => uid.clone(),
            // No mirror pod yet: nothing in the API to report to.
            PodSource::Static { mirror_uid: None } => return Ok(()),
        };
        let patch = serde_json::json!([
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "replace", "path": "/status", "value": status},
        ]);
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/status",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        crate::node::json_patch(&self.node.client, &path, &patch).await?;
        self.last_written = Some((status, pod.metadata.resource_version.clone()));
        Ok(())
    }
}

/// The pod's `terminationGracePeriodSeconds` (default 30).
fn termination_grace(pod: &Pod) -> Duration {
    Duration::from_secs(
        pod.spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .max(0) as u64,
    )
}

/// Go's `time.Duration` string for whole seconds and minutes (`10s`, `2m40s`, `5m0s`).
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn back_off_durations_print_as_go_does() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_secs(160)), "2m40s");
        assert_eq!(human(Duration::from_secs(300)), "5m0s");
    }
}
