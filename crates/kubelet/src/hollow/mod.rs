//! The hollow runtime: [`Runtime`] kept entirely in memory, as kubemark's fake runtime, so
//! one process can run a thousand simulated nodes through the same pod workers as a real
//! kubelet.
//!
//! Sandboxes take addresses from the node's pod CIDR (handed over by
//! [`Runtime::update_runtime_config`]); containers start running after a configurable
//! delay and run until stopped; a stop takes the simulated process's shutdown time
//! (capped by the grace timeout, as SIGKILL would); exec always succeeds, so exec probes
//! pass. Usage is synthetic but stable per container, for the stats summary.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStats, ContainerStatus, ExecResult, Image, Result,
    Runtime, RuntimeError, SandboxConfig, SandboxState, SandboxStatus, StreamRequest,
};

/// How simulated containers behave.
#[derive(Clone, Copy, Debug, Default)]
pub struct HollowOptions {
    /// Time from `start_container` until the container reports Running.
    pub start_delay: Duration,
    /// Time a container takes to exit after SIGTERM (a stop waits for this, at most for
    /// the grace timeout it was given).
    pub stop_delay: Duration,
}

struct Sandbox {
    identity: crate::runtime::PodIdentity,
    state: SandboxState,
    created_at: i64,
    ip: Option<u32>,
}

struct Container {
    sandbox_id: String,
    name: String,
    attempt: u32,
    image: String,
    created_at: i64,
    /// When it starts (or started) running; 0 until started.
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    /// Synthetic usage: millicores and bytes, fixed per container.
    cpu_millis: u64,
    memory_bytes: u64,
}

#[derive(Default)]
struct State {
    /// Pod CIDR as (network, prefix length).
    cidr: Option<(u32, u8)>,
    /// Next host offset to try, so addresses are not reused at once.
    next_host: u32,
    used: std::collections::HashSet<u32>,
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, Container>,
    next_id: u64,
}

/// One hollow node's runtime.
pub struct HollowRuntime {
    options: HollowOptions,
    state: Mutex<State>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A cheap, stable hash for synthetic usage (FNV-1a).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Parses `10.42.3.0/24`.
fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= 30).then_some((u32::from(ip) & (u32::MAX << (32 - len)), len))
}

impl HollowRuntime {
    /// An empty runtime.
    pub fn new(options: HollowOptions) -> Self {
        HollowRuntime {
            options,
            state: Mutex::new(State::default()),
        }
    }

    fn container_status_locked(state: &State, id: &str, now: i64) -> Result<ContainerStatus> {
        let c = state
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
        let (state_, reason) = if c.finished_at != 0 {
            let reason = if c.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (ContainerState::Exited, reason)
        } else if c.started_at != 0 && c.started_at <= now {
            (ContainerState::Running, "")
        } else {
            (ContainerState::Created, "")
        };
        Ok(ContainerStatus {
            id: id.to_string(),
            sandbox_id: c.sandbox_id.clone(),
            name: c.name.clone(),
            attempt: c.attempt,
            state: state_,
            created_at: c.created_at,
            started_at: if state_ == ContainerState::Created {
                0
            } else {
                c.started_at
            },
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: c.image.clone(),
            image_ref: format!("sha256:{:064x}", fnv(&c.image) as u128),
            reason: reason.to_string(),
            message: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        })
    }

    fn sandbox_status_locked(state: &State, id: &str) -> Result<SandboxStatus> {
        let s = state
            .sandboxes
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("sandbox {id}")))?;
        Ok(SandboxStatus {
            id: id.to_string(),
            identity: s.identity.clone(),
            state: s.state,
            created_at: s.created_at,
            ips: s
                .ip
                .map(|ip| vec![Ipv4Addr::from(ip).to_string()])
                .unwrap_or_default(),
            labels: BTreeMap::new(),
        })
    }

    /// Number of sandboxes held (for the benchmark and tests).
    pub fn sandbox_count(&self) -> usize {
        self.state.lock().unwrap().sandboxes.len()
    }
}

#[async_trait::async_trait]
impl Runtime for HollowRuntime {
    async fn version(&self) -> Result<(String, String)> {
        Ok(("hollow".into(), env!("CARGO_PKG_VERSION").into()))
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let cidr = parse_cidr(pod_cidr)
            .ok_or_else(|| RuntimeError::Other(format!("invalid pod CIDR {pod_cidr:?}")))?;
        self.state.lock().unwrap().cidr = Some(cidr);
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String> {
        let mut state = self.state.lock().unwrap();
        let ip = if config.host_network {
            None
        } else {
            let (net, len) = state.cidr.ok_or_else(|| {
                RuntimeError::Other(
                    "network is not ready: the node has no pod CIDR assigned yet".into(),
                )
            })?;
            // Hosts .1 (gateway) to broadcast-1, as host-local with a bridge gateway.
            let hosts = (1u32 << (32 - len)) - 3;
            let mut found = None;
            for i in 0..hosts {
                let offset = 2 + (state.next_host + i) % hosts;
                if !state.used.contains(&(net + offset)) {
                    found = Some(offset);
                    break;
                }
            }
            let offset = found.ok_or_else(|| {
                RuntimeError::Other("failed to allocate an IP address: range is full".into())
            })?;
            state.next_host = offset - 1;
            state.used.insert(net + offset);
            Some(net + offset)
        };
        state.next_id += 1;
        let id = format!(
            "{:064x}",
            (state.next_id as u128) << 64 | fnv(&config.identity.uid) as u128
        );
        state.sandboxes.insert(
            id.clone(),
            Sandbox {
                identity: config.identity.clone(),
                state: SandboxState::Ready,
                created_at: now_nanos(),
                ip,
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        let ids: Vec<String> = {
            let state = self.state.lock().unwrap();
            state
                .containers
                .iter()
                .filter(|(_, c)| c.sandbox_id == sandbox_id && c.finished_at == 0)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            self.stop_container(&id, Duration::ZERO).await?;
        }
        let mut state = self.state.lock().unwrap();
        if let Some(ip) = state.sandboxes.get_mut(sandbox_id).and_then(|s| {
            s.state = SandboxState::NotReady;
            s.ip.take()
        }) {
            state.used.remove(&ip);
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<()> {
        self.stop_pod_sandbox(sandbox_id).await?;
        let mut state = self.state.lock().unwrap();
        state.sandboxes.remove(sandbox_id);
        state.containers.retain(|_, c| c.sandbox_id != sandbox_id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, sandbox_id: &str) -> Result<SandboxStatus> {
        Self::sandbox_status_locked(&self.state.lock().unwrap(), sandbox_id)
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        let state = self.state.lock().unwrap();
        state
            .sandboxes
            .keys()
            .map(|id| Self::sandbox_status_locked(&state, id))
            .collect()
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox: &SandboxConfig,
    ) -> Result<String> {
        let mut state = self.state.lock().unwrap();
        if !state.sandboxes.contains_key(sandbox_id) {
            return Err(RuntimeError::NotFound(format!("sandbox {sandbox_id}")));
        }
        state.next_id += 1;
        let id = format!(
            "{:064x}",
            (state.next_id as u128) << 64 | fnv(&config.name) as u128
        );
        let seed = fnv(&id);
        state.containers.insert(
            id.clone(),
            Container {
                sandbox_id: sandbox_id.to_string(),
                name: config.name.clone(),
                attempt: config.attempt,
                image: config.image.clone(),
                created_at: now_nanos(),
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                // 1–50 millicores and 4–64 MiB: small, varied, stable.
                cpu_millis: 1 + seed % 50,
                memory_bytes: (4 + (seed >> 8) % 61) << 20,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, container_id: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        let c = state
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NotFound(format!("container {container_id}")))?;
        c.started_at = now_nanos() + self.options.start_delay.as_nanos() as i64;
        Ok(())
    }

    async fn stop_container(&self, container_id: &str, timeout: Duration) -> Result<()> {
        let running = {
            let state = self.state.lock().unwrap();
            match state.containers.get(container_id) {
                None => return Ok(()),
                Some(c) => c.finished_at == 0 && c.started_at != 0,
            }
        };
        // The simulated process shuts down in `stop_delay`, or is killed at `timeout`.
        let wait = self.options.stop_delay.min(timeout);
        if running && !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut state = self.state.lock().unwrap();
        if let Some(c) = state.containers.get_mut(container_id) {
            if c.finished_at == 0 {
                c.finished_at = now_nanos();
                // Killed after the timeout: 137 (SIGKILL); exited on SIGTERM: 0.
                c.exit_code = if self.options.stop_delay > timeout && running {
                    137
                } else {
                    0
                };
                if c.started_at == 0 || c.started_at > c.finished_at {
                    c.started_at = c.finished_at;
                }
            }
        }
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> Result<()> {
        self.state.lock().unwrap().containers.remove(container_id);
        Ok(())
    }

    async fn container_status(&self, container_id: &str) -> Result<ContainerStatus> {
        Self::container_status_locked(&self.state.lock().unwrap(), container_id, now_nanos())
    }

    async fn list_containers(&self, sandbox_id: Option<&str>) -> Result<Vec<ContainerStatus>> {
        let state = self.state.lock().unwrap();
        let now = now_nanos();
        state
            .containers
            .iter()
            .filter(|(_, c)| sandbox_id.is_none_or(|s| c.sandbox_id == s))
            .map(|(id, _)| Self::container_status_locked(&state, id, now))
            .collect()
    }

    async fn exec_sync(
        &self,
        container_id: &str,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult> {
        let status = self.container_status(container_id).await?;
        if status.state != ContainerState::Running {
            return Err(RuntimeError::Other(format!(
                "container {container_id} is not running"
            )));
        }
        Ok(ExecResult::default())
    }

    async fn stream_url(&self, _request: &StreamRequest) -> Result<String> {
        Err(RuntimeError::Other(
            "hollow nodes have no streaming server".into(),
        ))
    }

    async fn container_stats(&self) -> Result<Vec<ContainerStats>> {
        let state = self.state.lock().unwrap();
        let now = now_nanos();
        Ok(state
            .containers
            .iter()
            .filter(|(_, c)| c.finished_at == 0 && c.started_at != 0 && c.started_at <= now)
            .map(|(id, c)| ContainerStats {
                id: id.clone(),
                cpu_usage_core_nanoseconds: (now - c.started_at).max(0) as u64 / 1000
                    * c.cpu_millis,
                memory_working_set_bytes: c.memory_bytes,
                timestamp: now,
            })
            .collect())
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        Ok(Some(Image {
            id: format!("sha256:{:064x}", fnv(image) as u128),
            repo_tags: vec![image.to_string()],
            repo_digests: Vec::new(),
            size: 0,
        }))
    }

    async fn pull_image(&self, image: &str) -> Result<String> {
        Ok(format!("sha256:{:064x}", fnv(image) as u128))
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        Ok(Vec::new())
    }

    async fn remove_image(&self, _image: &str) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PodIdentity;

    fn sandbox(uid: &str) -> SandboxConfig {
        SandboxConfig {
            identity: PodIdentity {
                name: uid.into(),
                namespace: "default".into(),
                uid: uid.into(),
                attempt: 0,
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sandboxes_get_addresses_from_the_pod_cidr_and_give_them_back() {
        let rt = HollowRuntime::new(HollowOptions::default());
        assert!(
            rt.run_pod_sandbox(&sandbox("a")).await.is_err(),
            "no CIDR yet"
        );
        rt.update_runtime_config("10.42.7.0/24").await.unwrap();
        let a = rt.run_pod_sandbox(&sandbox("a")).await.unwrap();
        let b = rt.run_pod_sandbox(&sandbox("b")).await.unwrap();
        let ip_a = rt.pod_sandbox_status(&a).await.unwrap().ips[0].clone();
        let ip_b = rt.pod_sandbox_status(&b).await.unwrap().ips[0].clone();
        assert_eq!(ip_a, "10.42.7.2");
        assert_eq!(ip_b, "10.42.7.3");
        rt.remove_pod_sandbox(&a).await.unwrap();
        assert_eq!(rt.sandbox_count(), 1);
        assert!(!rt
            .state
            .lock()
            .unwrap()
            .used
            .contains(&u32::from(Ipv4Addr::new(10, 42, 7, 2))));
    }

    #[tokio::test]
    async fn a_stop_waits_for_the_process_at_most_the_grace_timeout() {
        let rt = HollowRuntime::new(HollowOptions {
            start_delay: Duration::ZERO,
            stop_delay: Duration::from_secs(3600),
        });
        rt.update_runtime_config("10.42.0.0/24").await.unwrap();
        let s = rt.run_pod_sandbox(&sandbox("a")).await.unwrap();
        let config = ContainerConfig {
            name: "c".into(),
            ..Default::default()
        };
        let c = rt
            .create_container(&s, &config, &sandbox("a"))
            .await
            .unwrap();
        rt.start_container(&c).await.unwrap();
        assert_eq!(
            rt.container_status(&c).await.unwrap().state,
            ContainerState::Running
        );
        let started = std::time::Instant::now();
        rt.stop_container(&c, Duration::from_millis(200))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        let st = rt.container_status(&c).await.unwrap();
        assert_eq!((st.state, st.exit_code), (ContainerState::Exited, 137));
    }
}
