//! `CriRuntime` against a real containerd started under a temporary directory: a busybox
//! pod sandbox and container run, exec, stop and removal, and nothing left behind (pod
//! cgroup, veth). Needs root and the host packages; prints `SKIP: …` otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use k8rs_e2e::node;
use k8rs_kubelet::containerd::{images, Containerd, ContainerdConfig};
use k8rs_kubelet::cri::{cgroups, CriRuntime};
use k8rs_kubelet::runtime::{
    ContainerConfig, ContainerState, LinuxResources, PodIdentity, Runtime, SandboxConfig,
    SandboxState,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_sandbox_and_container_run_exec_stop_and_leave_nothing() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let agent = tmp.path().join("agent");
    node::build_images(&agent.join("images"));

    // A bridge and subnet of its own, so a `k8rs up` on this host (cni0, 10.42.0.0/24)
    // and other runs of this test do not collide.
    let n = std::process::id() % 200 + 20;
    let mut config = ContainerdConfig::new(
        &agent,
        node::cni_bin_dir().unwrap(),
        &format!("10.99.{n}.0/24"),
    );
    config.bridge = format!("k8rst{n}");
    let containerd = Containerd::start(&config, &node::which("containerd").unwrap())
        .await
        .expect("containerd starts");
    let cleanup = Cleanup {
        bridge: config.bridge.clone(),
        pid_file: config.dir.join("containerd.pid"),
    };

    let loaded = images::import_dir(
        &node::which("ctr").unwrap(),
        containerd.socket(),
        &agent.join("images"),
    )
    .await
    .expect("images import");
    assert!(loaded.contains(&node::BUSYBOX.to_string()), "{loaded:?}");
    assert!(loaded.contains(&node::PAUSE.to_string()), "{loaded:?}");

    let runtime = CriRuntime::connect(containerd.socket()).unwrap();
    let (name, version) = runtime.version().await.unwrap();
    assert_eq!(name, "containerd");
    assert!(!version.is_empty());
    let busybox = runtime
        .image_status("busybox")
        .await
        .unwrap()
        .expect("busybox present");
    assert!(
        busybox.repo_tags.contains(&node::BUSYBOX.to_string()),
        "{busybox:?}"
    );

    let uid = format!("cri-test-{}", std::process::id());
    let sandbox = SandboxConfig {
        identity: PodIdentity {
            name: "t".into(),
            namespace: "default".into(),
            uid: uid.clone(),
            attempt: 0,
        },
        hostname: "t".into(),
        log_directory: tmp.path().join("logs").to_string_lossy().into_owned(),
        labels: BTreeMap::from([("io.kubernetes.pod.uid".to_string(), uid.clone())]),
        cgroup_parent: cgroups::pod_cgroup_parent("Burstable", &uid),
        ..Default::default()
    };
    std::fs::create_dir_all(&sandbox.log_directory).unwrap();
    let started = std::time::Instant::now();
    let sandbox_id = runtime
        .run_pod_sandbox(&sandbox)
        .await
        .expect("sandbox runs");
    let sandbox_time = started.elapsed();
    let status = runtime.pod_sandbox_status(&sandbox_id).await.unwrap();
    assert_eq!(status.state, SandboxState::Ready);
    let ip = status.ips.first().expect("the pod has an IP").clone();
    assert!(ip.starts_with(&format!("10.99.{n}.")), "{ip}");
    assert!(
        node::interfaces().contains(&config.bridge),
        "the bridge exists"
    );
    let listed = runtime.list_pod_sandboxes().await.unwrap();
    assert!(listed
        .iter()
        .any(|s| s.id == sandbox_id && s.ips == [ip.clone()]));

    let container = ContainerConfig {
        name: "app".into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "3600".into()],
        envs: vec![("GREETING".into(), "hello".into())],
        log_path: "app/0.log".into(),
        resources: LinuxResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 256,
            ..Default::default()
        },
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let container_id = runtime
        .create_container(&sandbox_id, &container, &sandbox)
        .await
        .expect("container created");
    runtime
        .start_container(&container_id)
        .await
        .expect("container starts");
    let container_time = started.elapsed();
    println!("RunPodSandbox {sandbox_time:?}, CreateContainer+StartContainer {container_time:?}");
    let status = runtime.container_status(&container_id).await.unwrap();
    assert_eq!(status.state, ContainerState::Running);
    assert_eq!(status.sandbox_id, sandbox_id);
    assert_eq!(status.name, "app");
    assert!(
        status.image_ref.starts_with("sha256:"),
        "{}",
        status.image_ref
    );

    let exec = runtime
        .exec_sync(
            &container_id,
            &["sh".into(), "-c".into(), "echo $GREETING; exit 3".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(exec.exit_code, 3);
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "hello\n");
    // The memory limit reached the container's cgroup.
    let exec = runtime
        .exec_sync(
            &container_id,
            &[
                "cat".into(),
                "/sys/fs/cgroup/memory/memory.limit_in_bytes".into(),
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    if exec.exit_code == 0 {
        assert_eq!(
            String::from_utf8_lossy(&exec.stdout).trim(),
            (64u64 << 20).to_string()
        );
    }
    let stats = runtime.container_stats().await.unwrap();
    assert!(
        stats
            .iter()
            .any(|s| s.id == container_id && s.memory_working_set_bytes > 0),
        "{stats:?}"
    );
    assert!(runtime
        .list_containers(Some(&sandbox_id))
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == container_id));
    let url = runtime
        .stream_url(&k8rs_kubelet::runtime::StreamRequest::Exec {
            container_id: container_id.clone(),
            cmd: vec!["sh".into()],
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        })
        .await
        .unwrap();
    assert!(url.starts_with("http://"), "{url}");

    // `sleep` as PID 1 ignores SIGTERM: the stop ends in SIGKILL after the timeout.
    runtime
        .stop_container(&container_id, Duration::from_secs(1))
        .await
        .unwrap();
    let status = runtime.container_status(&container_id).await.unwrap();
    assert_eq!(status.state, ContainerState::Exited);
    assert_eq!(status.exit_code, 137);
    assert!(status.finished_at >= status.started_at);

    runtime.stop_pod_sandbox(&sandbox_id).await.unwrap();
    assert_eq!(
        runtime.pod_sandbox_status(&sandbox_id).await.unwrap().state,
        SandboxState::NotReady
    );
    // Stopping twice is fine.
    runtime.stop_pod_sandbox(&sandbox_id).await.unwrap();
    runtime.remove_container(&container_id).await.unwrap();
    runtime.remove_pod_sandbox(&sandbox_id).await.unwrap();
    runtime.remove_pod_sandbox(&sandbox_id).await.unwrap();
    assert!(matches!(
        runtime.container_status(&container_id).await,
        Err(k8rs_kubelet::runtime::RuntimeError::NotFound(_))
    ));
    assert!(!runtime
        .list_pod_sandboxes()
        .await
        .unwrap()
        .iter()
        .any(|s| s.id == sandbox_id));

    // Nothing left: no pod cgroup in any hierarchy, no veth on the bridge.
    let left = node::pod_cgroups(&format!("pod{uid}"));
    assert!(left.is_empty(), "pod cgroups left behind: {left:?}");
    let ports = std::fs::read_dir(format!("/sys/class/net/{}/brif", config.bridge))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(ports, 0, "veths left on the bridge");

    containerd.stop().await;
    drop(cleanup);
}

/// Stops containerd and deletes the test's bridge even when an assertion failed.
struct Cleanup {
    bridge: String,
    pid_file: std::path::PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).output();
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .output();
    }
}
