//! Making sure a container's image is on the node before it is created: upstream's
//! `pkg/kubelet/images/image_manager.go` `EnsureImageExists`. It honours
//! `imagePullPolicy` (`Always`, `IfNotPresent`, `Never`), records the `Pulling`, `Pulled`,
//! `Failed`, `BackOff` and `ErrImageNeverPull` events with upstream's messages, and backs
//! off failed pulls per pod and image (10 s doubling to 5 min, as the kubelet's
//! `imageBackOff`), reporting `ErrImagePull` then `ImagePullBackOff`.
//!
//! **Offline images and `Always`.** `kubectl run t --image=busybox` gets
//! `imagePullPolicy: Always` (no tag means `:latest`). Upstream (and k3s, whose air-gap
//! images behave the same) then fails with `ErrImagePull` when no registry answers, even
//! though the image imported from `DATA/agent/images` is right there. k8rs keeps the pull
//! (so a reachable registry still refreshes the tag, as `Always` promises) but, when the
//! pull fails and the image is present on the node, runs the local copy: the failed pull
//! is still reported (a `Failed` Warning event with the runtime's error), followed by a
//! `Pulled` event saying the present image is used. While that pull is backed off, the
//! present image is used without trying again. An absent image fails as upstream does.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Container;

use super::actions::Backoff;
use crate::runtime::{Runtime, RuntimeError};

/// `ErrImagePull` is shown for this long after a failed pull before the status turns to
/// `ImagePullBackOff` (at most half the back-off): upstream's pod worker re-syncs a pod
/// whose sync failed after 10 s, and that next sync is the one that reports the back-off.
const ERR_IMAGE_PULL_SHOWN: Duration = Duration::from_secs(10);

/// Why a container's image is not available, as the container's waiting reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// `ErrImagePull`: the pull failed; the message is the runtime's error.
    Pull(String),
    /// `ImagePullBackOff`: a previous pull failed and the back-off has not passed.
    BackOff(String),
    /// `ErrImageNeverPull`: absent with `imagePullPolicy: Never`.
    NeverPull(String),
    /// `ImageInspectError`: the runtime could not say whether the image is present.
    Inspect(String),
}

impl ImageError {
    /// The waiting reason (`ErrImagePull`, `ImagePullBackOff`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::Pull(_) => "ErrImagePull",
            ImageError::BackOff(_) => "ImagePullBackOff",
            ImageError::NeverPull(_) => "ErrImageNeverPull",
            ImageError::Inspect(_) => "ImageInspectError",
        }
    }

    /// The waiting message.
    pub fn message(&self) -> &str {
        match self {
            ImageError::Pull(m)
            | ImageError::BackOff(m)
            | ImageError::NeverPull(m)
            | ImageError::Inspect(m) => m,
        }
    }
}

/// An event the image manager wants recorded against the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEvent {
    /// `Normal` (false) or `Warning` (true).
    pub warning: bool,
    /// `Pulling`, `Pulled`, `Failed`, `BackOff`, `ErrImageNeverPull`, `InspectFailed`.
    pub reason: &'static str,
    /// Upstream's message.
    pub message: String,
}

fn normal(reason: &'static str, message: String) -> ImageEvent {
    ImageEvent {
        warning: false,
        reason,
        message,
    }
}

fn warning(reason: &'static str, message: String) -> ImageEvent {
    ImageEvent {
        warning: true,
        reason,
        message,
    }
}

struct Failure {
    /// `ErrImagePull: <runtime error>`, appended to the back-off message.
    message: String,
    at: Instant,
}

/// The outcome of [`ImageManager::ensure_image_exists`].
pub struct Ensured {
    /// The image to create the container from, or why there is none.
    pub result: Result<(), ImageError>,
    /// Events to record, in order.
    pub events: Vec<ImageEvent>,
    /// When looking again may change the answer (the back-off ends, or the status turns
    /// from `ErrImagePull` to `ImagePullBackOff`).
    pub retry_at: Option<Instant>,
}

/// One pod's image pulls and their back-off (upstream keys the back-off by pod uid and
/// image, so one pod per worker is the same thing).
#[derive(Default)]
pub struct ImageManager {
    backoff: Backoff,
    failures: HashMap<String, Failure>,
}

/// The pull policy the API server would have defaulted: `Always` for `:latest` or no tag,
/// else `IfNotPresent` (pods that skipped defaulting, such as static pods).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    match tag(image) {
        None | Some("latest") => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// The tag of an image reference: after the last `:` that follows the last `/` (a `:`
/// before it is a registry port).
fn tag(image: &str) -> Option<&str> {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split_once(':').map(|(_, t)| t)
}

/// Upstream `applyDefaultImageTag`: `busybox` → `busybox:latest`; digests stay.
pub fn with_default_tag(image: &str) -> String {
    if image.contains('@') || tag(image).is_some() {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Go's `time.Duration` printing for a duration truncated to milliseconds (`523ms`,
/// `1.204s`, `2m3.5s`), as upstream's `Pulled` message shows it.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let trim = |s: String| s.trim_end_matches('0').trim_end_matches('.').to_string();
    let (minutes, rest) = (ms / 60_000, ms % 60_000);
    let seconds = trim(format!("{}.{:03}", rest / 1000, rest % 1000));
    if minutes == 0 {
        format!("{seconds}s")
    } else if minutes < 60 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{}h{}m{seconds}s", minutes / 60, minutes % 60)
    }
}

impl ImageManager {
    /// Makes sure `container`'s image is present, pulling it as its policy says.
    pub async fn ensure_image_exists(
        &mut self,
        runtime: &dyn Runtime,
        pod_uid: &str,
        container: &Container,
    ) -> Ensured {
        let requested = container.image.clone().unwrap_or_default();
        let image = with_default_tag(&requested);
        let policy = container
            .image_pull_policy
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| default_pull_policy(&requested).to_string());
        let mut events = Vec::new();
        let present = match runtime.image_status(&image).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                let message = format!("Failed to inspect image {requested:?}: {e}");
                events.push(warning("InspectFailed", message.clone()));
                return Ensured {
                    result: Err(ImageError::Inspect(message)),
                    events,
                    retry_at: Some(Instant::now() + ERR_IMAGE_PULL_SHOWN),
                };
            }
        };
        let pull = match policy.as_str() {
            "Never" => false,
            "IfNotPresent" => !present,
            _ => true,
        };
        if !pull {
            if present {
                events.push(normal(
                    "Pulled",
                    format!("Container image {requested:?} already present on machine"),
                ));
                return Ensured {
                    result: Ok(()),
                    events,
                    retry_at: None,
                };
            }
            let message =
                format!("Container image {requested:?} is not present with pull policy of Never");
            events.push(warning("ErrImageNeverPull", message.clone()));
            return Ensured {
                result: Err(ImageError::NeverPull(message)),
                events,
                retry_at: Some(Instant::now() + ERR_IMAGE_PULL_SHOWN),
            };
        }

        let key = format!("{pod_uid}_{image}");
        let now = SystemTime::now();
        if let Some((delay, last)) = self.backoff.in_backoff_since_update(&key, now) {
            let ends =
                Instant::now() + delay.saturating_sub(now.duration_since(last).unwrap_or_default());
            if present {
                // Offline with the image at hand: use it until the next attempt.
                return Ensured {
                    result: Ok(()),
                    events,
                    retry_at: None,
                };
            }
            let failure = self.failures.get(&key);
            let shown_until = failure.map(|f| f.at + ERR_IMAGE_PULL_SHOWN.min(delay / 2));
            if let (Some(f), Some(until)) = (failure, shown_until) {
                if Instant::now() < until {
                    // The failed pull is still what the status reports.
                    let message = f.message.trim_start_matches("ErrImagePull: ").to_string();
                    return Ensured {
                        result: Err(ImageError::Pull(message)),
                        events,
                        retry_at: Some(until),
                    };
                }
            }
            let mut message = format!("Back-off pulling image {image:?}");
            events.push(normal("BackOff", message.clone()));
            if let Some(f) = failure {
                message = format!("{message}: {}", f.message);
            }
            return Ensured {
                result: Err(ImageError::BackOff(message)),
                events,
                retry_at: Some(ends),
            };
        }
        self.failures.remove(&key);

        events.push(normal("Pulling", format!("Pulling image {image:?}")));
        let started = Instant::now();
        match runtime.pull_image(&image).await {
            Ok(_) => {
                let took = go_duration(started.elapsed());
                let size = match runtime.image_status(&image).await {
                    Ok(Some(found)) => found.size,
                    _ => 0,
                };
                events.push(normal(
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {took} ({took} including waiting). Image size: {size} bytes."
                    ),
                ));
                Ensured {
                    result: Ok(()),
                    events,
                    retry_at: None,
                }
            }
            Err(e) => {
                let error = match e {
                    RuntimeError::ImagePull(m) | RuntimeError::Other(m) => m,
                    RuntimeError::NotFound(m) => format!("not found: {m}"),
                };
                events.push(warning(
                    "Failed",
                    format!("Failed to pull image {image:?}: {error}"),
                ));
                self.backoff.next(&key, now);
                self.failures.insert(
                    key.clone(),
                    Failure {
                        message: format!("ErrImagePull: {error}"),
                        at: Instant::now(),
                    },
                );
                if present {
                    events.push(normal(
                        "Pulled",
                        format!(
                            "Container image {requested:?} already present on machine; using it since the pull failed"
                        ),
                    ));
                    return Ensured {
                        result: Ok(()),
                        events,
                        retry_at: None,
                    };
                }
                let (delay, _) = self
                    .backoff
                    .in_backoff_since_update(&key, now)
                    .unwrap_or((super::actions::INITIAL_BACKOFF, now));
                Ensured {
                    result: Err(ImageError::Pull(error)),
                    events,
                    retry_at: Some(Instant::now() + ERR_IMAGE_PULL_SHOWN.min(delay / 2)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hollow::{HollowOptions, HollowRuntime};
    use crate::runtime::{
        ContainerConfig, ContainerStats, ContainerStatus, ExecResult, Image, Result, SandboxConfig,
        SandboxStatus, StreamRequest,
    };
    use std::sync::Mutex;

    /// A runtime whose image store is a set and whose registry may be unreachable.
    struct Images {
        present: Mutex<Vec<String>>,
        registry_up: bool,
        pulls: Mutex<u32>,
        inner: HollowRuntime,
    }

    #[async_trait::async_trait]
    impl Runtime for Images {
        async fn version(&self) -> Result<(String, String)> {
            self.inner.version().await
        }
        async fn run_pod_sandbox(&self, c: &SandboxConfig) -> Result<String> {
            self.inner.run_pod_sandbox(c).await
        }
        async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
            self.inner.stop_pod_sandbox(id).await
        }
        async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
            self.inner.remove_pod_sandbox(id).await
        }
        async fn pod_sandbox_status(&self, id: &str) -> Result<SandboxStatus> {
            self.inner.pod_sandbox_status(id).await
        }
        async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
            self.inner.list_pod_sandboxes().await
        }
        async fn create_container(
            &self,
            s: &str,
            c: &ContainerConfig,
            sb: &SandboxConfig,
        ) -> Result<String> {
            self.inner.create_container(s, c, sb).await
        }
        async fn start_container(&self, id: &str) -> Result<()> {
            self.inner.start_container(id).await
        }
        async fn stop_container(&self, id: &str, t: Duration) -> Result<()> {
            self.inner.stop_container(id, t).await
        }
        async fn remove_container(&self, id: &str) -> Result<()> {
            self.inner.remove_container(id).await
        }
        async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
            self.inner.container_status(id).await
        }
        async fn list_containers(&self, s: Option<&str>) -> Result<Vec<ContainerStatus>> {
            self.inner.list_containers(s).await
        }
        async fn exec_sync(&self, id: &str, cmd: &[String], t: Duration) -> Result<ExecResult> {
            self.inner.exec_sync(id, cmd, t).await
        }
        async fn stream_url(&self, r: &StreamRequest) -> Result<String> {
            self.inner.stream_url(r).await
        }
        async fn container_stats(&self) -> Result<Vec<ContainerStats>> {
            self.inner.container_stats().await
        }
        async fn image_status(&self, image: &str) -> Result<Option<Image>> {
            Ok(self
                .present
                .lock()
                .unwrap()
                .contains(&image.to_string())
                .then(|| Image {
                    id: "sha256:1".into(),
                    size: 42,
                    ..Default::default()
                }))
        }
        async fn pull_image(&self, image: &str) -> Result<String> {
            *self.pulls.lock().unwrap() += 1;
            if !self.registry_up {
                return Err(RuntimeError::ImagePull(
                    "rpc error: code = Unknown desc = no such host".into(),
                ));
            }
            self.present.lock().unwrap().push(image.to_string());
            Ok("sha256:1".into())
        }
        async fn list_images(&self) -> Result<Vec<Image>> {
            Ok(vec![])
        }
        async fn remove_image(&self, _: &str) -> Result<()> {
            Ok(())
        }
    }

    fn runtime(present: &[&str], registry_up: bool) -> Images {
        Images {
            present: Mutex::new(present.iter().map(|s| s.to_string()).collect()),
            registry_up,
            pulls: Mutex::new(0),
            inner: HollowRuntime::new(HollowOptions::default()),
        }
    }

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Default::default()
        }
    }

    fn reasons(e: &Ensured) -> Vec<&str> {
        e.events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn policies_default_by_tag_and_tags_default_to_latest() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert_eq!(with_default_tag("x:1"), "x:1");
        assert_eq!(go_duration(Duration::from_millis(523)), "523ms");
        assert_eq!(go_duration(Duration::from_millis(1204)), "1.204s");
        assert_eq!(go_duration(Duration::from_millis(2000)), "2s");
        assert_eq!(go_duration(Duration::from_millis(123_500)), "2m3.5s");
    }

    #[tokio::test]
    async fn if_not_present_uses_the_local_image_and_never_does_not_pull() {
        let rt = runtime(&["busybox:1.36"], true);
        let mut m = ImageManager::default();
        let e = m
            .ensure_image_exists(&rt, "u", &container("busybox:1.36", Some("IfNotPresent")))
            .await;
        assert!(e.result.is_ok());
        assert_eq!(
            e.events[0].message,
            "Container image \"busybox:1.36\" already present on machine"
        );
        let e = m
            .ensure_image_exists(&rt, "u", &container("other:1", Some("Never")))
            .await;
        assert_eq!(e.result.as_ref().unwrap_err().reason(), "ErrImageNeverPull");
        assert_eq!(
            e.result.unwrap_err().message(),
            "Container image \"other:1\" is not present with pull policy of Never"
        );
        assert_eq!(*rt.pulls.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn always_pulls_and_reports_the_pull() {
        let rt = runtime(&["busybox:latest"], true);
        let mut m = ImageManager::default();
        let e = m
            .ensure_image_exists(&rt, "u", &container("busybox", Some("Always")))
            .await;
        assert!(e.result.is_ok());
        assert_eq!(reasons(&e), ["Pulling", "Pulled"]);
        assert_eq!(e.events[0].message, "Pulling image \"busybox:latest\"");
        assert!(
            e.events[1]
                .message
                .starts_with("Successfully pulled image \"busybox:latest\" in ")
                && e.events[1].message.ends_with("Image size: 42 bytes."),
            "{}",
            e.events[1].message
        );
        assert_eq!(*rt.pulls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_pull_is_err_image_pull_then_backs_off() {
        let rt = runtime(&[], false);
        let mut m = ImageManager::default();
        let c = container("registry.invalid/nope:1", Some("IfNotPresent"));
        let e = m.ensure_image_exists(&rt, "u", &c).await;
        assert_eq!(reasons(&e), ["Pulling", "Failed"]);
        assert!(e.events[1].warning);
        assert_eq!(
            e.events[1].message,
            "Failed to pull image \"registry.invalid/nope:1\": rpc error: code = Unknown desc = no such host"
        );
        let err = e.result.unwrap_err();
        assert_eq!(err.reason(), "ErrImagePull");
        assert_eq!(
            err.message(),
            "rpc error: code = Unknown desc = no such host"
        );
        // Half the 10 s back-off keeps showing the failed pull, without pulling again.
        let shown = e.retry_at.unwrap().duration_since(Instant::now());
        assert!(shown <= Duration::from_secs(5) && shown > Duration::from_secs(4));
        let e = m.ensure_image_exists(&rt, "u", &c).await;
        assert_eq!(e.result.unwrap_err().reason(), "ErrImagePull");
        assert!(e.events.is_empty());
        assert_eq!(*rt.pulls.lock().unwrap(), 1);
        // Then the back-off shows, with the last error.
        m.failures.get_mut("u_registry.invalid/nope:1").unwrap().at -= Duration::from_secs(6);
        let e = m.ensure_image_exists(&rt, "u", &c).await;
        assert_eq!(reasons(&e), ["BackOff"]);
        assert_eq!(
            e.events[0].message,
            "Back-off pulling image \"registry.invalid/nope:1\""
        );
        let err = e.result.unwrap_err();
        assert_eq!(err.reason(), "ImagePullBackOff");
        assert_eq!(
            err.message(),
            "Back-off pulling image \"registry.invalid/nope:1\": ErrImagePull: rpc error: code = Unknown desc = no such host"
        );
        assert_eq!(*rt.pulls.lock().unwrap(), 1);
        // Another pod is not backed off.
        let e = m.ensure_image_exists(&rt, "v", &c).await;
        assert_eq!(reasons(&e), ["Pulling", "Failed"]);
    }

    #[tokio::test]
    async fn always_offline_with_the_image_present_runs_the_local_copy() {
        let rt = runtime(&["busybox:latest"], false);
        let mut m = ImageManager::default();
        let c = container("busybox", Some("Always"));
        let e = m.ensure_image_exists(&rt, "u", &c).await;
        assert!(e.result.is_ok());
        assert_eq!(reasons(&e), ["Pulling", "Failed", "Pulled"]);
        // While backed off, the local copy is used without another pull.
        let e = m.ensure_image_exists(&rt, "u", &c).await;
        assert!(e.result.is_ok() && e.events.is_empty());
        assert_eq!(*rt.pulls.lock().unwrap(), 1);
    }
}
