//! Binding pods to nodes, the scheduler's write: `pods/<name>/binding` and `bindings`.

mod common;

use common::create_pod;
use k8rs_e2e::{assert_contains, kubectl_tests};

fn binding(pod: &str, target: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{pod}"}},"target":{target}}}"#
    )
}

kubectl_tests! {
    /// A binding sets `spec.nodeName` and `PodScheduled=True`; a second one conflicts; a
    /// bad target is `422 Invalid`; `bindings` binds the pod it names.
    fn bind_pods_to_nodes(k) {
        create_pod(k, "alpha", "nginx:1.27", &[("app", "web")]);
        let path = "/api/v1/namespaces/default/pods/alpha/binding";
        let ok = k.ok_stdin(["create", "--raw", path, "-f", "-"], &binding("alpha", r#"{"kind":"Node","name":"node-1"}"#));
        assert_contains(&ok, r#""status":"Success""#);
        let node = k.ok(["get", "pod", "alpha", "-o", "jsonpath={.spec.nodeName}"]);
        assert_eq!(node.trim(), "node-1");
        let scheduled = k.ok(["get", "pod", "alpha", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}"]);
        assert_eq!(scheduled.trim(), "True");

        let err = k.err_stdin(["create", "--raw", path, "-f", "-"], &binding("alpha", r#"{"name":"node-2"}"#));
        assert_contains(&err, r#"Operation cannot be fulfilled on pods/binding "alpha": pod alpha is already assigned to node "node-1""#);

        create_pod(k, "beta", "nginx:1.27", &[("app", "web")]);
        let err = k.err_stdin(
            ["create", "--raw", "/api/v1/namespaces/default/pods/beta/binding", "-f", "-"],
            &binding("beta", r#"{"kind":"Pod"}"#),
        );
        assert_contains(&err, "target.kind: Unsupported value: \"Pod\"");
        assert_contains(&err, "target.name: Required value");

        k.ok_stdin(["create", "--raw", "/api/v1/namespaces/default/bindings", "-f", "-"], &binding("beta", r#"{"name":"node-2"}"#));
        let node = k.ok(["get", "pod", "beta", "-o", "jsonpath={.spec.nodeName}"]);
        assert_eq!(node.trim(), "node-2");
        // Bindings are not stored objects.
        let err = k.err(["get", "--raw", "/api/v1/namespaces/default/bindings"]);
        assert_contains(&err, "MethodNotAllowed");
    }
}
