//! `kubectl logs`, `exec`, `cp`, `port-forward`, `top` and `nodes/proxy` through the API
//! server to a kubelet: the real kubelet HTTPS server and streaming protocols, with the
//! container runtime replaced by a test double (`common/fake_node.rs`) so the path runs
//! without containerd.

#[path = "common/fake_node.rs"]
mod fake_node;

use std::io::{Read, Write};
use std::time::Duration;

use fake_node::FakeNode;
use k8rs_e2e::{assert_contains, eventually, kubectl_tests, Kubectl};

/// Register a fake node `n1` and a running pod `p1` (containers `c1`, optionally `c2`)
/// on it; returns the node and the pod's uid.
fn setup(k: &Kubectl<'_>, two_containers: bool) -> (FakeNode, String) {
    let server = k.server();
    let node = FakeNode::start("n1", server.data_dir(), &server.kubeconfig());
    let (manifest, status) = node.node_manifest("n1");
    k.ok_stdin(["create", "-f", "-"], &manifest);
    k.ok([
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    let second = if two_containers {
        "  - name: c2\n    image: busybox\n"
    } else {
        ""
    };
    k.ok_stdin(
        ["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  nodeName: n1\n  containers:\n  - name: c1\n    image: busybox\n{second}"),
    );
    let uid = k.ok(["get", "pod", "p1", "-o", "jsonpath={.metadata.uid}"]);
    let running = |name: &str| {
        format!(
            r#"{{"name":"{name}","image":"busybox","imageID":"","ready":true,"restartCount":0,"started":true,"containerID":"test://{uid}-{name}","state":{{"running":{{"startedAt":"2024-05-01T10:00:00Z"}}}}}}"#
        )
    };
    let mut statuses = vec![running("c1")];
    if two_containers {
        statuses.push(r#"{"name":"c2","image":"busybox","imageID":"","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ContainerCreating"}}}"#.to_string());
    }
    k.ok([
        "patch",
        "pod",
        "p1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"phase":"Running","containerStatuses":[{}]}}}}"#,
            statuses.join(",")
        ),
    ]);
    (node, uid)
}

kubectl_tests! {
    /// Logs come from the CRI log file: all, tail, timestamps; `-f` streams new lines and
    /// ends when the container stops. Validation errors are upstream's.
    fn logs(k) {
        let (node, uid) = setup(k, true);
        node.append_log("default", "p1", &uid, "c1", 0, &[
            ("2024-05-01T10:00:00.1Z", "stdout", "one"),
            ("2024-05-01T10:00:01.2Z", "stderr", "two"),
            ("2024-05-01T10:00:02.3Z", "stdout", "three"),
        ]);
        assert_eq!(k.ok(["logs", "p1", "-c", "c1"]), "one\ntwo\nthree\n");
        assert_eq!(k.ok(["logs", "p1", "-c", "c1", "--tail=1"]), "three\n");
        assert_eq!(
            k.ok(["logs", "p1", "-c", "c1", "--tail=2", "--timestamps"]),
            "2024-05-01T10:00:01.2Z two\n2024-05-01T10:00:02.3Z three\n"
        );
        assert_eq!(k.ok(["logs", "p1", "-c", "c1", "--limit-bytes=6"]), "one\ntw");

        // kubectl picks the first container itself; the server's own check answers raw GETs.
        let err = k.err(["get", "--raw", "/api/v1/namespaces/default/pods/p1/log"]);
        assert_contains(&err, "a container name must be specified for pod p1, choose one of: [c1 c2]");
        let err = k.err(["logs", "p1", "-c", "c2"]);
        assert_contains(&err, r#"Error from server (BadRequest): container "c2" in pod "p1" is waiting to start: ContainerCreating"#);
        let err = k.err(["logs", "p1", "-c", "c1", "--previous"]);
        assert_contains(&err, r#"previous terminated container "c1" in pod "p1" not found"#);

        let mut follow = k.spawn(["logs", "-f", "p1", "-c", "c1"]);
        follow.wait_for_stdout(Duration::from_secs(10), |o| o.contains("three\n"));
        node.append_log("default", "p1", &uid, "c1", 0, &[("2024-05-01T10:00:03.4Z", "stdout", "four")]);
        follow.wait_for_stdout(Duration::from_secs(10), |o| o.contains("four\n"));
        node.set_running(false);
        let (status, out, err) = follow.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "logs -f ends cleanly when the container stops: {err}");
        assert_eq!(out, "one\ntwo\nthree\nfour\n");
    }

    /// `exec` runs the command, passes stdin (closed at EOF) and stdout/stderr, and exits
    /// with the command's exit code.
    fn exec_and_cp(k) {
        let (_node, _) = setup(k, false);
        let out = k.cmd(["exec", "p1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]).output();
        assert_eq!(out.status.code(), Some(3), "{}", k8rs_e2e::render(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\ncommand terminated with exit code 3\n");
        assert_eq!(k.ok(["exec", "p1", "--", "true"]), "");
        let echoed = k.cmd(["exec", "-i", "p1", "--", "sh", "-c", "tr a-z A-Z"]).stdin("hello stdin\n").ok();
        assert_eq!(echoed, "HELLO STDIN\n");

        // cp in and out (tar through exec); the "container" is the test host.
        let dir = tempfile::tempdir().unwrap();
        let local = k.write_file("payload.txt", b"copied bytes\n");
        let remote = format!("p1:{}/in.txt", dir.path().display());
        k.ok(["cp", local.to_str().unwrap(), &remote]);
        assert_eq!(std::fs::read_to_string(dir.path().join("in.txt")).unwrap(), "copied bytes\n");
        let back = k.server().scratch_dir().join("back.txt");
        k.ok(["cp", &remote, back.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(back).unwrap(), "copied bytes\n");

        let err = k.err(["exec", "p1", "-c", "nope", "--", "true"]);
        assert_contains(&err, "container nope is not valid for pod p1");
    }

    /// `port-forward` (WebSocket-tunnelled SPDY) reaches a port "in the pod".
    fn port_forward(k) {
        let (_node, _) = setup(k, false);
        let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target_port = target.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in target.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut req = [0u8; 1024];
                let n = conn.read(&mut req).unwrap_or(0);
                let body = format!("hello from the pod; you sent {} bytes\n", n);
                let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            }
        });
        let mut pf = k.spawn(["port-forward", "pod/p1", &format!(":{target_port}")]);
        let out = pf.wait_for_stdout(Duration::from_secs(15), |o| o.contains("Forwarding from 127.0.0.1:"));
        let local: u16 = out
            .split("Forwarding from 127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("local port");
        for _ in 0..2 {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut resp = String::new();
            conn.read_to_string(&mut resp).unwrap();
            assert!(resp.starts_with("HTTP/1.0 200 OK"), "{resp}");
            assert_contains(&resp, "hello from the pod; you sent 18 bytes");
        }
    }

    /// `kubectl top` reads metrics.k8s.io, served from the kubelet's summary; the summary
    /// is also reachable through `nodes/proxy`.
    fn top_and_node_proxy(k) {
        let (_node, _) = setup(k, false);
        let summary = k.ok(["get", "--raw", "/api/v1/nodes/n1/proxy/stats/summary"]);
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["node"]["nodeName"], "n1");
        assert_eq!(summary["pods"][0]["podRef"]["name"], "p1");
        assert_eq!(summary["pods"][0]["containers"][0]["memory"]["workingSetBytes"], 4 << 20);

        // Like metrics-server, the first sample of a new pod may not be there yet.
        let pods = eventually(Duration::from_secs(20), "metrics for p1", || {
            let out = k.cmd(["top", "pod", "p1"]).output();
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        });
        let row: Vec<&str> = pods.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[0], "p1");
        // The double burns a quarter of a core.
        let milli: u64 = row[1].trim_end_matches('m').parse().unwrap();
        assert!((200..=300).contains(&milli), "{pods}");
        assert_eq!(row[2], "4Mi");
        let nodes = k.ok(["top", "node"]);
        assert_contains(&nodes, "n1");
        let containers = k.ok(["top", "pod", "p1", "--containers"]);
        assert_contains(&containers, "c1");

        let discovery = k.ok(["api-resources", "--api-group=metrics.k8s.io"]);
        assert_contains(&discovery, "PodMetrics");
        let subresources = k.ok(["get", "--raw", "/api/v1"]);
        for sub in ["pods/log", "pods/exec", "pods/attach", "pods/portforward", "nodes/proxy"] {
            assert_contains(&subresources, &format!("\"{sub}\""));
        }
    }
}
