//! `pods/<name>/eviction` and `kubectl drain`: evictions respect PodDisruptionBudgets.

mod common;

use common::create_pod;
use k8rs_e2e::{assert_contains, kubectl_tests};

kubectl_tests! {
    /// A running pod covered by a budget that allows no disruption is not evicted (429);
    /// once the budget allows one, `kubectl drain` evicts it and the budget records it.
    fn drain_respects_disruption_budget(k) {
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n");
        create_pod(k, "e1", "nginx:1.27", &[("app", "e")]);
        k.ok_stdin(
            ["create", "--raw", "/api/v1/namespaces/default/pods/e1/binding", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"e1"},"target":{"name":"n1"}}"#,
        );
        k.ok(["patch", "pod", "e1", "--subresource=status", "-p", r#"{"status":{"phase":"Running"}}"#]);
        k.ok(["create", "pdb", "pb", "--selector=app=e", "--min-available=1"]);

        let eviction = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"e1","namespace":"default"}}"#;
        let err = k.err_stdin(["create", "--raw", "/api/v1/namespaces/default/pods/e1/eviction", "-f", "-"], eviction);
        assert_contains(&err, "Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.");

        // What the disruption controller would report for two healthy pods.
        k.ok([
            "patch", "pdb", "pb", "--subresource=status", "--type=merge", "-p",
            r#"{"status":{"observedGeneration":1,"disruptionsAllowed":1,"currentHealthy":2,"desiredHealthy":1,"expectedPods":2}}"#,
        ]);
        let out = k.ok(["drain", "n1", "--force", "--grace-period=0", "--timeout=30s"]);
        assert_contains(&out, "pod/e1 evicted");
        assert_contains(&out, "node/n1 drained");
        assert_contains(&k.ok(["get", "node", "n1"]), "SchedulingDisabled");
        let err = k.err(["get", "pod", "e1"]);
        assert_contains(&err, "pods \"e1\" not found");
        let pdb = k.ok(["get", "pdb", "pb", "-o", "jsonpath={.status.disruptionsAllowed} {.status.disruptedPods.e1}"]);
        assert!(pdb.starts_with("0 "), "the eviction spent the disruption: {pdb}");
    }
}
