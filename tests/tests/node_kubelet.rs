//! The kubelet's node features on a real node (`k8rs up`): static pods from the manifest
//! directory with their mirror pods, and eviction under memory pressure. Needs root and
//! the host packages; prints `SKIP: …` otherwise.

use std::time::{Duration, Instant};

use k8rs_e2e::node::{self, wait_phase, RemoveSandboxesOnFailure};
use k8rs_e2e::{KubectlVersion, TestServer};
use k8rs_kubelet::cri::CriRuntime;
use k8rs_kubelet::runtime::{ContainerState, Runtime};

const NODE: &str = "k8rs-e2e-kubelet";

fn running_containers(server: &TestServer) -> Vec<(String, String)> {
    let socket = server.data_dir().join("agent/containerd/containerd.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cri = CriRuntime::connect(&socket).unwrap();
        cri.list_containers(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| (c.name, c.id))
            .collect()
    })
}

fn wait_until(what: &str, timeout: Duration, server: &TestServer, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            panic!(
                "{what}: not after {timeout:?}\n--- server log ---\n{}",
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn static_pods_run_from_manifests_with_mirror_pods() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let server = TestServer::start_up(&["--node-name", NODE]);
    let _cleanup =
        RemoveSandboxesOnFailure(server.data_dir().join("agent/containerd/containerd.sock"));
    server.wait_node_ready(NODE, Duration::from_secs(60));
    let k = server.with_version(KubectlVersion::V1_33);

    let manifests = server.data_dir().join("agent/pod-manifests");
    assert!(
        manifests.is_dir(),
        "k8rs up creates DATA/agent/pod-manifests"
    );
    let manifest = manifests.join("web.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\n\
         spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: web\n    \
         image: busybox\n    imagePullPolicy: IfNotPresent\n    \
         command: [\"sh\", \"-c\", \"echo static-hello; sleep 3600\"]\n",
    )
    .unwrap();
    let mirror = format!("web-{NODE}");
    let started = Instant::now();
    wait_phase(&server, &mirror, "Running", Duration::from_secs(60));
    println!(
        "static pod: file written -> mirror Running in {:?}",
        started.elapsed()
    );

    let pod = k.get_json("pod", &mirror, &[]);
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["kubernetes.io/config.source"], "file");
    let hash = annotations["kubernetes.io/config.hash"].as_str().unwrap();
    assert_eq!(annotations["kubernetes.io/config.mirror"], hash);
    assert!(annotations["kubernetes.io/config.seen"].is_string());
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], NODE);
    assert_eq!(owner["controller"], true);
    assert_eq!(pod["spec"]["nodeName"], NODE);
    // Mirror pods get no ServiceAccount and no token volume.
    assert!(pod["spec"]["serviceAccountName"].is_null(), "{pod}");
    assert!(pod["spec"]["volumes"].is_null(), "{pod}");
    let container = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .to_string();
    // Logs go through the API server to the kubelet, as for any pod.
    wait_until("static pod logs", Duration::from_secs(20), &server, || {
        k.cmd(["logs", &mirror])
            .output()
            .stdout
            .starts_with(b"static-hello")
    });

    // Deleting the mirror pod only makes the kubelet create a new one; the static pod
    // keeps running.
    let first_uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    k.ok(["delete", "pod", &mirror, "--wait=false"]);
    wait_until("a new mirror pod", Duration::from_secs(30), &server, || {
        let out = k
            .cmd(["get", "pod", &mirror, "-o=jsonpath={.metadata.uid}"])
            .output();
        let uid = String::from_utf8_lossy(&out.stdout).to_string();
        out.status.success() && !uid.is_empty() && uid != first_uid
    });
    wait_phase(&server, &mirror, "Running", Duration::from_secs(30));
    let again = k.ok([
        "get",
        "pod",
        &mirror,
        "-o=jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    assert_eq!(again, container, "the static pod was not restarted");
    assert!(running_containers(&server)
        .iter()
        .any(|(name, _)| name == "web"));

    // Removing the file stops the pod and deletes the mirror (inotify: well before the
    // 20 s poll).
    std::fs::remove_file(&manifest).unwrap();
    let removed = Instant::now();
    wait_until(
        "mirror pod deleted",
        Duration::from_secs(15),
        &server,
        || !k.cmd(["get", "pod", &mirror]).output().status.success(),
    );
    wait_until(
        "static pod stopped",
        Duration::from_secs(15),
        &server,
        || running_containers(&server).is_empty(),
    );
    println!(
        "static pod: file removed -> stopped in {:?}",
        removed.elapsed()
    );
}

/// MemTotal in bytes, the node's memory capacity and allocatable.
fn mem_total() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn memory_pressure_evicts_best_effort_before_guaranteed() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    // `allocatableMemory.available` counts only the pods' working sets, so the pressure
    // comes from the test's pods rather than from whatever else the host runs: the
    // threshold sits 120 MiB below allocatable; the hog takes ~200 MiB.
    let threshold_mib = mem_total() / (1 << 20) - 120;
    let eviction = format!("allocatableMemory.available<{threshold_mib}Mi");
    let server = TestServer::start_up(&["--node-name", NODE, "--eviction-hard", &eviction]);
    let _cleanup =
        RemoveSandboxesOnFailure(server.data_dir().join("agent/containerd/containerd.sock"));
    server.wait_node_ready(NODE, Duration::from_secs(60));
    let k = server.with_version(KubectlVersion::V1_33);
    let pressure = |kind: &str| {
        k.ok([
            "get",
            "node",
            NODE,
            &format!("-o=jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}"),
        ])
    };
    assert_eq!(pressure("MemoryPressure"), "False");

    let pod = |name: &str, resources: &str, command: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"nodeName":"{NODE}","terminationGracePeriodSeconds":1,"containers":[{{"name":"{name}","image":"busybox","imagePullPolicy":"IfNotPresent","resources":{resources},"command":["sh","-c",{command:?}]}}]}}}}"#
        )
    };
    k.ok_stdin(
        ["create", "-f", "-"],
        &pod(
            "guaranteed",
            r#"{"requests":{"cpu":"100m","memory":"100Mi"},"limits":{"cpu":"100m","memory":"100Mi"}}"#,
            "sleep 3600; true",
        ),
    );
    wait_phase(&server, "guaranteed", "Running", Duration::from_secs(60));
    assert_eq!(
        k.ok(["get", "pod", "guaranteed", "-o=jsonpath={.status.qosClass}"]),
        "Guaranteed"
    );
    k.ok_stdin(
        ["create", "-f", "-"],
        &pod(
            "hog",
            "{}",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 3600; echo ${#x}",
        ),
    );
    let created = Instant::now();
    wait_phase(&server, "hog", "Failed", Duration::from_secs(90));
    println!("hog: created -> evicted in {:?}", created.elapsed());

    // The pod worker kills the evicted pod's container and reports it terminated.
    wait_until("the hog killed", Duration::from_secs(30), &server, || {
        k.get_json("pod", "hog", &[])["status"]["containerStatuses"][0]["state"]["terminated"]
            .is_object()
    });
    let hog = k.get_json("pod", "hog", &[]);
    assert_eq!(hog["status"]["reason"], "Evicted", "{hog}");
    let message = hog["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "The node was low on resource: memory. Threshold quantity: {threshold_mib}Mi, available: "
        )),
        "{message}"
    );
    assert!(
        message.contains("Container hog was using ")
            && message.ends_with(", request is 0, has larger consumption of memory. "),
        "{message}"
    );
    let conditions = hog["status"]["conditions"].as_array().unwrap();
    assert!(conditions.iter().any(|c| c["type"] == "DisruptionTarget"
        && c["status"] == "True"
        && c["reason"] == "TerminationByKubelet"));
    assert_eq!(
        hog["status"]["phase"], "Failed",
        "a pod never leaves a terminal phase"
    );
    let events = k.ok([
        "get",
        "events",
        "--field-selector=involvedObject.name=hog,reason=Evicted",
        "-o=jsonpath={.items[*].message}",
    ]);
    assert_eq!(events, message);

    // The node reports the pressure, and the node lifecycle controller taints it.
    assert_eq!(pressure("MemoryPressure"), "True");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let taints = k.ok(["get", "node", NODE, "-o=jsonpath={.spec.taints[*].key}"]);
        if taints.contains("node.kubernetes.io/memory-pressure") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no memory-pressure taint: {taints}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // With the hog gone the threshold is no longer crossed: the Guaranteed pod stays
    // through two more monitoring intervals.
    std::thread::sleep(Duration::from_secs(21));
    assert_eq!(
        k.ok(["get", "pod", "guaranteed", "-o=jsonpath={.status.phase}"]),
        "Running"
    );

    k.ok(["delete", "pod", "hog", "guaranteed", "--grace-period=1"]);
    wait_until("pods cleaned up", Duration::from_secs(30), &server, || {
        running_containers(&server).is_empty()
    });
}
