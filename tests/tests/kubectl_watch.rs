//! Watching: `get -w` event streams and `wait` on a status field.

mod common;

use std::time::Duration;

use common::{create_pod, jsonpath};
use k8rs_e2e::{assert_contains, kubectl_tests, table_rows, KubectlVersion, TestServer};

/// Whether a `--output-watch-events` table has a row `EVENT NAME …`.
fn has_event(output: &str, event: &str, name: &str) -> bool {
    table_rows(output)
        .iter()
        .any(|row| row.len() >= 2 && row[0] == event && row[1] == name)
}

kubectl_tests! {
    /// `get pods -w --output-watch-events` sees ADDED, MODIFIED and DELETED.
    fn get_watch_events(k) {
        create_pod(k, "alpha", "nginx:1.27", &[("app", "web")]);
        let mut watch = k.spawn(["get", "pods", "-w", "--output-watch-events"]);
        let timeout = Duration::from_secs(15);
        // The initial list arrives as ADDED events.
        let out = watch.wait_for_stdout(timeout, |out| has_event(out, "ADDED", "alpha"));
        assert_eq!(
            table_rows(&out)[0],
            ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{out}"
        );

        create_pod(k, "beta", "busybox:1.36", &[("app", "web")]);
        watch.wait_for_stdout(timeout, |out| has_event(out, "ADDED", "beta"));

        k.ok(["label", "pod", "alpha", "tier=front"]);
        watch.wait_for_stdout(timeout, |out| has_event(out, "MODIFIED", "alpha"));

        k.ok(["delete", "pod", "beta", "--wait=false"]);
        let out = watch.wait_for_stdout(timeout, |out| has_event(out, "DELETED", "beta"));
        assert!(!has_event(&out, "DELETED", "alpha"), "{out}");
    }

    /// A plain `get -w` on one object prints its changes as table rows.
    fn get_watch_single_object(k) {
        create_pod(k, "alpha", "nginx:1.27", &[]);
        let mut watch = k.spawn(["get", "pod", "alpha", "-w", "-o", "name"]);
        let timeout = Duration::from_secs(15);
        watch.wait_for_stdout(timeout, |out| out.lines().count() >= 1);
        k.ok(["annotate", "pod", "alpha", "seen=yes"]);
        let out = watch.wait_for_stdout(timeout, |out| out.lines().count() >= 2);
        assert!(out.lines().all(|line| line == "pod/alpha"), "{out}");
    }

    /// `wait --for=jsonpath` returns once the status subresource is patched.
    fn wait_for_status_phase(k) {
        create_pod(k, "alpha", "nginx:1.27", &[]);
        let err = k.err([
            "wait", "--for=jsonpath={.status.phase}=Running", "pod/alpha", "--timeout=1s",
        ]);
        assert_contains(&err, "timed out waiting for the condition on pods/alpha");

        let waiter = k.spawn([
            "wait", "--for=jsonpath={.status.phase}=Running", "pod/alpha", "--timeout=20s",
        ]);
        let out = k.ok([
            "patch", "pod", "alpha", "--subresource=status", "--type=merge",
            "-p", r#"{"status":{"phase":"Running"}}"#,
        ]);
        assert_eq!(out.trim(), "pod/alpha patched");
        let (status, stdout, stderr) = waiter.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "wait failed: {status}\n{stdout}{stderr}");
        assert_eq!(stdout.trim(), "pod/alpha condition met");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.status.phase}"), "Running");

        // The status subresource ignores spec changes; the main resource ignores status.
        k.ok([
            "patch", "pod", "alpha", "--type=merge",
            "-p", r#"{"status":{"phase":"Failed"}}"#,
        ]);
        assert_eq!(jsonpath(k, "pod", "alpha", "{.status.phase}"), "Running");
    }
}

/// A watch from a revision older than the server's history gets one 410 `ERROR` event
/// (upstream's cacher), which makes clients re-list. After a restart the history starts
/// at the store's revision, so an early revision is too old.
fn watch_from_expired_revision(version: KubectlVersion) {
    let mut server = TestServer::start();
    let k = server.with_version(version);
    k.ok([
        "create",
        "configmap",
        "before-restart",
        "--from-literal=a=b",
    ]);
    server.restart();
    let k = server.with_version(version);
    let out = k.ok([
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1&timeoutSeconds=2",
    ]);
    let event: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("not a watch event ({e}): {out}"));
    assert_eq!(event["type"], "ERROR", "{out}");
    assert_eq!(event["object"]["code"], 410, "{out}");
    assert_eq!(event["object"]["reason"], "Expired", "{out}");
    assert_contains(&out, "too old resource version: 1 (");
    // The object written before the kill is still there.
    assert_contains(
        &k.ok(["get", "configmap", "before-restart", "-o", "name"]),
        "configmap/before-restart",
    );
}

#[test]
fn watch_from_expired_revision_kubectl_1_32() {
    watch_from_expired_revision(KubectlVersion::V1_32);
}

#[test]
fn watch_from_expired_revision_kubectl_1_33() {
    watch_from_expired_revision(KubectlVersion::V1_33);
}
