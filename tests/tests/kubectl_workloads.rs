//! Workload controllers as a user drives them with kubectl: Deployments (rollouts, scaling,
//! history, undo, pause/resume, deadlines, restart, Recreate), ReplicaSets (adoption and
//! release) and ReplicationControllers. There are no nodes here: [`mark_pods_ready`] plays
//! the kubelet by writing pod status, as upstream's integration tests do.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8rs_e2e::{assert_contains, eventually, kubectl_tests, mark_pods_ready, table_rows, Kubectl};
use serde_json::Value;

/// A Deployment `web` (label `app=web`, container `nginx`) with extra `spec` lines.
fn web(replicas: u32, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
{extra_spec}
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"#
    )
}

/// Runs `f` while a helper thread marks new `app=web` pods ready every 150 ms.
fn with_ready_pods<T>(k: &Kubectl<'_>, f: impl FnOnce() -> T) -> T {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                mark_pods_ready(k, "app=web");
                std::thread::sleep(Duration::from_millis(150));
            }
        });
        let result = f();
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// `kubectl rollout status` with pods being marked ready; asserts success.
fn roll_out(k: &Kubectl<'_>) -> String {
    with_ready_pods(k, || {
        k.ok(["rollout", "status", "deploy/web", "--timeout=90s"])
    })
}

fn json(k: &Kubectl<'_>, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&k.ok(all)).expect("kubectl prints JSON")
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The conditions of an object as `type → (status, reason)`.
fn conditions(obj: &Value) -> BTreeMap<String, (String, String)> {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn replica_sets(k: &Kubectl<'_>) -> Vec<Value> {
    items(&json(k, &["rs", "-l", "app=web"]))
}

fn live_pods(k: &Kubectl<'_>, selector: &str) -> Vec<Value> {
    items(&json(k, &["pods", "-l", selector]))
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn image_of(obj: &Value) -> String {
    obj["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The objects of a `kubectl get -w --output-watch-events -o json` stream, in order.
fn watch_events(out: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

/// Rows of `kubectl rollout history` as (revision, change cause).
fn history(k: &Kubectl<'_>) -> Vec<(String, String)> {
    let out = k.ok(["rollout", "history", "deploy/web"]);
    out.lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let rev = parts.next().unwrap_or_default().to_string();
            (rev, parts.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

kubectl_tests! {
    /// A 3-replica Deployment creates a ReplicaSet and pods, becomes Available once its pods
    /// are ready, scales up and down, and says so in its events and conditions.
    fn deployment_rolls_out_and_scales(k) {
        k.ok(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=3"]);
        let out = roll_out(k);
        assert_contains(&out, "deployment \"web\" successfully rolled out");

        let d = k.get_json("deploy", "web", &[]);
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(d["status"]["updatedReplicas"], 3);
        assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
        let conds = conditions(&d);
        assert_eq!(conds["Available"], ("True".into(), "MinimumReplicasAvailable".into()));
        assert_eq!(conds["Progressing"], ("True".into(), "NewReplicaSetAvailable".into()));

        let rss = replica_sets(k);
        assert_eq!(rss.len(), 1);
        let rs = &rss[0];
        let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
        let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_string();
        assert_eq!(rs_name, format!("web-{hash}"));
        assert_eq!(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash.as_str());
        assert_eq!(rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"], "3");
        assert_eq!(rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"], "4");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
        assert_eq!(rs["metadata"]["ownerReferences"][0]["controller"], true);
        for field in ["replicas", "readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            assert_eq!(rs["status"][field], 3, "status.{field} of {rs}");
        }
        assert_eq!(rs["status"]["observedGeneration"], rs["metadata"]["generation"]);

        let pods = live_pods(k, "app=web");
        assert_eq!(pods.len(), 3);
        for pod in &pods {
            let name = pod["metadata"]["name"].as_str().unwrap();
            let suffix = name.strip_prefix(&format!("{rs_name}-")).unwrap_or_else(|| panic!("{name} is not {rs_name}-<suffix>"));
            assert_eq!(suffix.len(), 5, "{name}");
            let owner = &pod["metadata"]["ownerReferences"][0];
            assert_eq!(owner["kind"], "ReplicaSet");
            assert_eq!(owner["name"], rs_name.as_str());
            assert_eq!(owner["controller"], true);
            assert_eq!(owner["blockOwnerDeletion"], true);
        }

        k.ok(["scale", "deploy/web", "--replicas=5"]);
        with_ready_pods(k, || eventually(Duration::from_secs(30), "5 available replicas", || {
            (k.get_json("deploy", "web", &[])["status"]["availableReplicas"] == 5).then_some(())
        }));
        assert_eq!(live_pods(k, "app=web").len(), 5);
        k.ok(["scale", "deploy/web", "--replicas=2"]);
        eventually(Duration::from_secs(30), "2 pods", || (live_pods(k, "app=web").len() == 2).then_some(()));
        let out = k.ok(["rollout", "status", "deploy/web", "--timeout=30s"]);
        assert_contains(&out, "successfully rolled out");
        assert_eq!(replica_sets(k).len(), 1, "scaling makes no new ReplicaSet");

        let describe = eventually(Duration::from_secs(10), "scaling events", || {
            let out = k.ok(["describe", "deploy", "web"]);
            out.contains(&format!("Scaled down replica set {rs_name} from 5 to 2")).then_some(out)
        });
        assert_contains(&describe, &format!("Scaled up replica set {rs_name} from 0 to 3"));
        assert_contains(&describe, &format!("Scaled up replica set {rs_name} from 3 to 5"));
        assert_contains(&describe, "deployment-controller");
        assert_contains(&describe, &format!("NewReplicaSet:   {rs_name} (2/2 replicas created)"));
        let describe_rs = k.ok(["describe", "rs", &rs_name]);
        assert_contains(&describe_rs, "SuccessfulCreate");
        assert_contains(&describe_rs, "Created pod: ");
        assert_contains(&describe_rs, "SuccessfulDelete");
        assert_contains(&describe_rs, "replicaset-controller");
    }

    /// `set image` rolls out a new ReplicaSet one surge at a time: at every change seen by a
    /// watch, the ReplicaSets together ask for at most replicas + maxSurge pods and the
    /// Deployment reports at least replicas - maxUnavailable available.
    fn set_image_respects_surge_and_unavailability(k) {
        let strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 1";
        k.ok_stdin(["apply", "-f", "-"], &web(4, strategy));
        roll_out(k);
        let old_rs = replica_sets(k)[0]["metadata"]["name"].as_str().unwrap().to_string();

        let rs_watch = k.spawn(["get", "rs", "-l", "app=web", "-w", "--output-watch-events", "-o", "json"]);
        let d_watch = k.spawn(["get", "deploy", "web", "-w", "--output-watch-events", "-o", "json"]);
        std::thread::sleep(Duration::from_millis(500));
        k.ok(["set", "image", "deploy/web", "nginx=nginx:1.28"]);
        roll_out(k);
        std::thread::sleep(Duration::from_millis(500));

        let mut sizes: BTreeMap<String, i64> = BTreeMap::new();
        let mut max_seen = 0;
        let mut history = Vec::new();
        for event in watch_events(&rs_watch.stdout()) {
            let obj = &event["object"];
            let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
            history.push(format!("{} {name} rv={} replicas={}", event["type"], obj["metadata"]["resourceVersion"], obj["spec"]["replicas"]));
            if event["type"] == "DELETED" {
                sizes.remove(&name);
            } else {
                sizes.insert(name, obj["spec"]["replicas"].as_i64().unwrap_or(0));
            }
            let total: i64 = sizes.values().sum();
            max_seen = max_seen.max(total);
            assert!(total <= 5, "replica sets ask for {total} pods > replicas + maxSurge = 5: {sizes:?}; events:\n{}", history.join("\n"));
        }
        assert_eq!(max_seen, 5, "the rollout used its surge");
        let mut min_available = i64::MAX;
        for event in watch_events(&d_watch.stdout()) {
            let available = event["object"]["status"]["availableReplicas"].as_i64().unwrap_or(0);
            min_available = min_available.min(available);
            assert!(available >= 3, "{available} available < replicas - maxUnavailable = 3");
        }
        assert!(min_available < 4, "the rollout used its unavailability budget");

        let rss = replica_sets(k);
        assert_eq!(rss.len(), 2);
        for rs in rss {
            let name = rs["metadata"]["name"].as_str().unwrap();
            if name == old_rs {
                assert_eq!(rs["spec"]["replicas"], 0);
                assert_eq!(image_of(&rs), "nginx:1.27");
            } else {
                assert_eq!(rs["spec"]["replicas"], 4);
                assert_eq!(image_of(&rs), "nginx:1.28");
                assert_eq!(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
            }
        }
        let images: Vec<String> = live_pods(k, "app=web").iter().map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap().to_string()).collect();
        assert_eq!(images, vec!["nginx:1.28"; 4]);
        let describe = k.ok(["describe", "deploy", "web"]);
        assert_contains(&describe, &format!("Scaled down replica set {old_rs} from 4 to 3"));
        assert_contains(&describe, &format!("OldReplicaSets:  {old_rs} (0/0 replicas created)"));
    }

    /// Change causes carried to ReplicaSets make `rollout history`; `undo` returns to the
    /// previous template and `undo --to-revision` to a chosen one, each as a new revision.
    fn rollout_history_and_undo(k) {
        k.ok(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]);
        k.ok(["annotate", "deploy/web", "kubernetes.io/change-cause=create 1.27"]);
        roll_out(k);
        for version in ["1.28", "1.29"] {
            k.ok(["set", "image", "deploy/web", &format!("nginx=nginx:{version}")]);
            k.ok(["annotate", "deploy/web", "--overwrite", &format!("kubernetes.io/change-cause=image {version}")]);
            roll_out(k);
        }
        assert_eq!(history(k), vec![
            ("1".to_string(), "create 1.27".to_string()),
            ("2".to_string(), "image 1.28".to_string()),
            ("3".to_string(), "image 1.29".to_string()),
        ]);
        let rev2 = k.ok(["rollout", "history", "deploy/web", "--revision=2"]);
        assert_contains(&rev2, "nginx:1.28");

        let out = k.ok(["rollout", "undo", "deploy/web"]);
        assert_contains(&out, "deployment.apps/web rolled back");
        roll_out(k);
        assert_eq!(image_of(&k.get_json("deploy", "web", &[])), "nginx:1.28");
        assert_eq!(history(k), vec![
            ("1".to_string(), "create 1.27".to_string()),
            ("3".to_string(), "image 1.29".to_string()),
            ("4".to_string(), "image 1.28".to_string()),
        ]);
        let reused = replica_sets(k).into_iter().find(|rs| image_of(rs) == "nginx:1.28").unwrap();
        assert_eq!(reused["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4");
        assert_eq!(reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "2");

        k.ok(["rollout", "undo", "deploy/web", "--to-revision=1"]);
        roll_out(k);
        assert_eq!(image_of(&k.get_json("deploy", "web", &[])), "nginx:1.27");
        let revisions: Vec<String> = history(k).into_iter().map(|(r, _)| r).collect();
        assert_eq!(revisions, vec!["3", "4", "5"]);
        assert_eq!(replica_sets(k).len(), 3, "undo reuses ReplicaSets instead of making new ones");
        assert_eq!(k.get_json("deploy", "web", &[])["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "5");
    }

    /// Edits to a paused Deployment do not roll out; resuming rolls them out as one revision.
    fn pause_edits_resume_make_one_revision(k) {
        k.ok(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]);
        roll_out(k);
        k.ok(["rollout", "pause", "deploy/web"]);
        eventually(Duration::from_secs(10), "the DeploymentPaused condition", || {
            let d = k.get_json("deploy", "web", &[]);
            (conditions(&d)["Progressing"] == ("Unknown".to_string(), "DeploymentPaused".to_string())).then_some(())
        });
        k.ok(["set", "image", "deploy/web", "nginx=nginx:1.28"]);
        k.ok(["set", "env", "deploy/web", "MODE=paused"]);
        k.ok(["set", "resources", "deploy/web", "--requests=cpu=10m"]);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(replica_sets(k).len(), 1, "no rollout while paused");
        let d = k.get_json("deploy", "web", &[]);
        assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"], "paused edits are observed");
        let err = k.err(["rollout", "undo", "deploy/web", "--to-revision=1"]);
        assert_contains(&err, "you cannot rollback a paused deployment");

        k.ok(["rollout", "resume", "deploy/web"]);
        roll_out(k);
        let rss = replica_sets(k);
        assert_eq!(rss.len(), 2, "the three edits made one new ReplicaSet");
        let revisions: Vec<String> = history(k).into_iter().map(|(r, _)| r).collect();
        assert_eq!(revisions, vec!["1", "2"]);
        let new_rs = rss.into_iter().find(|rs| image_of(rs) == "nginx:1.28").unwrap();
        assert_eq!(new_rs["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "paused");
        let progressing = conditions(&k.get_json("deploy", "web", &[]))["Progressing"].clone();
        assert_eq!(progressing, ("True".to_string(), "NewReplicaSetAvailable".to_string()));
    }

    /// Pods that never become ready make the rollout exceed its progress deadline.
    fn progress_deadline_exceeded(k) {
        k.ok_stdin(["apply", "-f", "-"], &web(2, "  progressDeadlineSeconds: 3"));
        let out = k.cmd(["rollout", "status", "deploy/web", "--timeout=60s"]).output();
        assert!(!out.status.success(), "{}", k8rs_e2e::render(&out));
        assert_contains(&String::from_utf8_lossy(&out.stderr), "error: deployment \"web\" exceeded its progress deadline");
        let d = k.get_json("deploy", "web", &[]);
        assert_eq!(conditions(&d)["Progressing"], ("False".to_string(), "ProgressDeadlineExceeded".to_string()));
        assert_eq!(conditions(&d)["Available"], ("False".to_string(), "MinimumReplicasUnavailable".to_string()));
        let rs = replica_sets(k)[0]["metadata"]["name"].as_str().unwrap().to_string();
        let describe = k.ok(["describe", "deploy", "web"]);
        assert_contains(&describe, "ProgressDeadlineExceeded");
        let message = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap()["message"].clone();
        assert_eq!(message, format!("ReplicaSet \"{rs}\" has timed out progressing."));
    }

    /// `rollout restart` stamps the template and rolls out new pods.
    fn rollout_restart(k) {
        k.ok(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]);
        roll_out(k);
        let before: Vec<String> = live_pods(k, "app=web").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
        k.ok(["rollout", "restart", "deploy/web"]);
        roll_out(k);
        let d = k.get_json("deploy", "web", &[]);
        assert!(d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string());
        assert_eq!(replica_sets(k).len(), 2);
        eventually(Duration::from_secs(20), "only restarted pods", || {
            let after: Vec<String> = live_pods(k, "app=web").iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect();
            (after.len() == 2 && after.iter().all(|p| !before.contains(p))).then_some(())
        });
    }

    /// Recreate removes every old pod before the first new one exists.
    fn recreate_strategy(k) {
        k.ok_stdin(["apply", "-f", "-"], &web(3, "  strategy:\n    type: Recreate"));
        roll_out(k);
        let pod_watch = k.spawn(["get", "pods", "-l", "app=web", "-w", "--output-watch-events", "-o", "json"]);
        std::thread::sleep(Duration::from_millis(500));
        k.ok(["set", "image", "deploy/web", "nginx=nginx:1.28"]);
        roll_out(k);
        std::thread::sleep(Duration::from_millis(500));
        let mut live: BTreeMap<String, String> = BTreeMap::new();
        let mut saw_new = false;
        for event in watch_events(&pod_watch.stdout()) {
            let pod = &event["object"];
            let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string();
            if event["type"] == "DELETED" {
                live.remove(&name);
            } else {
                live.insert(name, image);
            }
            let images: std::collections::BTreeSet<&String> = live.values().collect();
            assert!(images.len() <= 1, "old and new pods at once: {live:?}");
            saw_new |= images.contains(&"nginx:1.28".to_string());
        }
        assert!(saw_new);
        let describe = k.ok(["describe", "deploy", "web"]);
        assert_contains(&describe, "StrategyType:       Recreate");
        assert_contains(&describe, "from 3 to 0");
    }

    /// A ReplicationController keeps its replica count through scaling, with events from
    /// the replication-controller.
    fn replication_controller_scales(k) {
        k.ok_stdin(["create", "-f", "-"], r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 2
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"#);
        with_ready_pods(k, || eventually(Duration::from_secs(30), "2 ready replicas", || {
            (k.get_json("rc", "web", &[])["status"]["readyReplicas"] == 2).then_some(())
        }));
        let pods = live_pods(k, "app=web");
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0]["metadata"]["ownerReferences"][0]["kind"], "ReplicationController");
        k.ok(["scale", "rc", "web", "--replicas=4"]);
        with_ready_pods(k, || eventually(Duration::from_secs(30), "4 ready replicas", || {
            (k.get_json("rc", "web", &[])["status"]["readyReplicas"] == 4).then_some(())
        }));
        let row = table_rows(&k.ok(["get", "rc", "web"]))[1].clone();
        assert_eq!(&row[1..4], &["4", "4", "4"], "DESIRED CURRENT READY");
        k.ok(["scale", "rc", "web", "--replicas=1"]);
        eventually(Duration::from_secs(30), "1 pod", || (live_pods(k, "app=web").len() == 1).then_some(()));
        let describe = eventually(Duration::from_secs(10), "deletion events", || {
            let out = k.ok(["describe", "rc", "web"]);
            out.contains("SuccessfulDelete").then_some(out)
        });
        assert_contains(&describe, "replication-controller");
        assert_contains(&describe, "SuccessfulCreate");
    }

    /// A ReplicaSet adopts a matching orphan pod, creates only what is missing, and
    /// releases (and replaces) a pod relabelled out of its selector.
    fn replica_set_adopts_and_releases(k) {
        k.ok(["run", "orphan", "--image=nginx:1.27", "--labels=app=web"]);
        k.ok_stdin(["create", "-f", "-"], r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
"#);
        eventually(Duration::from_secs(20), "the orphan adopted", || {
            let pod = k.get_json("pod", "orphan", &[]);
            (pod["metadata"]["ownerReferences"][0]["name"] == "web").then_some(())
        });
        let owner = k.get_json("pod", "orphan", &[])["metadata"]["ownerReferences"][0].clone();
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        eventually(Duration::from_secs(20), "2 pods", || (live_pods(k, "app=web").len() == 2).then_some(()));
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(live_pods(k, "app=web").len(), 2, "the adopted pod counts");

        k.ok(["label", "pod", "orphan", "app=other", "--overwrite"]);
        eventually(Duration::from_secs(20), "the pod released", || {
            let refs = k.get_json("pod", "orphan", &[])["metadata"]["ownerReferences"].clone();
            refs.as_array().is_none_or(|refs| refs.is_empty()).then_some(())
        });
        eventually(Duration::from_secs(20), "a replacement", || (live_pods(k, "app=web").len() == 2).then_some(()));
        with_ready_pods(k, || eventually(Duration::from_secs(20), "2 available", || {
            let rs = k.get_json("rs", "web", &[]);
            (rs["status"]["availableReplicas"] == 2 && rs["status"]["fullyLabeledReplicas"] == 2).then_some(())
        }));
    }
}

/// `k8rs controller-manager` runs the same controllers as their own process against a
/// server started with `--disable controllers`: nothing creates pods until it runs.
#[test]
fn controller_manager_runs_as_its_own_process() {
    let server = k8rs_e2e::TestServer::start_with_args(&["--disable", "controllers"]);
    let k = server.with_version(k8rs_e2e::KubectlVersion::V1_33);
    k.ok([
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        live_pods(&k, "app=web").is_empty(),
        "no controller runs in the server"
    );

    let manager = server.spawn_k8rs(&["controller-manager"]);
    eventually(
        Duration::from_secs(30),
        "2 pods from the controller manager",
        || {
            let pods = live_pods(&k, "app=web");
            (pods.len() == 2).then_some(()).ok_or_else(|| {
                format!(
                    "{} pods; controller-manager log:\n{}",
                    pods.len(),
                    manager.log()
                )
            })
        },
    );
    // The namespace controller, too: a deleted namespace goes away.
    k.ok(["create", "namespace", "scratch"]);
    k.ok(["delete", "namespace", "scratch", "--wait=false"]);
    eventually(Duration::from_secs(30), "the namespace gone", || {
        let out = k.cmd(["get", "namespace", "scratch"]).output();
        (!out.status.success()).then_some(())
    });
}
