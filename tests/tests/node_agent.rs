//! A standalone node: `k8rs server` and `k8rs agent` with separate data dirs on this
//! machine, joined with credentials from `k8rs node-credentials`: the node registers and
//! becomes Ready, the scheduler places a pod there, it runs, and `kubectl logs` reaches
//! the agent's kubelet through the API server. Needs root and the host packages; prints
//! `SKIP: …` otherwise.

use std::process::Command;
use std::time::{Duration, Instant};

use k8rs_e2e::node::{self, wait_phase, RemoveSandboxesOnFailure};
use k8rs_e2e::{k8rs_binary, KubectlVersion, TestServer};
use k8rs_kubelet::cri::CriRuntime;
use k8rs_kubelet::runtime::Runtime;

const NODE: &str = "k8rs-e2e-agent";

#[test]
fn agent_joins_a_server_and_runs_pods() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let server = TestServer::start();
    let k = server.with_version(KubectlVersion::V1_33);

    // Without credentials the agent says how to get them.
    let agent_dir = tempfile::Builder::new()
        .prefix("k8rs-e2e-agent-")
        .tempdir()
        .unwrap();
    let agent_data = agent_dir.path().to_str().unwrap().to_string();
    let out = Command::new(k8rs_binary())
        .args(["agent", "--data-dir", &agent_data, "--node-name", NODE])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("k8rs node-credentials --node-name NAME --node-ip IP"),
        "{stderr}"
    );

    let out = Command::new(k8rs_binary())
        .args([
            "node-credentials",
            "--data-dir",
            server.data_dir().to_str().unwrap(),
            "--node-name",
            NODE,
            "--node-ip",
            "127.0.0.1",
            "--out",
            &format!("{agent_data}/agent"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node::build_images(&agent_dir.path().join("agent/images"));

    let n = std::process::id() % 250 + 1;
    let cidr = format!("10.42.{n}.0/24");
    let bridge = format!("k8rsa{n}");
    let started = Instant::now();
    let mut agent = server.spawn_agent(&[
        "agent",
        "--data-dir",
        &agent_data,
        "--node-name",
        NODE,
        "--node-ip",
        "127.0.0.1",
        "--pod-cidr",
        &cidr,
        "--cni-bridge",
        &bridge,
        "--eviction-hard",
        "memory.available<100Mi",
    ]);
    let _cleanup =
        RemoveSandboxesOnFailure(agent_dir.path().join("agent/containerd/containerd.sock"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = k
            .cmd([
                "get",
                "node",
                NODE,
                r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
            ])
            .output();
        if String::from_utf8_lossy(&out.stdout) == "True" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agent node not Ready\n--- agent log ---\n{}\n--- server log ---\n{}",
            agent.log(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("agent: started -> node Ready in {:?}", started.elapsed());
    // An agent is a worker, not a control-plane node.
    let labels = k.ok(["get", "node", NODE, "-o=jsonpath={.metadata.labels}"]);
    assert!(!labels.contains("control-plane"), "{labels}");

    // Scheduled by the server's scheduler (no nodeName), run by the agent.
    k.ok([
        "run",
        "hello",
        "--image=busybox",
        "--image-pull-policy=IfNotPresent",
        "--",
        "sh",
        "-c",
        "echo hello from the agent; sleep 3600",
    ]);
    wait_phase(&server, "hello", "Running", Duration::from_secs(60));
    assert_eq!(
        k.ok(["get", "pod", "hello", "-o=jsonpath={.spec.nodeName}"]),
        NODE
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = k.cmd(["logs", "hello"]).output();
        if String::from_utf8_lossy(&out.stdout).contains("hello from the agent") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl logs: {}\n--- agent log ---\n{}",
            k8rs_e2e::render(&out),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    k.ok(["delete", "pod", "hello", "--grace-period=1"]);
    let socket = agent_dir.path().join("agent/containerd/containerd.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sandboxes = rt.block_on(async {
        CriRuntime::connect(&socket)
            .unwrap()
            .list_pod_sandboxes()
            .await
            .unwrap()
    });
    assert!(sandboxes.is_empty(), "sandboxes left: {sandboxes:?}");
    let status = agent.stop();
    assert!(
        status.success(),
        "agent exited with {status}\n{}",
        agent.log()
    );
}
