//! Hollow nodes and the node lifecycle: `k8rs hollow` registers nodes that the embedded
//! controllers give pod CIDRs, runs the pods bound to them, and when the process dies the
//! node lifecycle controller marks the nodes Unknown, taints them and evicts pods.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use k8rs_e2e::{wait_until, Kubectl, KubectlVersion, TestServer};
use serde_json::Value;

/// A short node-monitor grace period so a dead node shows within the test's patience.
const GRACE: (&str, &str) = ("K8RS_NODE_MONITOR_GRACE_PERIOD", "6s");

fn json(k: &Kubectl, args: &[&str]) -> Value {
    let out = k.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn pod_on(name: &str, node: &str, extra_spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"h"}}}},
            "spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"nginx:1.27",
            "readinessProbe":{{"httpGet":{{"port":80,"path":"/"}},"periodSeconds":1}}}}]{extra_spec}}}}}"#
    )
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let (net, len): (Ipv4Addr, u32) = (net.parse().unwrap(), len.parse().unwrap());
    let ip: Ipv4Addr = ip.parse().unwrap();
    let mask = u32::MAX << (32 - len);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Waits for `count` nodes named `prefix…` to be Ready with a pod CIDR each.
fn wait_nodes_ready(k: &Kubectl, prefix: &str, count: usize) -> Value {
    wait_until(Duration::from_secs(60), "hollow nodes Ready", || {
        let nodes = json(k, &["get", "nodes", "-o", "json"]);
        let ready = nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["metadata"]["name"].as_str().unwrap().starts_with(prefix))
            .filter(|n| condition(n, "Ready").is_some_and(|c| c["status"] == "True"))
            .filter(|n| n["spec"]["podCIDR"].is_string())
            .count();
        if ready == count {
            Ok(nodes)
        } else {
            Err(format!("{ready}/{count} Ready with a pod CIDR"))
        }
    })
}

#[test]
fn hollow_nodes_register_run_pods_and_honour_grace_periods() {
    let server = TestServer::start_with_env(&[], &[GRACE]);
    let _hollow = server.spawn_k8rs(&["hollow", "--nodes", "10", "--stop-delay", "1h"]);
    let k = server.with_version(KubectlVersion::V1_33);

    let nodes = wait_nodes_ready(&k, "hollow-", 10);
    let table = k.ok(["get", "nodes"]);
    assert_eq!(table.matches(" Ready ").count(), 10, "{table}");
    let node0 = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == "hollow-0")
        .unwrap()
        .clone();
    assert_eq!(
        node0["metadata"]["labels"]["kubernetes.io/hostname"],
        "hollow-0"
    );
    assert_eq!(node0["metadata"]["labels"]["kubernetes.io/os"], "linux");
    assert_eq!(node0["status"]["capacity"]["pods"], "110");
    assert_eq!(
        node0["status"]["nodeInfo"]["kubeletVersion"],
        "v1.33.0-k8rs"
    );
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(
            condition(&node0, kind).unwrap()["status"],
            "False",
            "{kind}"
        );
    }
    let mut cidrs: Vec<String> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["spec"]["podCIDR"].as_str().unwrap().to_string())
        .collect();
    cidrs.sort();
    cidrs.dedup();
    assert_eq!(
        cidrs.len(),
        10,
        "every node has its own pod CIDR: {cidrs:?}"
    );
    assert!(
        cidrs
            .iter()
            .all(|c| c.starts_with("10.42.") && c.ends_with(".0/24")),
        "{cidrs:?}"
    );
    let leases = k.ok(["get", "leases", "-n", "kube-node-lease", "-o", "name"]);
    assert_eq!(
        leases.lines().filter(|l| l.contains("hollow-")).count(),
        10,
        "{leases}"
    );

    // Pods bound to nodes (no scheduler here) run, get ready and get an address from
    // their node's pod CIDR.
    for i in 0..4 {
        k.ok_stdin(
            ["create", "-f", "-"],
            &pod_on(&format!("p{i}"), &format!("hollow-{}", i % 2), ""),
        );
    }
    for i in 0..4 {
        let name = format!("p{i}");
        let pod = wait_until(Duration::from_secs(30), "pod Running and Ready", || {
            let pod = json(&k, &["get", "pod", &name, "-o", "json"]);
            let ready = condition(&pod, "Ready").is_some_and(|c| c["status"] == "True");
            if pod["status"]["phase"] == "Running" && ready {
                Ok(pod)
            } else {
                Err(pod["status"].to_string())
            }
        });
        let node = pod["spec"]["nodeName"].as_str().unwrap();
        let cidr = k.ok(["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]);
        let ip = pod["status"]["podIP"].as_str().unwrap();
        assert!(in_cidr(ip, &cidr), "{ip} in {cidr}");
        assert_eq!(pod["status"]["podIPs"][0]["ip"], ip);
        assert!(pod["status"]["hostIP"].is_string());
        assert!(pod["status"]["startTime"].is_string());
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        let cs = &pod["status"]["containerStatuses"][0];
        assert_eq!(
            (cs["ready"].as_bool(), cs["restartCount"].as_i64()),
            (Some(true), Some(0))
        );
        assert!(cs["state"]["running"]["startedAt"].is_string());
        for kind in [
            "PodReadyToStartContainers",
            "Initialized",
            "ContainersReady",
            "PodScheduled",
        ] {
            assert_eq!(condition(&pod, kind).unwrap()["status"], "True", "{kind}");
        }
        // DefaultTolerationSeconds admission.
        let tolerations = pod["spec"]["tolerations"].to_string();
        assert!(
            tolerations.contains(r#""key":"node.kubernetes.io/unreachable""#),
            "{tolerations}"
        );
        assert!(
            tolerations.contains(r#""tolerationSeconds":300"#),
            "{tolerations}"
        );
    }
    let wide = k.ok(["get", "pods", "-o", "wide"]);
    assert_eq!(wide.matches("Running").count(), 4, "{wide}");

    // Deletion honours the grace period: the simulated containers ignore SIGTERM
    // (--stop-delay 1h), so the pod goes only when they are killed after 3 s.
    let started = Instant::now();
    k.ok(["delete", "pod", "p0", "--grace-period=3", "--wait=false"]);
    std::thread::sleep(Duration::from_millis(1500));
    let terminating = k.ok(["get", "pod", "p0"]);
    assert!(terminating.contains("Terminating"), "{terminating}");
    wait_until(Duration::from_secs(30), "pod p0 gone", || {
        let out = k.cmd(["get", "pod", "p0"]).output();
        if out.status.success() {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Ok(())
        }
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "gone after {took:?}, before its grace period"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // cordon / uncordon with both kubectl versions: the unschedulable taint follows.
    for version in KubectlVersion::ALL {
        let k = server.with_version(version);
        k.ok(["cordon", "hollow-5"]);
        wait_until(Duration::from_secs(15), "unschedulable taint", || {
            let taints = k.ok(["get", "node", "hollow-5", "-o", "jsonpath={.spec.taints}"]);
            if taints.contains(r#""key":"node.kubernetes.io/unschedulable""#)
                && taints.contains("NoSchedule")
            {
                Ok(())
            } else {
                Err(taints)
            }
        });
        assert!(k
            .ok(["get", "node", "hollow-5"])
            .contains("Ready,SchedulingDisabled"));
        k.ok(["uncordon", "hollow-5"]);
        wait_until(
            Duration::from_secs(15),
            "unschedulable taint removed",
            || {
                let taints = k.ok(["get", "node", "hollow-5", "-o", "jsonpath={.spec.taints}"]);
                if taints.contains("unschedulable") {
                    Err(taints)
                } else {
                    Ok(())
                }
            },
        );
    }

    // drain evicts the node's pods through pods/eviction; the hollow kubelet stops them
    // (killed after their 1 s grace period) and releases the objects.
    for name in ["d1", "d2"] {
        k.ok_stdin(
            ["create", "-f", "-"],
            &pod_on(name, "hollow-7", r#","terminationGracePeriodSeconds":1"#),
        );
    }
    wait_until(Duration::from_secs(30), "drain pods running", || {
        let out = k.ok(["get", "pods", "d1", "d2", "--no-headers"]);
        if out.matches("Running").count() == 2 {
            Ok(())
        } else {
            Err(out)
        }
    });
    let out = k.ok(["drain", "hollow-7", "--force", "--timeout=60s"]);
    assert!(
        out.contains("pod/d1 evicted") && out.contains("pod/d2 evicted"),
        "{out}"
    );
    assert!(out.contains("node/hollow-7 drained"), "{out}");
    let left = k.ok(["get", "pods", "-o", "name"]);
    assert!(
        !left.contains("pod/d1") && !left.contains("pod/d2"),
        "{left}"
    );
    assert!(k
        .ok(["get", "node", "hollow-7"])
        .contains("SchedulingDisabled"));
}

#[test]
fn dead_hollow_nodes_become_unknown_get_tainted_and_pods_are_evicted() {
    // Upstream's timings: node-monitor-grace-period 50 s, node-monitor-period 5 s, the
    // kubelet renewing its Lease every 10 s.
    let server = TestServer::start();
    // Two zones: zone a stays up, so losing zone b is not a cluster-wide outage (which
    // would stop all evictions, as upstream's "master disruption mode").
    let _alive = server.spawn_k8rs(&[
        "hollow",
        "--nodes",
        "3",
        "--prefix",
        "a-",
        "--node-labels",
        "topology.kubernetes.io/zone=a",
    ]);
    let mut doomed = server.spawn_k8rs(&[
        "hollow",
        "--nodes",
        "2",
        "--prefix",
        "b-",
        "--node-labels",
        "topology.kubernetes.io/zone=b",
    ]);
    let k = server.with_version(KubectlVersion::V1_33);
    wait_nodes_ready(&k, "a-", 3);
    wait_nodes_ready(&k, "b-", 2);

    let short = r#","tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":2}]"#;
    k.ok_stdin(["create", "-f", "-"], &pod_on("short", "b-0", short));
    k.ok_stdin(["create", "-f", "-"], &pod_on("default", "b-0", ""));
    k.ok_stdin(["create", "-f", "-"], &pod_on("safe", "a-0", short));
    wait_until(Duration::from_secs(30), "pods running", || {
        let out = k.ok(["get", "pods", "--no-headers"]);
        if out.matches("Running").count() == 3 {
            Ok(())
        } else {
            Err(out)
        }
    });

    let killed = Instant::now();
    doomed.kill();
    let mut unknown_after = Vec::new();
    for node in ["b-0", "b-1"] {
        let status = wait_until(Duration::from_secs(90), "node NotReady", || {
            let n = json(&k, &["get", "node", node, "-o", "json"]);
            match condition(&n, "Ready") {
                Some(c) if c["status"] == "Unknown" => Ok(n),
                other => Err(format!("{other:?}")),
            }
        });
        unknown_after.push(killed.elapsed());
        for kind in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = condition(&status, kind).unwrap();
            assert_eq!(c["status"], "Unknown", "{kind}");
            assert_eq!(c["reason"], "NodeStatusUnknown", "{kind}");
            assert_eq!(
                c["message"], "Kubelet stopped posting node status.",
                "{kind}"
            );
        }
    }
    // The last renewal was at most 10 s before the kill; the controller notices 50 s after
    // it saw that renewal, at its next 5 s tick (plus slack for a loaded debug build).
    // (The second node may only be looked at once the first is seen.)
    assert!(
        unknown_after[0] >= Duration::from_secs(39) && unknown_after[1] < Duration::from_secs(70),
        "Unknown {unknown_after:?} after the kill; upstream: 40-55 s"
    );
    eprintln!("nodes Unknown {unknown_after:?} after their hollow process was killed");
    let table = k.ok(["get", "nodes", "b-0", "b-1"]);
    assert_eq!(table.matches("NotReady").count(), 2, "{table}");

    // Both unreachable taints; the NoExecute ones one node at a time (0.1 node/s).
    for node in ["b-0", "b-1"] {
        wait_until(Duration::from_secs(40), "unreachable taints", || {
            let taints = k.ok(["get", "node", node, "-o", "jsonpath={.spec.taints}"]);
            let has = |effect: &str| {
                taints.contains(&format!(
                    r#""effect":"{effect}","key":"node.kubernetes.io/unreachable""#
                ))
            };
            if has("NoSchedule") && has("NoExecute") {
                Ok(())
            } else {
                Err(taints)
            }
        });
    }
    let a0 = k.ok(["get", "node", "a-0", "-o", "jsonpath={.spec.taints}"]);
    assert!(
        !a0.contains("unreachable"),
        "the live zone is untouched: {a0}"
    );

    // The pod tolerating unreachable for 2 s is evicted; the one with the default 300 s
    // and the one on a live node stay.
    let evicted = wait_until(
        Duration::from_secs(30),
        "short-toleration pod evicted",
        || {
            let pod = json(&k, &["get", "pod", "short", "-o", "json"]);
            if pod["metadata"]["deletionTimestamp"].is_string() {
                Ok(pod)
            } else {
                Err(pod["status"].to_string())
            }
        },
    );
    let disruption = condition(&evicted, "DisruptionTarget").expect("DisruptionTarget condition");
    assert_eq!(disruption["reason"], "DeletionByTaintManager");
    assert_eq!(
        condition(&evicted, "Ready").unwrap()["status"],
        "False",
        "marked not ready"
    );
    for name in ["default", "safe"] {
        let pod = json(&k, &["get", "pod", name, "-o", "json"]);
        assert!(
            pod["metadata"]["deletionTimestamp"].is_null(),
            "{name} was evicted"
        );
    }
    let events = k.ok([
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=short",
    ]);
    assert!(events.contains("TaintManagerEviction"), "{events}");
}

/// The issue's scale acceptance: 100 hollow nodes, a 1,000-replica Deployment fully
/// Running, spread evenly. Upstream's default scoring (PodTopologySpread's system default
/// constraint on `kubernetes.io/hostname`, weight 2, plus LeastAllocated) sends each pod
/// to a node with the fewest replicas while all 100 nodes are scored (below 100 nodes
/// percentageOfNodesToScore keeps them all), so no node may hold more than one pod more
/// than another.
#[test]
fn a_thousand_replicas_on_a_hundred_hollow_nodes_run_spread_evenly() {
    const NODES: usize = 100;
    const REPLICAS: usize = 1000;
    // Without leader election: under this burst the debug-build API server on a shared
    // CI box answers a Lease renewal in 5-10 s, near the 10 s renew deadline, and a
    // component that loses its lease exits (as upstream's do; upstream shields lease
    // requests with API Priority and Fairness, which k8rs's API server lacks so far).
    let server = TestServer::start_with_args(&["--leader-elect=false"]);
    let _hollow = server.spawn_k8rs(&["hollow", "--nodes", "100", "--prefix", "scale-"]);
    let k = server.with_version(KubectlVersion::V1_33);
    let started = Instant::now();
    wait_until(Duration::from_secs(90), "100 hollow nodes Ready", || {
        let out = k.ok([
            "get",
            "nodes",
            "--no-headers",
            "-o",
            "custom-columns=R:.status.conditions[?(@.type==\"Ready\")].status,T:.spec.taints",
        ]);
        let ready = out
            .lines()
            .filter(|l| l.starts_with("True") && l.trim_end().ends_with("<none>"))
            .count();
        if ready == NODES {
            Ok(())
        } else {
            Err(format!("{ready}/{NODES} Ready and untainted"))
        }
    });
    let nodes_ready = started.elapsed();

    k.ok_stdin(
        ["apply", "-f", "-"],
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"big"},
            "spec":{"replicas":1000,"selector":{"matchLabels":{"app":"big"}},
              "template":{"metadata":{"labels":{"app":"big"}},
                "spec":{"containers":[{"name":"c","image":"nginx:1.27",
                  "resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}"#,
    );
    let created = Instant::now();
    wait_until(Duration::from_secs(200), "1,000 replicas available", || {
        let status = k.ok([
            "get",
            "deployment",
            "big",
            "-o",
            "jsonpath={.status.availableReplicas}/{.status.updatedReplicas}",
        ]);
        if status == format!("{REPLICAS}/{REPLICAS}") {
            Ok(())
        } else {
            Err(status)
        }
    });
    let available = created.elapsed();

    let out = k.ok([
        "get",
        "pods",
        "-l",
        "app=big",
        "--no-headers",
        "-o",
        "custom-columns=N:.spec.nodeName,P:.status.phase",
    ]);
    let mut per_node = std::collections::BTreeMap::<String, usize>::new();
    let mut running = 0;
    for line in out.lines() {
        let mut cols = line.split_whitespace();
        let (node, phase) = (cols.next().unwrap(), cols.next().unwrap());
        *per_node.entry(node.to_string()).or_default() += 1;
        running += usize::from(phase == "Running");
    }
    assert_eq!(running, REPLICAS, "{out}");
    assert_eq!(per_node.len(), NODES, "every node got pods: {per_node:?}");
    let (min, max) = (
        *per_node.values().min().unwrap(),
        *per_node.values().max().unwrap(),
    );
    assert!(max - min <= 1, "uneven spread {min}..{max}: {per_node:?}");
    eprintln!(
        "100 nodes Ready after {:.1} s; 1,000 replicas available {:.1} s after the Deployment; {min}..{max} pods per node",
        nodes_ready.as_secs_f64(),
        available.as_secs_f64()
    );
}
