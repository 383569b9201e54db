//! Pods on a real node (`k8rs up`, containerd), as a user sees them with kubectl:
//! liveness restarts with crash-loop back-off, readiness toggling, init containers in
//! order, OOMKilled, Completed and Error under `restartPolicy: Never`, preStop hooks and
//! the grace period, cgroup limits and OOM scores from requests and limits, image pull
//! policies with `ErrImagePull`/`ImagePullBackOff` and their events, a Deployment of 20
//! replicas through the scheduler, and nothing left behind once everything is deleted.
//! Needs root and the host packages; prints `SKIP: …` otherwise.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8rs_e2e::{eventually, node, Kubectl, KubectlVersion, TestServer};
use k8rs_kubelet::cri::CriRuntime;
use k8rs_kubelet::runtime::Runtime;
use serde_json::Value;

const NODE: &str = "k8rs-e2e-pods";

/// Starts `k8rs up` and waits for the node; `None` (after printing SKIP) without root or
/// the host packages.
fn start() -> Option<(TestServer, RemoveSandboxes)> {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return None;
    }
    let server = TestServer::start_up(&["--node-name", NODE]);
    let cleanup = RemoveSandboxes(server.data_dir().join("agent/containerd/containerd.sock"));
    server.wait_node_ready(NODE, Duration::from_secs(60));
    Some((server, cleanup))
}

fn pod_json(k: &Kubectl<'_>, name: &str) -> Value {
    k.get_json("pod", name, &[])
}

fn phase(k: &Kubectl<'_>, name: &str) -> String {
    k.ok(["get", "pod", name, "-o=jsonpath={.status.phase}"])
}

/// The STATUS column of `kubectl get pod NAME`.
fn status_column(k: &Kubectl<'_>, name: &str) -> String {
    let out = k.ok(["get", "pod", name, "--no-headers"]);
    out.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn wait_phase(k: &Kubectl<'_>, name: &str, want: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while phase(k, name) != want {
        assert!(
            Instant::now() < deadline,
            "pod {name} not {want} after {timeout:?}:\n{}\n--- server log (tail) ---\n{}",
            k.ok(["get", "pod", name, "-o", "yaml"]),
            tail(&k.server().log(), 60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn events_of(k: &Kubectl<'_>, pod: &str) -> Vec<(String, String, String)> {
    let list: Value = serde_json::from_str(&k.ok([
        "get",
        "events",
        "-o",
        "json",
        &format!("--field-selector=involvedObject.name={pod}"),
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has_event(events: &[(String, String, String)], reason: &str, message_part: &str) -> bool {
    events
        .iter()
        .any(|(_, r, m)| r == reason && m.contains(message_part))
}

fn rfc3339_secs(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .as_second()
}

/// Deletes every pod in `default`, then checks that no container, sandbox, cgroup of
/// these pods or veth is left on the node.
fn delete_all_and_assert_clean(server: &TestServer, k: &Kubectl<'_>) {
    let uids = k.ok(["get", "pods", "-o=jsonpath={.items[*].metadata.uid}"]);
    assert!(!uids.trim().is_empty(), "the test left no pods to delete");
    k.ok(["delete", "deployments", "--all", "--cascade=foreground"]);
    k.ok(["delete", "pods", "--all", "--grace-period=1"]);
    eventually(Duration::from_secs(60), "every pod gone", || {
        k.ok(["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
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
    // Only this test's pods: other suites on this host may have left theirs.
    let cgroups: Vec<_> = uids
        .split_whitespace()
        .flat_map(|uid| node::pod_cgroups(&format!("pod{uid}")))
        .collect();
    assert!(cgroups.is_empty(), "pod cgroups left: {cgroups:?}");
    let bridge = server.cni_bridge().unwrap();
    let veths = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(veths, 0, "veths left on {bridge}");
}

const LIVENESS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    livenessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
      failureThreshold: 1
"#;

const LIFECYCLE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: first, image: busybox, command: [sh, -c, "sleep 2; echo first done"]}
  - {name: second, image: busybox, command: [sh, -c, "sleep 2; echo second done"]}
  containers:
  - {name: app, image: busybox, command: [sh, -c, "echo app started; sleep 3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    # The allocation waits a second: containerd's shim watches a container's cgroup for
    # OOM events only once the task has started, and an instant OOM kill goes unseen.
    command: [sh, -c, "sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1"]
    resources: {limits: {memory: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: app, image: busybox, command: [sh, -c, "exit 0"]}
---
apiVersion: v1
kind: Pod
metadata: {name: fail}
spec:
  nodeName: NODE
  restartPolicy: Never
  containers:
  - {name: app, image: busybox, command: [sh, -c, "exit 1"]}
"#;

#[test]
fn probes_restarts_init_containers_oom_and_exits() {
    let Some((server, _cleanup)) = start() else {
        return;
    };
    let k = server.with_version(KubectlVersion::V1_33);
    k.ok_stdin(["apply", "-f", "-"], &LIFECYCLE.replace("NODE", NODE));

    // restartPolicy Never: exit 0 is Completed/Succeeded, exit 1 is Error/Failed.
    wait_phase(&k, "done", "Succeeded", Duration::from_secs(60));
    assert_eq!(status_column(&k, "done"), "Completed");
    wait_phase(&k, "fail", "Failed", Duration::from_secs(30));
    assert_eq!(status_column(&k, "fail"), "Error");
    let fail = pod_json(&k, "fail");
    assert_eq!(
        fail["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        1
    );

    // A memory limit exceeded: OOMKilled.
    wait_phase(&k, "oom", "Failed", Duration::from_secs(30));
    let oom = pod_json(&k, "oom");
    let terminated = &oom["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "OOMKilled", "{oom:#}");
    assert_eq!(terminated["exitCode"], 137, "{oom:#}");
    assert_eq!(status_column(&k, "oom"), "OOMKilled");

    // Init containers ran one after the other, before the app.
    wait_phase(&k, "init", "Running", Duration::from_secs(30));
    let init = pod_json(&k, "init");
    let inits = init["status"]["initContainerStatuses"].as_array().unwrap();
    let first = &inits[0]["state"]["terminated"];
    let second = &inits[1]["state"]["terminated"];
    let app = &init["status"]["containerStatuses"][0]["state"]["running"];
    assert_eq!(
        (first["reason"].as_str(), second["reason"].as_str()),
        (Some("Completed"), Some("Completed"))
    );
    assert!(
        rfc3339_secs(&first["finishedAt"]) <= rfc3339_secs(&second["startedAt"])
            && rfc3339_secs(&second["startedAt"]) > rfc3339_secs(&first["startedAt"])
            && rfc3339_secs(&second["finishedAt"]) <= rfc3339_secs(&app["startedAt"]),
        "init containers out of order: {:#}",
        init["status"]
    );
    assert_eq!(k.ok(["logs", "init", "-c", "first"]), "first done\n");
    assert_eq!(k.ok(["logs", "init", "-c", "second"]), "second done\n");

    // A readiness probe toggles Ready with the file it checks.
    wait_phase(&k, "ready", "Running", Duration::from_secs(30));
    let ready = || {
        k.ok([
            "get",
            "pod",
            "ready",
            r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ])
    };
    assert_eq!(ready(), "False");
    k.ok(["exec", "ready", "--", "touch", "/tmp/ready"]);
    eventually(Duration::from_secs(10), "ready turns Ready", || {
        (ready() == "True").then_some(())
    });
    assert_eq!(
        k.ok(["get", "pod", "ready", "--no-headers"])
            .split_whitespace()
            .nth(1),
        Some("1/1")
    );
    k.ok(["exec", "ready", "--", "rm", "/tmp/ready"]);
    eventually(Duration::from_secs(10), "ready turns unready", || {
        (ready() == "False").then_some(())
    });
    let events = events_of(&k, "ready");
    assert!(
        has_event(
            &events,
            "Unhealthy",
            "Readiness probe failed: cat: can't open '/tmp/ready': No such file or directory"
        ),
        "{events:?}"
    );

    // A failing liveness probe restarts the container, further apart each time
    // (crash-loop back-off 10 s, 20 s, …), and the pod shows CrashLoopBackOff meanwhile.
    k.ok_stdin(["apply", "-f", "-"], &LIVENESS.replace("NODE", NODE));
    let mut starts: Vec<(i64, i64)> = Vec::new(); // (restartCount, startedAt)
    let mut crash_loop_seen = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    while starts.last().is_none_or(|(count, _)| *count < 3) {
        assert!(
            Instant::now() < deadline,
            "live restarted {starts:?} only:\n{}",
            k.ok(["get", "pod", "live", "-o", "yaml"])
        );
        let live = pod_json(&k, "live");
        let st = &live["status"]["containerStatuses"][0];
        let count = st["restartCount"].as_i64().unwrap_or(0);
        if let Some(started) = st["state"]["running"]["startedAt"].as_str() {
            let at = rfc3339_secs(&Value::String(started.into()));
            if starts.last().is_none_or(|(c, _)| *c < count) {
                starts.push((count, at));
            }
        }
        crash_loop_seen |= st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            && status_column(&k, "live") == "CrashLoopBackOff";
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        crash_loop_seen,
        "CrashLoopBackOff never shown; starts {starts:?}"
    );
    let counts: Vec<i64> = starts.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        counts,
        [0, 1, 2, 3],
        "every instance seen running: {starts:?}"
    );
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    println!("liveness restarts (restartCount, startedAt): {starts:?}, gaps {gaps:?}");
    // The first restart is immediate; then 10 s, then 20 s of back-off after each exit.
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2] && gaps[1] >= 10 && gaps[2] >= 20,
        "restarts must spread out with the back-off: {starts:?}, gaps {gaps:?}"
    );
    let events = events_of(&k, "live");
    assert!(
        has_event(&events, "Unhealthy", "Liveness probe failed: "),
        "{events:?}"
    );
    assert!(
        has_event(
            &events,
            "Killing",
            "Container app failed liveness probe, will be restarted"
        ),
        "{events:?}"
    );
    assert!(
        has_event(
            &events,
            "BackOff",
            "Back-off restarting failed container app in pod live_default("
        ),
        "{events:?}"
    );

    // preStop runs on deletion, and a container that ignores SIGTERM is killed at the end
    // of the grace period.
    k.ok_stdin(
        ["apply", "-f", "-"],
        &r#"
apiVersion: v1
kind: Pod
metadata: {name: stop}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 6
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    lifecycle:
      preStop:
        exec: {command: [sh, -c, "echo prestop ran > /proc/1/fd/1"]}
"#
        .replace("NODE", NODE),
    );
    wait_phase(&k, "stop", "Running", Duration::from_secs(30));
    let mut follow = k.spawn(["logs", "-f", "stop"]);
    std::thread::sleep(Duration::from_millis(500));
    let deleting = Instant::now();
    k.ok(["delete", "pod", "stop"]);
    let took = deleting.elapsed();
    let logs = follow.wait_for_stdout(Duration::from_secs(5), |o| o.contains("prestop ran"));
    assert!(logs.contains("prestop ran"), "{logs}");
    println!("pod with a 6 s grace period that ignores SIGTERM deleted in {took:?}");
    assert!(
        took >= Duration::from_secs(6) && took <= Duration::from_secs(12),
        "deletion took {took:?} with terminationGracePeriodSeconds 6"
    );

    delete_all_and_assert_clean(&server, &k);
}

/// The container's cgroup file `name` (v1 `memory/…` or `cpu/…` hierarchy, or v2).
fn cgroup_file(pod_uid: &str, container_id: &str, controller: &str, name: &str) -> PathBuf {
    let id = container_id.trim_start_matches("containerd://");
    for qos in ["", "burstable", "besteffort"] {
        for root in [
            format!("/sys/fs/cgroup/{controller}"),
            "/sys/fs/cgroup".to_string(),
            "/sys/fs/cgroup/unified".to_string(),
        ] {
            let path = PathBuf::from(&root)
                .join("kubepods")
                .join(qos)
                .join(format!("pod{pod_uid}"))
                .join(id)
                .join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("no cgroup file {name} for container {id} of pod {pod_uid}");
}

fn read_trimmed(path: &PathBuf) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_pull_policies_and_image_errors() {
    let Some((server, _cleanup)) = start() else {
        return;
    };
    let k = server.with_version(KubectlVersion::V1_33);
    let on_node = format!(
        r#"--overrides={{"apiVersion":"v1","spec":{{"nodeName":"{NODE}","terminationGracePeriodSeconds":1}}}}"#
    );

    // Air-gapped busybox with `:latest` (Always): the pull fails offline, the imported
    // image runs.
    k.ok([
        "run",
        "t",
        "--image=busybox",
        &on_node,
        "--",
        "sleep",
        "3600",
    ]);
    // A registry that does not exist: ErrImagePull, then ImagePullBackOff.
    k.ok(["run", "nope", "--image=registry.invalid/nope:1", &on_node]);
    // Never with an absent image.
    k.ok([
        "run",
        "never",
        "--image=absent.invalid/x:1",
        "--image-pull-policy=Never",
        &on_node,
    ]);
    // Requests and limits.
    k.ok_stdin(
        ["apply", "-f", "-"],
        &r#"
apiVersion: v1
kind: Pod
metadata: {name: limits}
spec:
  nodeName: NODE
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    resources:
      requests: {cpu: 250m, memory: 32Mi}
      limits: {cpu: 500m, memory: 64Mi}
"#
        .replace("NODE", NODE),
    );

    // The API server defaulted the policies from the tags.
    let policy = |pod: &str| {
        k.ok([
            "get",
            "pod",
            pod,
            "-o=jsonpath={.spec.containers[0].imagePullPolicy}",
        ])
    };
    assert_eq!(policy("t"), "Always");
    assert_eq!(policy("nope"), "IfNotPresent");

    wait_phase(&k, "t", "Running", Duration::from_secs(60));
    let events = events_of(&k, "t");
    assert!(
        has_event(&events, "Pulling", "Pulling image \"busybox:latest\""),
        "{events:?}"
    );
    assert!(
        has_event(
            &events,
            "Failed",
            "Failed to pull image \"busybox:latest\": "
        ),
        "{events:?}"
    );
    assert!(
        has_event(
            &events,
            "Pulled",
            "Container image \"busybox\" already present on machine"
        ),
        "{events:?}"
    );

    let mut seen = Vec::new();
    eventually(
        Duration::from_secs(40),
        "nope shows ErrImagePull then ImagePullBackOff",
        || {
            let status = status_column(&k, "nope");
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            let first_pull = seen.iter().position(|s| s == "ErrImagePull");
            let backoff = seen.iter().rposition(|s| s == "ImagePullBackOff");
            match (first_pull, backoff) {
                (Some(a), Some(b)) if a < b => Some(()),
                _ => None,
            }
        },
    );
    println!("nope went through {seen:?}");
    // The back-off's message carries the last pull error (upstream 1.32+).
    let waiting = eventually(Duration::from_secs(40), "nope's back-off message", || {
        let nope = pod_json(&k, "nope");
        let waiting = nope["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (waiting["reason"] == "ImagePullBackOff").then_some(waiting)
    });
    assert_eq!(phase(&k, "nope"), "Pending");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Back-off pulling image \"registry.invalid/nope:1\": ErrImagePull: "),
        "{waiting}"
    );
    let events = events_of(&k, "nope");
    for (reason, message) in [
        ("Pulling", "Pulling image \"registry.invalid/nope:1\""),
        (
            "Failed",
            "Failed to pull image \"registry.invalid/nope:1\": ",
        ),
        ("Failed", "Error: ErrImagePull"),
        (
            "BackOff",
            "Back-off pulling image \"registry.invalid/nope:1\"",
        ),
        ("Failed", "Error: ImagePullBackOff"),
    ] {
        assert!(
            has_event(&events, reason, message),
            "{reason} {message}: {events:?}"
        );
    }
    assert!(events
        .iter()
        .any(|(t, r, _)| t == "Warning" && r == "Failed"));

    eventually(
        Duration::from_secs(20),
        "never shows ErrImageNeverPull",
        || (status_column(&k, "never") == "ErrImageNeverPull").then_some(()),
    );
    assert!(has_event(
        &events_of(&k, "never"),
        "ErrImageNeverPull",
        "Container image \"absent.invalid/x:1\" is not present with pull policy of Never"
    ));

    // cgroup limits and the OOM score from requests and limits.
    wait_phase(&k, "limits", "Running", Duration::from_secs(30));
    let pod = pod_json(&k, "limits");
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let id = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap();
    let memory = if PathBuf::from("/sys/fs/cgroup/memory").is_dir() {
        read_trimmed(&cgroup_file(uid, id, "memory", "memory.limit_in_bytes"))
    } else {
        read_trimmed(&cgroup_file(uid, id, "memory", "memory.max"))
    };
    assert_eq!(memory, (64u64 << 20).to_string());
    if PathBuf::from("/sys/fs/cgroup/cpu").is_dir() {
        assert_eq!(
            read_trimmed(&cgroup_file(uid, id, "cpu", "cpu.shares")),
            "256"
        );
        assert_eq!(
            read_trimmed(&cgroup_file(uid, id, "cpu", "cpu.cfs_quota_us")),
            "50000"
        );
        assert_eq!(
            read_trimmed(&cgroup_file(uid, id, "cpu", "cpu.cfs_period_us")),
            "100000"
        );
    }
    let capacity = k.ok(["get", "node", NODE, "-o=jsonpath={.status.capacity.memory}"]);
    let capacity: i64 = match capacity.strip_suffix("Ki") {
        Some(ki) => ki.parse::<i64>().unwrap() * 1024,
        None => capacity.parse().unwrap(),
    };
    let expected = (1000 - 1000 * (32i64 << 20) / capacity).clamp(3, 999);
    assert_eq!(
        k.ok(["exec", "limits", "--", "cat", "/proc/1/oom_score_adj"])
            .trim(),
        expected.to_string()
    );

    delete_all_and_assert_clean(&server, &k);
}

#[test]
fn a_deployment_of_20_comes_up_and_everything_goes_away() {
    let Some((server, _cleanup)) = start() else {
        return;
    };
    let k = server.with_version(KubectlVersion::V1_33);
    k.ok([
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=20",
        "--",
        "sleep",
        "3600",
    ]);
    let started = Instant::now();
    eventually(Duration::from_secs(120), "20 pods Running", || {
        let phases = k.ok([
            "get",
            "pods",
            "-l",
            "app=web",
            "-o=jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
        ]);
        let running = phases.lines().filter(|p| *p == "Running").count();
        if running == 20 {
            Ok(())
        } else {
            Err(format!("{running} Running"))
        }
    });
    println!("20 replicas Running in {:?}", started.elapsed());
    let nodes = k.ok([
        "get",
        "pods",
        "-l",
        "app=web",
        "-o=jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    ]);
    assert!(nodes.lines().all(|n| n == NODE), "{nodes}");
    assert_eq!(
        k.ok([
            "get",
            "deployment",
            "web",
            "-o=jsonpath={.status.readyReplicas}"
        ]),
        "20"
    );
    delete_all_and_assert_clean(&server, &k);
}

/// Containers outlive `k8rs up` by design: stop and remove this test's sandboxes through
/// CRI at the end, whether it passed or not, so no container or veth outlives the test.
struct RemoveSandboxes(std::path::PathBuf);

impl Drop for RemoveSandboxes {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Runtime::new() else {
            return;
        };
        rt.block_on(async {
            let Ok(cri) = CriRuntime::connect(&self.0) else {
                return;
            };
            for sandbox in cri.list_pod_sandboxes().await.unwrap_or_default() {
                let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                let _ = cri.remove_pod_sandbox(&sandbox.id).await;
            }
        });
    }
}
