//! The scheduler embedded in `k8rs server` (and `k8rs scheduler` on its own): pods land on
//! nodes registered through the API as a kubelet would register them (there is no
//! kubelet here), following node selectors, affinity, spread constraints, taints and
//! resources; unschedulable pods get upstream's condition and events; higher priority
//! pods preempt lower ones.

mod common;

use std::time::Duration;

use common::{fake_node, wait_until};
use k8rs_e2e::{assert_contains, kubectl_tests, run_with_kubectl, Kubectl, KubectlVersion};

const WAIT: Duration = Duration::from_secs(30);

/// A pod named `name` with `labels`, a 100m/64Mi container (or `cpu`), and `extra` spec
/// YAML (indented for the spec block).
fn pod(name: &str, labels: &str, cpu: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: registry.k8s.io/pause:3.10\n    resources:\n      requests: {{cpu: \"{cpu}\", memory: 64Mi}}\n{extra}"
    )
}

fn node_of(k: &Kubectl<'_>, pod: &str) -> String {
    let out = wait_until(
        k,
        &["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"],
        WAIT,
        |o| !o.trim().is_empty(),
    );
    out.trim().to_string()
}

fn nodes_of(k: &Kubectl<'_>, pods: &[&str]) -> Vec<String> {
    pods.iter().map(|p| node_of(k, p)).collect()
}

/// Waits for the `FailedScheduling` message of `pod` and returns it.
fn failed_scheduling(k: &Kubectl<'_>, pod: &str) -> String {
    let selector = format!("involvedObject.name={pod},reason=FailedScheduling");
    wait_until(
        k,
        &[
            "get",
            "events",
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={.items[*].message}",
        ],
        WAIT,
        |o| !o.trim().is_empty(),
    )
}

fn apply(k: &Kubectl<'_>, manifest: &str) {
    k.ok_stdin(["apply", "-f", "-"], manifest);
}

kubectl_tests! {
    /// A pod too big for every node stays Pending with `PodScheduled=False` (reason
    /// `Unschedulable`) and a `FailedScheduling` event in upstream's words, shown by
    /// `describe` and `get events`; a node that fits, once added, gets it.
    fn insufficient_resources_pending_until_a_node_fits(k) {
        fake_node(k, "small-1", "1", "2Gi", &[], "[]");
        fake_node(k, "small-2", "1", "2Gi", &[], "[]");
        fake_node(k, "control", "4", "8Gi", &[], "[{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]");
        apply(k, &pod("big", "{app: big}", "2", ""));
        let message = failed_scheduling(k, "big");
        assert_eq!(
            message.trim(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.."
        );
        let condition = wait_until(
            k,
            &["get", "pod", "big", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}"],
            WAIT,
            |o| !o.trim().is_empty(),
        );
        assert_eq!(condition.trim(), "Unschedulable");
        let describe = k.ok(["describe", "pod", "big"]);
        assert_contains(&describe, "Warning  FailedScheduling");
        assert_contains(&describe, "default-scheduler  0/3 nodes are available: 1 node(s) had untolerated taint");
        let events = k.ok(["get", "events"]);
        assert_contains(&events, "FailedScheduling");
        assert_eq!(k.ok(["get", "pod", "big", "-o", "jsonpath={.spec.nodeName}"]), "");

        // A node that fits: the NodeAdd event retries the pod.
        fake_node(k, "large", "4", "8Gi", &[], "[]");
        assert_eq!(node_of(k, "big"), "large");
        let scheduled = wait_until(k, &["get", "events", "--field-selector", "involvedObject.name=big,reason=Scheduled", "-o", "jsonpath={.items[*].message}"], WAIT, |o| !o.is_empty());
        assert_eq!(scheduled.trim(), "Successfully assigned default/big to large");
    }
}

/// `nodeSelector`, required and preferred node affinity.
#[test]
fn node_selector_and_node_affinity() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        fake_node(
            k,
            "ssd-a",
            "2",
            "4Gi",
            &[("disk", "ssd"), ("zone", "a")],
            "[]",
        );
        fake_node(
            k,
            "hdd-b",
            "2",
            "4Gi",
            &[("disk", "hdd"), ("zone", "b")],
            "[]",
        );
        fake_node(
            k,
            "hdd-c",
            "2",
            "4Gi",
            &[("disk", "hdd"), ("zone", "c")],
            "[]",
        );
        apply(
            k,
            &pod("sel", "{app: x}", "100m", "  nodeSelector: {disk: ssd}\n"),
        );
        apply(k, &pod("req", "{app: x}", "100m", "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions: [{key: zone, operator: In, values: [b]}]\n"));
        apply(k, &pod("pref", "{app: x}", "100m", "  affinity:\n    nodeAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 100\n        preference:\n          matchExpressions: [{key: zone, operator: In, values: [c]}]\n"));
        apply(
            k,
            &pod("none", "{app: x}", "100m", "  nodeSelector: {disk: nvme}\n"),
        );
        assert_eq!(
            nodes_of(k, &["sel", "req", "pref"]),
            ["ssd-a", "hdd-b", "hdd-c"]
        );
        assert_eq!(
            failed_scheduling(k, "none").trim(),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        );
    });
}

/// Required pod anti-affinity on the hostname puts one pod per node; the extra one waits.
#[test]
fn pod_anti_affinity_one_per_node() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        for n in ["n1", "n2", "n3"] {
            fake_node(k, n, "4", "8Gi", &[], "[]");
        }
        let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {app: solo}}\n        topologyKey: kubernetes.io/hostname\n";
        for i in 1..=4 {
            apply(k, &pod(&format!("solo-{i}"), "{app: solo}", "100m", anti));
        }
        let message = failed_scheduling(k, "solo-4");
        let mut nodes = nodes_of(k, &["solo-1", "solo-2", "solo-3"]);
        nodes.sort();
        assert_eq!(nodes, ["n1", "n2", "n3"]);
        assert_contains(
            &message,
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.",
        );
    });
}

/// `maxSkew: 1` over zone labels spreads six pods two per zone, whatever the node count
/// per zone.
#[test]
fn topology_spread_by_zone() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        fake_node(
            k,
            "a1",
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", "a")],
            "[]",
        );
        fake_node(
            k,
            "a2",
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", "a")],
            "[]",
        );
        fake_node(
            k,
            "a3",
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", "a")],
            "[]",
        );
        fake_node(
            k,
            "b1",
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", "b")],
            "[]",
        );
        fake_node(
            k,
            "c1",
            "4",
            "8Gi",
            &[("topology.kubernetes.io/zone", "c")],
            "[]",
        );
        let spread = "  topologySpreadConstraints:\n  - maxSkew: 1\n    topologyKey: topology.kubernetes.io/zone\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector: {matchLabels: {app: spread}}\n";
        let names: Vec<String> = (1..=6).map(|i| format!("spread-{i}")).collect();
        for n in &names {
            apply(k, &pod(n, "{app: spread}", "100m", spread));
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let nodes = nodes_of(k, &names);
        let per_zone = |z: char| nodes.iter().filter(|n| n.starts_with(z)).count();
        assert_eq!(
            (per_zone('a'), per_zone('b'), per_zone('c')),
            (2, 2, 2),
            "{nodes:?}"
        );
    });
}

/// NoSchedule taints keep pods without a toleration away; tolerating pods may land there.
#[test]
fn taints_and_tolerations() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        fake_node(
            k,
            "gpu",
            "4",
            "8Gi",
            &[("kind", "gpu")],
            "[{key: dedicated, value: gpu, effect: NoSchedule}]",
        );
        fake_node(k, "plain", "4", "8Gi", &[("kind", "plain")], "[]");
        for i in 1..=3 {
            apply(k, &pod(&format!("plain-{i}"), "{app: p}", "100m", ""));
        }
        assert_eq!(
            nodes_of(k, &["plain-1", "plain-2", "plain-3"]),
            ["plain", "plain", "plain"]
        );
        let tolerant = "  nodeSelector: {kind: gpu}\n  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]\n";
        apply(k, &pod("tolerant", "{app: t}", "100m", tolerant));
        assert_eq!(node_of(k, "tolerant"), "gpu");
        apply(
            k,
            &pod("picky", "{app: t}", "100m", "  nodeSelector: {kind: gpu}\n"),
        );
        assert_contains(
            &failed_scheduling(k, "picky"),
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}.",
        );
    });
}

/// A high-priority pod evicts the lower-priority pods in its way: it is nominated to the
/// node, the victims get `Preempted` events and are deleted, and it is bound there.
#[test]
fn priority_preemption() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        fake_node(k, "only", "2", "4Gi", &[], "[]");
        apply(k, "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n");
        apply(
            k,
            &pod("low-1", "{app: low}", "1", "  priorityClassName: low\n"),
        );
        apply(
            k,
            &pod("low-2", "{app: low}", "900m", "  priorityClassName: low\n"),
        );
        assert_eq!(nodes_of(k, &["low-1", "low-2"]), ["only", "only"]);
        let priority = k.ok([
            "get",
            "pod",
            "low-1",
            "-o",
            "jsonpath={.spec.priority} {.spec.preemptionPolicy}",
        ]);
        assert_eq!(priority, "10 PreemptLowerPriority");

        apply(
            k,
            &pod("vip", "{app: vip}", "1500m", "  priorityClassName: high\n"),
        );
        assert_eq!(node_of(k, "vip"), "only");
        let nominated = k.ok([
            "get",
            "pod",
            "vip",
            "-o",
            "jsonpath={.status.nominatedNodeName}",
        ]);
        assert_eq!(nominated, "only");
        // Both victims had to go: 1500m does not fit beside either.
        wait_until(
            k,
            &["get", "pods", "-l", "app=low", "-o", "name"],
            WAIT,
            |o| o.trim().is_empty(),
        );
        let preempted = wait_until(
            k,
            &[
                "get",
                "events",
                "--field-selector",
                "reason=Preempted",
                "-o",
                "jsonpath={.items[*].involvedObject.name}",
            ],
            WAIT,
            |o| o.split_whitespace().count() == 2,
        );
        assert_contains(&preempted, "low-1");
        let uid = k.ok(["get", "pod", "vip", "-o", "jsonpath={.metadata.uid}"]);
        let message = k.ok([
            "get",
            "events",
            "--field-selector",
            "reason=Preempted,involvedObject.name=low-1",
            "-o",
            "jsonpath={.items[0].message}",
        ]);
        assert_eq!(message, format!("Preempted by pod {uid} on node only"));

        // A pod that may not preempt waits instead.
        apply(k, "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: polite}\nvalue: 2000\npreemptionPolicy: Never\n");
        apply(
            k,
            &pod(
                "polite",
                "{app: polite}",
                "1",
                "  priorityClassName: polite\n",
            ),
        );
        assert_eq!(
            failed_scheduling(k, "polite").trim(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.."
        );
    });
}

/// Priority classes resolve at admission, including the built-in system classes.
#[test]
fn priority_class_admission() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        let classes = k.ok(["get", "priorityclasses", "-o", "name"]);
        assert_contains(
            &classes,
            "priorityclass.scheduling.k8s.io/system-cluster-critical",
        );
        assert_contains(
            &classes,
            "priorityclass.scheduling.k8s.io/system-node-critical",
        );
        apply(
            k,
            &pod(
                "crit",
                "{app: c}",
                "100m",
                "  priorityClassName: system-node-critical\n",
            ),
        );
        assert_eq!(
            k.ok(["get", "pod", "crit", "-o", "jsonpath={.spec.priority}"]),
            "2000001000"
        );
        let err = k.err_stdin(
            ["apply", "-f", "-"],
            &pod("ghost", "{app: c}", "100m", "  priorityClassName: nope\n"),
        );
        assert_contains(
            &err,
            "pods \"ghost\" is forbidden: no PriorityClass with name nope was found",
        );
        apply(k, "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: everyone}\nvalue: 7\nglobalDefault: true\n");
        apply(k, &pod("plain", "{app: c}", "100m", ""));
        assert_eq!(
            k.ok([
                "get",
                "pod",
                "plain",
                "-o",
                "jsonpath={.spec.priorityClassName} {.spec.priority}"
            ]),
            "everyone 7"
        );
        let err = k.err_stdin(["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: another}\nvalue: 8\nglobalDefault: true\n");
        assert_contains(
            &err,
            "PriorityClass everyone is marked as default. Only one default can exist",
        );
    });
}

/// Pods naming another scheduler are left alone by the embedded one; `k8rs scheduler`
/// with a profile of that name schedules them.
#[test]
fn scheduler_name_selects_the_scheduler() {
    run_with_kubectl(KubectlVersion::V1_33, |k| {
        fake_node(k, "n1", "2", "4Gi", &[], "[]");
        apply(
            k,
            &pod("mine", "{app: m}", "100m", "  schedulerName: packer\n"),
        );
        apply(k, &pod("default", "{app: m}", "100m", ""));
        assert_eq!(node_of(k, "default"), "n1");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            k.ok(["get", "pod", "mine", "-o", "jsonpath={.spec.nodeName}"]),
            ""
        );
        let events = k.ok([
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=mine",
            "-o",
            "name",
        ]);
        assert_eq!(
            events.trim(),
            "",
            "the default scheduler must not touch pods of another"
        );

        let config = k.write_file(
            "scheduler.yaml",
            b"apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: packer\n  pluginConfig:\n  - name: NodeResourcesFit\n    args:\n      scoringStrategy:\n        type: MostAllocated\n",
        );
        let mut scheduler = std::process::Command::new(k8rs_e2e::k8rs_binary())
            .args(["scheduler", "--kubeconfig"])
            .arg(k.server().kubeconfig())
            .arg("--config")
            .arg(&config)
            // A second scheduler beside the default one elects nothing (upstream's
            // multiple-schedulers setup: `leaderElect: false`, or its own lease).
            .arg("--leader-elect=false")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("k8rs scheduler starts");
        let node = wait_until(
            k,
            &["get", "pod", "mine", "-o", "jsonpath={.spec.nodeName}"],
            WAIT,
            |o| !o.is_empty(),
        );
        let _ = scheduler.kill();
        let _ = scheduler.wait();
        assert_eq!(node, "n1");
    });
}

/// Upstream's Lease-based leader election: of two `k8rs scheduler` processes only the
/// one holding `kube-system/kube-scheduler` schedules; once it is killed the other takes
/// the lease when it has gone unrenewed for the lease duration (15 s, judged from when
/// the standby saw it last change, then at its next retry: 2 s plus up to 120% jitter)
/// and schedules the pods the dead one left.
#[test]
fn two_schedulers_one_leader_and_a_takeover() {
    let server = k8rs_e2e::TestServer::start_with_args(&["--disable", "scheduler"]);
    let k = server.with_version(KubectlVersion::V1_33);
    fake_node(&k, "n1", "4", "8Gi", &[], "[]");
    let mut first = server.spawn_k8rs(&["scheduler"]);
    let mut second = server.spawn_k8rs(&["scheduler"]);
    let lease = |k: &Kubectl<'_>| -> serde_json::Value {
        serde_json::from_str(&k.ok([
            "get",
            "lease",
            "kube-scheduler",
            "-n",
            "kube-system",
            "-o",
            "json",
        ]))
        .unwrap()
    };
    wait_until(
        &k,
        &["get", "leases", "-n", "kube-system", "-o", "name"],
        WAIT,
        |o| o.contains("lease.coordination.k8s.io/kube-scheduler"),
    );
    let acquired = |p: &k8rs_e2e::K8rsProcess| p.log().contains("successfully acquired lease");
    k8rs_e2e::wait_until(WAIT, "a leader", || {
        if acquired(&first) || acquired(&second) {
            Ok(())
        } else {
            Err(format!("{}\n{}", first.log(), second.log()))
        }
    });
    assert!(
        !(acquired(&first) && acquired(&second)),
        "both lead:\n{}\n{}",
        first.log(),
        second.log()
    );
    let (leader, standby) = if acquired(&first) {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    let held = lease(&k);
    let spec = &held["spec"];
    let holder = spec["holderIdentity"].as_str().unwrap().to_string();
    let host = hostname();
    assert!(
        holder.starts_with(&format!("{host}_")) && holder.len() == host.len() + 1 + 36,
        "holderIdentity <hostname>_<uuid>: {holder}"
    );
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_eq!(spec["leaseTransitions"], 0);
    for field in ["acquireTime", "renewTime"] {
        let t = spec[field].as_str().unwrap();
        // MicroTime: RFC 3339 with microseconds.
        assert!(
            t.len() == 27 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
            "{field}: {t}"
        );
    }
    // Renewed every 2 s by the leader.
    let renewed = spec["renewTime"].clone();
    std::thread::sleep(Duration::from_secs(5));
    assert_ne!(lease(&k)["spec"]["renewTime"], renewed, "lease renewed");

    apply(&k, &pod("p1", "{app: le}", "100m", ""));
    assert_eq!(node_of(&k, "p1"), "n1");
    assert!(
        !standby.log().contains("scheduler started"),
        "the standby must not run the scheduler:\n{}",
        standby.log()
    );

    leader.kill();
    let killed = std::time::Instant::now();
    apply(&k, &pod("p2", "{app: le}", "100m", ""));
    k8rs_e2e::wait_until(Duration::from_secs(60), "the standby takes over", || {
        let l = lease(&k);
        if l["spec"]["holderIdentity"] != holder.as_str() {
            Ok(())
        } else {
            Err(l["spec"].to_string())
        }
    });
    let took = killed.elapsed();
    let new = lease(&k);
    assert_eq!(new["spec"]["leaseTransitions"], 1, "{new}");
    assert!(acquired(standby), "{}", standby.log());
    assert_eq!(node_of(&k, "p2"), "n1");
    // Not before the dead leader's last renewal (at most a retry period before the kill)
    // had gone unseen for the lease duration; not much later than that plus one
    // jittered retry.
    assert!(
        took >= Duration::from_secs(11) && took <= Duration::from_secs(30),
        "took over {took:?} after the kill"
    );
    eprintln!(
        "standby took over {:.1} s after the leader was killed",
        took.as_secs_f64()
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}
