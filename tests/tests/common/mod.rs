//! Manifests and small helpers shared by the kubectl suites.
#![allow(dead_code)] // each test file uses a different subset

use k8rs_e2e::Kubectl;

/// A ConfigMap, a Deployment and a Service in one multi-document YAML stream.
pub const WEB_STACK: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
"#;

/// The Deployment `web` alone, with `replicas` replicas.
pub fn deployment(replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#
    )
}

/// A Pod with one container and the given labels (`key: value` pairs).
pub fn pod(name: &str, image: &str, labels: &[(&str, &str)]) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n{labels}spec:\n  \
         containers:\n  - name: main\n    image: {image}\n"
    )
}

/// Creates a Pod through `kubectl create -f -` and checks kubectl's answer.
pub fn create_pod(k: &Kubectl<'_>, name: &str, image: &str, labels: &[(&str, &str)]) {
    let out = k.ok_stdin(["create", "-f", "-"], &pod(name, image, labels));
    assert_eq!(out.trim(), format!("pod/{name} created"));
}

/// `kubectl get RESOURCE NAME -o jsonpath=PATH`.
pub fn jsonpath(k: &Kubectl<'_>, resource: &str, name: &str, path: &str) -> String {
    k.ok(["get", resource, name, "-o", &format!("jsonpath={path}")])
}

/// The value of a `Key:  value` line in `kubectl describe` output (first match).
pub fn describe_field(output: &str, key: &str) -> Option<String> {
    output.lines().find_map(|line| {
        line.trim_start()
            .strip_prefix(&format!("{key}:"))
            .map(|rest| rest.trim().to_string())
    })
}

/// Asserts that `kubectl describe` printed `key:` with `value`.
#[track_caller]
pub fn assert_describe_field(output: &str, key: &str, value: &str) {
    assert_eq!(
        describe_field(output, key).as_deref(),
        Some(value),
        "field {key:?} in:\n{output}"
    );
}

/// Creates a Namespace from YAML (the `create namespace` generator is tested on its own).
pub fn create_namespace(k: &Kubectl<'_>, name: &str) {
    let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
    let out = k.ok_stdin(["create", "-f", "-"], &manifest);
    assert_eq!(out.trim(), format!("namespace/{name} created"));
}

/// Creates a ConfigMap with one `key: value` entry from YAML.
pub fn create_configmap(k: &Kubectl<'_>, name: &str, key: &str, value: &str) {
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {key}: \"{value}\"\n"
    );
    let out = k.ok_stdin(["create", "-f", "-"], &manifest);
    assert_eq!(out.trim(), format!("configmap/{name} created"));
}

/// Registers a Node as a kubelet would (there is no kubelet in these tests): the object
/// with `labels` and `taints` (YAML flow sequences, e.g. `[{key: a, effect: NoSchedule}]`),
/// then its status with capacity = allocatable and `Ready=True`.
pub fn fake_node(
    k: &Kubectl<'_>,
    name: &str,
    cpu: &str,
    memory: &str,
    labels: &[(&str, &str)],
    taints: &str,
) {
    let mut label_lines = format!("    kubernetes.io/hostname: {name}\n");
    for (key, value) in labels {
        label_lines.push_str(&format!("    {key}: \"{value}\"\n"));
    }
    let manifest = format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n{label_lines}spec:\n  taints: {taints}\n"
    );
    k.ok_stdin(["apply", "-f", "-"], &manifest);
    let resources = format!(r#"{{"cpu":"{cpu}","memory":"{memory}","pods":"110"}}"#);
    let status = format!(
        r#"{{"status":{{"capacity":{resources},"allocatable":{resources},"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}}]}}}}"#
    );
    k.ok([
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
}

/// Polls `kubectl get <args>` until `done` accepts its output; panics with the last
/// output after `timeout`.
pub fn wait_until(
    k: &Kubectl<'_>,
    args: &[&str],
    timeout: std::time::Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let out = k.cmd(args.iter().copied()).output();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && done(&text) {
            return text;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out waiting on `kubectl {}`; last output:\n{text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
