//! Namespace lifecycle with the controllers running: the `default` ServiceAccount and
//! `kube-root-ca.crt` in every namespace, deletion of everything in a deleted namespace,
//! the Terminating phase and its conditions, and creation refused meanwhile.

mod common;

use std::time::Duration;

use common::{create_namespace, jsonpath};
use k8rs_e2e::{assert_contains, eventually, kubectl_tests, Kubectl};

const WAIT: Duration = Duration::from_secs(30);

fn wait_for(k: &Kubectl<'_>, args: &[&str]) -> String {
    eventually(WAIT, &args.join(" "), || {
        let out = k.cmd(args).output();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
}

kubectl_tests! {
    /// A new namespace gets the `default` ServiceAccount (back again after deletion) and
    /// the cluster CA as `kube-root-ca.crt`.
    fn new_namespaces_get_default_account_and_root_ca(k) {
        create_namespace(k, "team-a");
        wait_for(k, &["get", "serviceaccount", "default", "-n", "team-a"]);
        let uid = k.ok(["get", "sa", "default", "-n", "team-a", "-o", "jsonpath={.metadata.uid}"]);
        k.ok(["delete", "sa", "default", "-n", "team-a"]);
        let recreated = eventually(WAIT, "default to come back", || {
            let out = k.cmd(["get", "sa", "default", "-n", "team-a", "-o", "jsonpath={.metadata.uid}"]).output();
            let new_uid = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && new_uid != uid { Ok(new_uid) } else { Err(new_uid) }
        });
        assert!(!recreated.is_empty());

        wait_for(k, &["get", "configmap", "kube-root-ca.crt", "-n", "team-a"]);
        let ca = k.ok(["get", "cm", "kube-root-ca.crt", "-n", "team-a", "-o", "jsonpath={.data.ca\\.crt}"]);
        let expected = std::fs::read_to_string(k.server().data_dir().join("pki/ca.crt")).unwrap();
        assert_eq!(ca.trim(), expected.trim());
        let description = k.ok(["get", "cm", "kube-root-ca.crt", "-n", "team-a", "-o", "jsonpath={.metadata.annotations.kubernetes\\.io/description}"]);
        assert_contains(&description, "Contains a CA bundle that can be used to verify the kube-apiserver");
        // Edited: put back.
        k.ok(["patch", "cm", "kube-root-ca.crt", "-n", "team-a", "--type=merge", "-p", r#"{"data":{"ca.crt":"tampered"}}"#]);
        eventually(WAIT, "the CA to be restored", || {
            let now = k.ok(["get", "cm", "kube-root-ca.crt", "-n", "team-a", "-o", "jsonpath={.data.ca\\.crt}"]);
            if now.trim() == expected.trim() { Ok(()) } else { Err(now) }
        });
        // The built-in namespaces have them too.
        wait_for(k, &["get", "sa", "default", "-n", "default"]);
        wait_for(k, &["get", "cm", "kube-root-ca.crt", "-n", "kube-system"]);
    }

    /// `kubectl delete namespace` waits while everything in it is deleted, then the
    /// namespace itself goes.
    fn deleting_a_namespace_deletes_its_content(k) {
        create_namespace(k, "doomed");
        k.ok(["create", "configmap", "c1", "-n", "doomed", "--from-literal=a=b"]);
        k.ok(["create", "secret", "generic", "s1", "-n", "doomed", "--from-literal=a=b"]);
        k.ok(["create", "service", "clusterip", "svc", "-n", "doomed", "--tcp=80:8080"]);
        k.ok_stdin(["create", "-n", "doomed", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\nspec:\n  containers:\n  - name: main\n    image: nginx:1.27\n");
        k.ok(["create", "deployment", "web", "-n", "doomed", "--image=nginx:1.27", "--replicas=0"]);
        wait_for(k, &["get", "sa", "default", "-n", "doomed"]);

        let out = k.ok(["delete", "namespace", "doomed", "--timeout=60s"]);
        assert_contains(&out, "namespace \"doomed\" deleted");
        let err = k.err(["get", "namespace", "doomed"]);
        assert_contains(&err, "namespaces \"doomed\" not found");
        for resource in ["configmaps", "secrets", "services", "pods", "deployments", "serviceaccounts"] {
            let out = k.cmd(["get", resource, "-n", "doomed", "-o", "name"]).output();
            assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty(), "{resource} left behind");
        }
    }

    /// A namespace whose content is held by a finalizer stays Terminating with upstream's
    /// conditions, refuses new content with upstream's message, and goes once released.
    fn terminating_namespace_reports_conditions_and_refuses_content(k) {
        create_namespace(k, "held");
        k.ok_stdin(["create", "-n", "held", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  finalizers:\n  - example.com/hold\n");
        k.ok(["delete", "namespace", "held", "--wait=false"]);
        assert_eq!(jsonpath(k, "namespace", "held", "{.status.phase}"), "Terminating");
        let conditions = eventually(WAIT, "the deletion conditions", || {
            let c = jsonpath(k, "namespace", "held", "{range .status.conditions[*]}{.type}={.status}/{.reason}/{.message}{\"\\n\"}{end}");
            if c.contains("NamespaceFinalizersRemaining=True") { Ok(c) } else { Err(c) }
        });
        assert_contains(&conditions, "NamespaceDeletionDiscoveryFailure=False/ResourcesDiscovered/All resources successfully discovered");
        assert_contains(&conditions, "NamespaceDeletionGroupVersionParsingFailure=False/ParsedGroupVersions/All legacy kube types successfully parsed");
        assert_contains(&conditions, "NamespaceDeletionContentFailure=False/ContentDeleted/All content successfully deleted, may be waiting on finalization");
        assert_contains(&conditions, "NamespaceContentRemaining=True/SomeResourcesRemain/Some resources are remaining: configmaps. has 1 resource instances");
        assert_contains(&conditions, "NamespaceFinalizersRemaining=True/SomeFinalizerRemain/Some finalizers are remaining: example.com/hold in 1 resource instances");
        let ts = k.ok(["get", "configmap", "kept", "-n", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
        assert!(!ts.is_empty(), "the content is marked for deletion");

        let err = k.err_stdin(["create", "-n", "held", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n");
        assert_contains(&err, "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace held because it is being terminated");
        let err = k.err(["create", "deployment", "late", "-n", "held", "--image=nginx"]);
        assert_contains(&err, "deployments.apps \"late\" is forbidden: unable to create new content in namespace held because it is being terminated");

        k.ok(["patch", "configmap", "kept", "-n", "held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
        eventually(WAIT, "the namespace to go", || {
            let out = k.cmd(["get", "namespace", "held"]).output();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            if err.contains("not found") { Ok(()) } else { Err(String::from_utf8_lossy(&out.stdout).into_owned()) }
        });
    }

    /// The finalize subresource is served as upstream: only PUT, only spec.finalizers.
    fn finalize_subresource_removes_the_finalizer(k) {
        let discovery: serde_json::Value = serde_json::from_str(&k.ok(["get", "--raw", "/api/v1"])).unwrap();
        let finalize = discovery["resources"].as_array().unwrap().iter()
            .find(|r| r["name"] == "namespaces/finalize")
            .cloned()
            .expect("namespaces/finalize in discovery");
        assert_eq!(finalize["verbs"], serde_json::json!(["update"]));
        let err = k.err(["get", "--raw", "/api/v1/namespaces/default/finalize"]);
        assert_contains(&err, "MethodNotAllowed");
        let _ = k.ok(["create", "namespace", "manual"]);
        let body = k.ok(["get", "--raw", "/api/v1/namespaces/manual"]);
        let mut ns: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
        ns["spec"]["finalizers"] = serde_json::json!([]);
        ns["metadata"]["labels"] = serde_json::json!({"ignored": "yes"});
        let out = k.ok_stdin(["replace", "--raw", "/api/v1/namespaces/manual/finalize", "-f", "-"], &ns.to_string());
        let after: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(after["spec"]["finalizers"], serde_json::json!([]));
        assert!(after["metadata"]["labels"].get("ignored").is_none(), "finalize changes only spec.finalizers: {after}");
        // With no finalizer left, deleting the namespace is immediate.
        k.ok(["delete", "namespace", "manual", "--wait=false"]);
        let err = k.err(["get", "namespace", "manual"]);
        assert_contains(&err, "not found");
    }
}
