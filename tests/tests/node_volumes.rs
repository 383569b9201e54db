//! Pod volumes and environment on a real node (`k8rs up`, containerd): a configMap
//! volume follows `kubectl patch`, a secret volume honours `defaultMode`, downwardAPI
//! labels, the projected ServiceAccount token (which authenticates to the API server),
//! env from every source, an emptyDir shared by two containers and a memory-backed one,
//! `/etc/hosts` with hostAliases, termination messages, a missing ConfigMap giving
//! `CreateContainerConfigError` and a missing volume source `FailedMount` until it
//! appears, and nothing left on the node once the pods are gone. Needs root and the host
//! packages; prints `SKIP: …` otherwise.

use std::time::{Duration, Instant};

use k8rs_e2e::{assert_contains, node, Kubectl, KubectlVersion, TestServer};

const NODE: &str = "k8rs-e2e-volumes";
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Polls `check` until it returns `Some`, failing with `what` and the last value after
/// `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn wait_running(k: &Kubectl<'_>, pod: &str) {
    wait_for(Duration::from_secs(90), &format!("{pod} Running"), || {
        let phase = k.ok(["get", "pod", pod, "-o=jsonpath={.status.phase}"]);
        if phase == "Running" {
            Ok(())
        } else {
            Err(k.ok(["get", "pod", pod, "-o", "yaml"]))
        }
    });
}

fn exec(k: &Kubectl<'_>, pod: &str, container: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", pod, "-c", container, "--"];
    args.extend_from_slice(cmd);
    k.ok(args)
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, color: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Service
metadata: {name: my-db}
spec: {ports: [{name: pg, port: 5432}], selector: {app: none}}
"#;

fn vols_pod() -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: vols, labels: {{app: vols, tier: test}}}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  hostAliases: [{{ip: 10.1.2.3, hostnames: [foo.local, bar.local]}}]
  volumes:
  - {{name: cfg, configMap: {{name: cfg}}}}
  - {{name: sec, secret: {{secretName: sec, defaultMode: 0400}}}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: mem, resourceFieldRef: {{containerName: a, resource: limits.memory, divisor: 1Mi}}}}
  - {{name: shared, emptyDir: {{}}}}
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 16Mi}}}}
  containers:
  - name: a
    image: busybox
    command: [sh, -c, 'echo "$(GREETING) from $(POD_NAME)" > /shared/hello; exec sleep 3600']
    resources: {{limits: {{memory: 64Mi}}}}
    envFrom:
    - {{configMapRef: {{name: cfg}}, prefix: CFG_}}
    - secretRef: {{name: sec}}
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: POD_UID, valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}}}
    - {{name: APP, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['app']"}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: SA, valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
    - {{name: MEM_MI, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: sec, key: password}}}}}}
    - {{name: MAYBE, valueFrom: {{secretKeyRef: {{name: absent, key: x, optional: true}}}}}}
    - {{name: COMPOSED, value: "$(GREETING)-$(CFG_color) $$(GREETING) $(UNDEFINED)"}}
    volumeMounts:
    - {{name: cfg, mountPath: /cfg}}
    - {{name: cfg, mountPath: /one/greeting, subPath: greeting}}
    - {{name: sec, mountPath: /sec}}
    - {{name: info, mountPath: /info}}
    - {{name: shared, mountPath: /shared}}
    - {{name: mem, mountPath: /mem}}
  - name: b
    image: busybox
    command: [sleep, "3600"]
    volumeMounts:
    - {{name: shared, mountPath: /from-a, readOnly: true}}
"#
    )
}

#[test]
fn volumes_and_environment_on_real_containers() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let server = TestServer::start_up(&["--node-name", NODE]);
    let _cleanup = RemoveSandboxes(server.data_dir().join("agent/containerd/containerd.sock"));
    server.wait_node_ready(NODE, Duration::from_secs(60));
    let k = server.with_version(KubectlVersion::V1_33);
    let pods_dir = server.data_dir().join("agent/kubelet/pods");

    // The ServiceAccount admission needs the namespace's `default` account.
    wait_for(Duration::from_secs(30), "default ServiceAccount", || {
        let out = k.cmd(["get", "serviceaccount", "default"]).output();
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| k8rs_e2e::render(&out))
    });
    k.ok_stdin(["apply", "-f", "-"], OBJECTS);
    k.ok_stdin(["apply", "-f", "-"], &vols_pod());
    wait_running(&k, "vols");
    let uid = k.ok(["get", "pod", "vols", "-o=jsonpath={.metadata.uid}"]);
    let pod_ip = k.ok(["get", "pod", "vols", "-o=jsonpath={.status.podIP}"]);
    let host_ip = k.ok(["get", "pod", "vols", "-o=jsonpath={.status.hostIP}"]);

    // configMap: files, a subPath of one key, and an update after `kubectl patch`.
    assert_eq!(exec(&k, "vols", "a", &["cat", "/cfg/greeting"]), "hello");
    assert_eq!(exec(&k, "vols", "a", &["cat", "/one/greeting"]), "hello");
    let links = exec(&k, "vols", "a", &["ls", "-la", "/cfg/"]);
    assert_contains(&links, "..data -> ..");
    assert_contains(&links, "greeting -> ..data/greeting");
    let patched = Instant::now();
    k.ok([
        "patch",
        "configmap",
        "cfg",
        "-p",
        r#"{"data":{"greeting":"updated"}}"#,
    ]);
    wait_for(Duration::from_secs(60), "configMap volume updated", || {
        let now = exec(&k, "vols", "a", &["cat", "/cfg/greeting"]);
        (now == "updated").then_some(()).ok_or(now)
    });
    // A read-only mount: API data volumes cannot be written.
    let write = k
        .cmd([
            "exec",
            "vols",
            "-c",
            "a",
            "--",
            "sh",
            "-c",
            "echo x > /cfg/new",
        ])
        .output();
    assert!(!write.status.success(), "{}", k8rs_e2e::render(&write));

    // secret with defaultMode 0400.
    assert_eq!(exec(&k, "vols", "a", &["cat", "/sec/password"]), "hunter2");
    assert_eq!(
        exec(
            &k,
            "vols",
            "a",
            &["stat", "-L", "-c", "%a", "/sec/password"]
        ),
        "400\n"
    );
    eprintln!(
        "configMap volume updated {:?} after the patch",
        patched.elapsed()
    );
    // A subPath mount is a bind of the file at set-up time: it keeps the old content.
    assert_eq!(exec(&k, "vols", "a", &["cat", "/one/greeting"]), "hello");
    assert_contains(
        &exec(&k, "vols", "a", &["sh", "-c", "grep ' /sec ' /proc/mounts"]),
        "tmpfs",
    );
    k.ok([
        "patch",
        "secret",
        "sec",
        "-p",
        r#"{"stringData":{"password":"rotated"}}"#,
    ]);
    wait_for(Duration::from_secs(60), "secret volume updated", || {
        let now = exec(&k, "vols", "a", &["cat", "/sec/password"]);
        (now == "rotated").then_some(()).ok_or(now)
    });

    // downwardAPI labels and a resource.
    assert_eq!(
        exec(&k, "vols", "a", &["cat", "/info/labels"]),
        "app=\"vols\"\ntier=\"test\""
    );
    assert_eq!(exec(&k, "vols", "a", &["cat", "/info/mem"]), "64");
    k.ok(["label", "pod", "vols", "extra=yes"]);
    wait_for(
        Duration::from_secs(60),
        "downwardAPI labels updated",
        || {
            let now = exec(&k, "vols", "a", &["cat", "/info/labels"]);
            now.contains("extra=\"yes\"").then_some(()).ok_or(now)
        },
    );

    // emptyDir shared by two containers; memory-backed emptyDir with its size.
    assert_eq!(
        exec(&k, "vols", "b", &["cat", "/from-a/hello"]),
        "hello from vols\n"
    );
    let mem = exec(&k, "vols", "a", &["sh", "-c", "grep ' /mem ' /proc/mounts"]);
    assert!(mem.starts_with("tmpfs /mem tmpfs"), "{mem}");
    assert_contains(&mem, "size=16384k");

    // Environment from every source.
    let env = exec(&k, "vols", "a", &["env"]);
    for want in [
        "POD_NAME=vols".to_string(),
        "POD_NS=default".to_string(),
        format!("POD_UID={uid}"),
        "APP=vols".to_string(),
        format!("NODE={NODE}"),
        "SA=default".to_string(),
        format!("POD_IP={pod_ip}"),
        format!("HOST_IP={host_ip}"),
        "MEM_MI=64".to_string(),
        "GREETING=hello".to_string(),
        "PASSWORD=hunter2".to_string(),
        "CFG_greeting=hello".to_string(),
        "CFG_color=blue".to_string(),
        "password=hunter2".to_string(),
        "COMPOSED=hello-blue $(GREETING) $(UNDEFINED)".to_string(),
        "KUBERNETES_SERVICE_HOST=".to_string(),
        "KUBERNETES_PORT_443_TCP_PROTO=tcp".to_string(),
        "MY_DB_SERVICE_PORT=5432".to_string(),
        "MY_DB_SERVICE_PORT_PG=5432".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(&want)),
            "{want} in\n{env}"
        );
    }
    assert!(!env.contains("MAYBE="), "{env}");
    // /etc/hosts managed by the kubelet.
    let hosts = exec(&k, "vols", "a", &["cat", "/etc/hosts"]);
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n"),
        "{hosts}"
    );
    assert_contains(&hosts, &format!("{pod_ip}\tvols\n"));
    assert_contains(&hosts, "10.1.2.3\tfoo.local\tbar.local\n");

    // The ServiceAccount token volume, and the token authenticates.
    let token = exec(&k, "vols", "a", &["cat", &format!("{TOKEN_DIR}/token")]);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(
        exec(&k, "vols", "a", &["cat", &format!("{TOKEN_DIR}/namespace")]),
        "default"
    );
    let ca = exec(&k, "vols", "a", &["cat", &format!("{TOKEN_DIR}/ca.crt")]);
    assert_contains(&ca, "BEGIN CERTIFICATE");
    let ca_file = k.write_file("pod-ca.crt", ca.as_bytes());
    let url = k.ok([
        "config",
        "view",
        "--minify",
        "-o=jsonpath={.clusters[0].cluster.server}",
    ]);
    let empty = k.write_file("empty.kubeconfig", b"");
    let whoami = k.ok([
        &format!("--kubeconfig={}", empty.display()),
        &format!("--server={url}"),
        &format!("--certificate-authority={}", ca_file.display()),
        &format!("--token={token}"),
        "auth",
        "whoami",
    ]);
    assert_contains(&whoami, "system:serviceaccount:default:default");

    // Termination messages: the file, and the log tail with FallbackToLogsOnError.
    k.ok_stdin(
        ["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: msg}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - {{name: file, image: busybox, command: [sh, -c, 'echo bye > /dev/termination-log; exit 3']}}
  - name: logs
    image: busybox
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, 'echo last words; exit 1']
"#
        ),
    );
    let messages = wait_for(Duration::from_secs(60), "termination messages", || {
        let out = k.ok([
            "get",
            "pod",
            "msg",
            "-o=jsonpath={range .status.containerStatuses[*]}{.name}={.state.terminated.message}|{end}",
        ]);
        (out.contains("file=bye") && out.contains("logs=last words"))
            .then(|| out.clone())
            .ok_or(out)
    });
    assert_eq!(messages, "file=bye\n|logs=last words\n|");

    // A missing ConfigMap: CreateContainerConfigError with upstream's message.
    k.ok_stdin(
        ["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: noconfig}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: missing, key: k}}}}}}]
"#
        ),
    );
    wait_for(
        Duration::from_secs(60),
        "CreateContainerConfigError",
        || {
            let out = k.ok(["get", "pod", "noconfig"]);
            out.contains("CreateContainerConfigError")
                .then_some(())
                .ok_or(out)
        },
    );
    assert_eq!(
        k.ok([
            "get",
            "pod",
            "noconfig",
            "-o=jsonpath={.status.containerStatuses[0].state.waiting.message}"
        ]),
        "configmap \"missing\" not found"
    );

    // A missing volume source: FailedMount, ContainerCreating, then Running once it exists.
    k.ok_stdin(
        ["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: nomount}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  volumes: [{{name: later, configMap: {{name: later}}}}]
  containers:
  - {{name: c, image: busybox, command: [sleep, "3600"], volumeMounts: [{{name: later, mountPath: /later}}]}}
"#
        ),
    );
    wait_for(Duration::from_secs(60), "FailedMount event", || {
        let out = k.ok([
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=nomount,reason=FailedMount",
            "-o=jsonpath={.items[*].message}",
        ]);
        out.contains(r#"MountVolume.SetUp failed for volume "later" : configmap "later" not found"#)
            .then_some(())
            .ok_or(out)
    });
    assert_contains(&k.ok(["get", "pod", "nomount"]), "ContainerCreating");
    k.ok(["create", "configmap", "later", "--from-literal=k=arrived"]);
    wait_running(&k, "nomount");
    assert_eq!(exec(&k, "nomount", "c", &["cat", "/later/k"]), "arrived");

    // Deleting the pods removes their volume directories and unmounts their tmpfs.
    assert!(pods_dir.join(&uid).is_dir());
    k.ok([
        "delete",
        "pod",
        "vols",
        "msg",
        "noconfig",
        "nomount",
        "--grace-period=1",
        "--wait=true",
    ]);
    wait_for(Duration::from_secs(60), "pod directories removed", || {
        let left: Vec<_> = std::fs::read_dir(&pods_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        left.is_empty().then_some(()).ok_or(format!("{left:?}"))
    });
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let data = server.data_dir().to_string_lossy().into_owned();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&data) && l.contains("/pods/")),
        "tmpfs mounts left behind:\n{mounts}"
    );
}

/// Containers outlive `k8rs up` by design: stop and remove this test's sandboxes through
/// CRI at the end, whether it passed or not, so no container or veth outlives the test.
struct RemoveSandboxes(std::path::PathBuf);

impl Drop for RemoveSandboxes {
    fn drop(&mut self) {
        use k8rs_kubelet::runtime::Runtime;
        let Ok(rt) = tokio::runtime::Runtime::new() else {
            return;
        };
        rt.block_on(async {
            let Ok(cri) = k8rs_kubelet::cri::CriRuntime::connect(&self.0) else {
                return;
            };
            for sandbox in cri.list_pod_sandboxes().await.unwrap_or_default() {
                let _ = cri.stop_pod_sandbox(&sandbox.id).await;
                let _ = cri.remove_pod_sandbox(&sandbox.id).await;
            }
        });
    }
}
