//! `k8rs up` as a user runs it: the node comes up Ready, `kubectl run` busybox reaches
//! Running with an address from the pod CIDR, the cluster survives a stop and a second
//! `k8rs up` (same container, not restarted), and deleting the pod leaves no sandbox,
//! container, cgroup or veth. Needs root and the host packages; prints `SKIP: …`
//! otherwise.

use std::time::{Duration, Instant};

use k8rs_e2e::node::{self, wait_phase, RemoveSandboxesOnFailure};
use k8rs_e2e::{KubectlVersion, TestServer};
use k8rs_kubelet::cri::CriRuntime;
use k8rs_kubelet::runtime::Runtime;

const NODE: &str = "k8rs-e2e-node";

#[test]
fn up_runs_busybox_resumes_after_a_restart_and_cleans_up() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let mut server = TestServer::start_up(&["--node-name", NODE]);
    let _sandboxes =
        RemoveSandboxesOnFailure(server.data_dir().join("agent/containerd/containerd.sock"));
    server.wait_node_ready(NODE, Duration::from_secs(60));
    let k = server.with_version(KubectlVersion::V1_33);

    let node_ip = k.ok([
        "get",
        "node",
        NODE,
        r#"-o=jsonpath={.status.addresses[?(@.type=="InternalIP")].address}"#,
    ]);
    assert!(!node_ip.is_empty() && node_ip != "127.0.0.1", "{node_ip}");
    // Pods reach the API server through the `kubernetes` Service's endpoint: the node's
    // address, never loopback.
    let endpoint = k.ok([
        "get",
        "endpoints",
        "kubernetes",
        "-o=jsonpath={.subsets[0].addresses[0].ip}",
    ]);
    assert_eq!(endpoint, node_ip);
    let runtime_version = k.ok([
        "get",
        "node",
        NODE,
        "-o=jsonpath={.status.nodeInfo.containerRuntimeVersion}",
    ]);
    assert!(
        runtime_version.starts_with("containerd://"),
        "{runtime_version}"
    );
    let pod_cidr = k.ok(["get", "node", NODE, "-o=jsonpath={.spec.podCIDR}"]);
    assert_eq!(pod_cidr, server.pod_cidr().unwrap());
    let bridge = server.cni_bridge().unwrap().to_string();

    // Bound to the node directly (`spec.nodeName`), so this test is about the node, not
    // about the scheduler.
    let created = Instant::now();
    k.ok([
        "run",
        "t",
        "--image=busybox",
        &format!(r#"--overrides={{"apiVersion":"v1","spec":{{"nodeName":"{NODE}"}}}}"#),
        "--",
        "sleep",
        "3600",
    ]);
    wait_phase(&server, "t", "Running", Duration::from_secs(60));
    println!("pod t: created -> Running in {:?}", created.elapsed());
    let pod_ip = k.ok(["get", "pod", "t", "-o=jsonpath={.status.podIP}"]);
    let subnet = pod_cidr.trim_end_matches("0/24");
    assert!(pod_ip.starts_with(subnet), "{pod_ip} not in {pod_cidr}");
    let uid = k.ok(["get", "pod", "t", "-o=jsonpath={.metadata.uid}"]);
    let container = k.ok([
        "get",
        "pod",
        "t",
        "-o=jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    assert!(container.starts_with("containerd://"), "{container}");
    assert!(
        !node::pod_cgroups(&format!("pod{uid}")).is_empty(),
        "the pod has a cgroup"
    );

    // Stop as a user would; the next `k8rs up` finds the same container still running.
    let status = server.stop();
    assert!(
        status.success(),
        "k8rs up exited with {status}\n{}",
        server.log()
    );
    server.restart();
    server.wait_node_ready(NODE, Duration::from_secs(60));
    wait_phase(&server, "t", "Running", Duration::from_secs(30));
    let k = server.with_version(KubectlVersion::V1_33);
    assert_eq!(
        k.ok([
            "get",
            "pod",
            "t",
            "-o=jsonpath={.status.containerStatuses[0].containerID}"
        ]),
        container,
        "the container survived the restart"
    );
    assert_eq!(
        k.ok([
            "get",
            "pod",
            "t",
            "-o=jsonpath={.status.containerStatuses[0].restartCount}"
        ]),
        "0"
    );

    // `sleep` ignores SIGTERM as PID 1: a short grace period keeps the test quick.
    k.ok(["delete", "pod", "t", "--grace-period=1"]);
    let socket = server.data_dir().join("agent/containerd/containerd.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sandboxes, containers) = rt.block_on(async {
        let cri = CriRuntime::connect(&socket).unwrap();
        (
            cri.list_pod_sandboxes().await.unwrap(),
            cri.list_containers(None).await.unwrap(),
        )
    });
    assert!(sandboxes.is_empty(), "sandboxes left: {sandboxes:?}");
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let cgroups = node::pod_cgroups(&format!("pod{uid}"));
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let veths = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(veths, 0, "veths left on {bridge}");
}
