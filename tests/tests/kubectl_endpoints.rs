//! Endpoints and EndpointSlices follow the pods a Service selects: ready and not-ready
//! addresses from pod IPs and the Ready condition (written here through the status
//! subresource, as a kubelet would), named target ports resolved per pod.

mod common;

use std::time::Duration;

use k8rs_e2e::{assert_contains, eventually, kubectl_tests, Kubectl};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    tier: front
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
  - name: metrics
    port: 9090
    targetPort: 9100
"#;

/// A pod on node `n1` whose container names port `http` as `http_port`.
fn pod(name: &str, http_port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: web\nspec:\n  nodeName: n1\n  \
         containers:\n  - name: main\n    image: nginx:1.27\n    ports:\n    - name: http\n      containerPort: {http_port}\n"
    )
}

/// What a kubelet reports: running with `ip`, Ready or not since `since`.
fn set_status(k: &Kubectl<'_>, name: &str, ip: &str, ready: bool, since: &str) {
    let status = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": since}],
    }});
    k.ok([
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// `ip:port` strings of the ready (or not-ready) addresses of every subset, sorted.
fn addresses(ep: &Value, ready: bool) -> Vec<String> {
    let field = if ready {
        "addresses"
    } else {
        "notReadyAddresses"
    };
    let mut out = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for addr in subset[field].as_array().into_iter().flatten() {
            for port in subset["ports"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}:{}:{}",
                    addr["ip"].as_str().unwrap(),
                    port["name"].as_str().unwrap_or(""),
                    port["port"]
                ));
            }
        }
    }
    out.sort();
    out
}

fn slices(k: &Kubectl<'_>) -> Vec<Value> {
    let out = k.ok([
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// `ip ready/serving/terminating ports` per endpoint across the slices, sorted.
fn slice_endpoints(slices: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for slice in slices {
        let mut ports: Vec<String> = slice["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{}={}", p["name"].as_str().unwrap_or(""), p["port"]))
            .collect();
        ports.sort();
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            let c = &ep["conditions"];
            out.push(format!(
                "{} {}/{}/{} {}",
                ep["addresses"][0].as_str().unwrap(),
                c["ready"],
                c["serving"],
                c["terminating"],
                ports.join(",")
            ));
        }
    }
    out.sort();
    out
}

fn wait_endpoints(k: &Kubectl<'_>, ready: &[&str], not_ready: &[&str]) -> Value {
    eventually(WAIT, "the Endpoints to follow the pods", || {
        let out = k.cmd(["get", "endpoints", "web", "-o", "json"]).output();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let ep: Value = serde_json::from_slice(&out.stdout).unwrap();
        if addresses(&ep, true) == ready && addresses(&ep, false) == not_ready {
            Ok(ep)
        } else {
            Err(format!(
                "{:?} / {:?}",
                addresses(&ep, true),
                addresses(&ep, false)
            ))
        }
    })
}

fn wait_slices(k: &Kubectl<'_>, expected: &[&str]) -> Vec<Value> {
    eventually(WAIT, "the EndpointSlices to follow the pods", || {
        let s = slices(k);
        let got = slice_endpoints(&s);
        if got == expected {
            Ok(s)
        } else {
            Err(format!("{got:?}"))
        }
    })
}

kubectl_tests! {
    /// Pods become ready, unready and go; Endpoints and EndpointSlices follow, with the
    /// named port resolved per pod and the numeric one as is.
    fn endpoints_follow_pod_readiness(k) {
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n");
        k.ok_stdin(["create", "-f", "-"], SERVICE);
        k.ok_stdin(["create", "-f", "-"], &pod("a", 8080));
        k.ok_stdin(["create", "-f", "-"], &pod("b", 8081));

        // No pod has an IP yet: empty Endpoints, one placeholder slice.
        let ep = wait_endpoints(k, &[], &[]);
        assert_eq!(ep["metadata"]["labels"]["tier"], "front");
        let s = wait_slices(k, &[]);
        assert_eq!(s.len(), 1, "one placeholder slice: {s:?}");

        set_status(k, "a", "10.42.0.5", true, "2026-01-02T03:04:05Z");
        set_status(k, "b", "10.42.0.6", false, "2026-01-02T03:04:06Z");
        let ep = wait_endpoints(
            k,
            &["10.42.0.5:http:8080", "10.42.0.5:metrics:9100"],
            &["10.42.0.6:http:8081", "10.42.0.6:metrics:9100"],
        );
        let addr = ep["subsets"].as_array().unwrap().iter()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .next().unwrap();
        assert_eq!(addr["nodeName"], "n1");
        assert_eq!(addr["targetRef"]["kind"], "Pod");
        assert_eq!(addr["targetRef"]["name"], "a");
        assert!(ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_string(), "{ep}");

        let s = wait_slices(k, &[
            "10.42.0.5 true/true/false http=8080,metrics=9100",
            "10.42.0.6 false/false/false http=8081,metrics=9100",
        ]);
        // Different resolved ports: one slice each.
        assert_eq!(s.len(), 2);
        for slice in &s {
            assert_eq!(slice["addressType"], "IPv4");
            assert_eq!(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
            assert_eq!(slice["metadata"]["labels"]["tier"], "front");
            assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
            assert!(slice["metadata"]["name"].as_str().unwrap().starts_with("web-"));
            assert_eq!(slice["endpoints"][0]["nodeName"], "n1");
        }

        // kubectl's table shows the ready addresses.
        let table = k.ok(["get", "endpoints", "web"]);
        assert_contains(&table, "10.42.0.5:8080");

        // b turns ready, a turns unready.
        set_status(k, "b", "10.42.0.6", true, "2026-01-02T03:05:00Z");
        set_status(k, "a", "10.42.0.5", false, "2026-01-02T03:05:01Z");
        let ep = wait_endpoints(
            k,
            &["10.42.0.6:http:8081", "10.42.0.6:metrics:9100"],
            &["10.42.0.5:http:8080", "10.42.0.5:metrics:9100"],
        );
        // The earliest Ready transition the last write reflected (both changes may land
        // in one sync, or one each).
        let trigger = ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].clone();
        assert!(
            trigger == "2026-01-02T03:05:00Z" || trigger == "2026-01-02T03:05:01Z",
            "{trigger}"
        );
        wait_slices(k, &[
            "10.42.0.5 false/false/false http=8080,metrics=9100",
            "10.42.0.6 true/true/false http=8081,metrics=9100",
        ]);

        // A pod that goes is dropped from both.
        k.ok(["delete", "pod", "a", "--grace-period=0", "--force"]);
        wait_endpoints(k, &["10.42.0.6:http:8081", "10.42.0.6:metrics:9100"], &[]);
        let s = wait_slices(k, &["10.42.0.6 true/true/false http=8081,metrics=9100"]);
        assert_eq!(s.len(), 1);

        // Deleting the Service removes its Endpoints, and the slices with it.
        k.ok(["delete", "service", "web"]);
        eventually(WAIT, "the Endpoints and slices to go", || {
            let ep = k.cmd(["get", "endpoints", "web"]).output();
            let left = slices(k).len();
            if !ep.status.success() && left == 0 { Ok(()) } else { Err(format!("{left} slices")) }
        });
    }

    /// A Service without a selector keeps the Endpoints its user wrote.
    fn selectorless_service_keeps_handwritten_endpoints(k) {
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  ports:\n  - port: 5432\n");
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: ext\nsubsets:\n- addresses:\n  - ip: 192.0.2.10\n  ports:\n  - port: 5432\n");
        // Pods and service changes come and go; the Endpoints stay as written.
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: other\n  labels:\n    app: ext\nspec:\n  containers:\n  - name: main\n    image: nginx:1.27\n");
        k.ok(["label", "service", "ext", "touched=yes"]);
        std::thread::sleep(Duration::from_secs(2));
        let ep = k.get_json("endpoints", "ext", &[]);
        assert_eq!(ep["subsets"], json!([{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432, "protocol": "TCP"}]}]));
        assert!(ep["metadata"]["labels"].is_null(), "{ep}");
        // They are mirrored into a slice, which follows them and goes with them.
        let mirrored = |k: &Kubectl<'_>| -> Vec<Value> {
            let out = k.ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=ext", "-o", "json"]);
            let list: Value = serde_json::from_str(&out).unwrap();
            list["items"].as_array().cloned().unwrap_or_default()
        };
        let s = eventually(WAIT, "the mirrored slice", || {
            let s = mirrored(k);
            if slice_endpoints(&s) == ["192.0.2.10 true/null/null =5432"] { Ok(s) } else { Err(format!("{s:?}")) }
        });
        assert_eq!(s[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], "endpointslicemirroring-controller.k8s.io");
        assert_eq!(s[0]["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
        k.ok_stdin(["apply", "-f", "-"], "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: ext\nsubsets:\n- addresses:\n  - ip: 192.0.2.10\n  - ip: 192.0.2.11\n  ports:\n  - port: 5432\n");
        eventually(WAIT, "the mirrored slice to follow", || {
            let got = slice_endpoints(&mirrored(k));
            if got == ["192.0.2.10 true/null/null =5432", "192.0.2.11 true/null/null =5432"] { Ok(()) } else { Err(format!("{got:?}")) }
        });
        k.ok(["delete", "endpoints", "ext"]);
        eventually(WAIT, "the mirrored slice to go", || {
            let left = mirrored(k).len();
            if left == 0 { Ok(()) } else { Err(format!("{left} slices")) }
        });
    }
}
