//! Bad input: every rejection carries upstream's wording, and the server keeps serving.

mod common;

use common::deployment;
use k8rs_e2e::{assert_contains, kubectl_tests};

const RFC1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
    (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

kubectl_tests! {
    /// Malformed JSON bodies are a 400 from the server; malformed YAML never leaves kubectl.
    fn malformed_bodies(k) {
        let truncated = k.write_file(
            "truncated.json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x""#,
        );
        let err = k.err([
            "create", "--raw", "/api/v1/namespaces/default/configmaps",
            "-f", &truncated.to_string_lossy(),
        ]);
        assert_contains(&err, "Error from server (BadRequest)");
        k.assert_still_serving();

        let not_an_object = k.write_file("array.json", b"[1, 2, 3]");
        let err = k.err([
            "create", "--raw", "/api/v1/namespaces/default/configmaps",
            "-f", &not_an_object.to_string_lossy(),
        ]);
        assert_contains(&err, "Error from server (BadRequest)");
        k.assert_still_serving();

        let err = k.err_stdin(["apply", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n");
        assert_contains(&err, "error");
        let err = k.err_stdin(["create", "-f", "-"], "{\"apiVersion\": \"v1\", \"kind\": ");
        assert_contains(&err, "error");
        k.assert_still_serving();
        let out = k.cmd(["get", "configmap", "x"]).output();
        assert!(!out.status.success(), "no ConfigMap may have been created");
    }

    /// Kinds and resource types the server does not serve.
    fn unknown_kinds_and_versions(k) {
        let err = k.err_stdin(
            ["apply", "-f", "-"],
            "apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: thing\n",
        );
        assert_contains(
            &err,
            "error: resource mapping not found for name: \"thing\" namespace: \"\" from \"STDIN\": \
             no matches for kind \"Gizmo\" in version \"v1\"",
        );
        assert_contains(&err, "ensure CRDs are installed first");

        let err = k.err(["get", "gizmos"]);
        assert_eq!(err.trim(), "error: the server doesn't have a resource type \"gizmos\"");

        let wrong_group = deployment(1).replace("apiVersion: apps/v1", "apiVersion: v1");
        let err = k.err_stdin(["create", "-f", "-"], &wrong_group);
        assert_contains(&err, "no matches for kind \"Deployment\" in version \"v1\"");
        let wrong_version = deployment(1).replace("apiVersion: apps/v1", "apiVersion: apps/v2");
        let err = k.err_stdin(["create", "-f", "-"], &wrong_version);
        assert_contains(&err, "no matches for kind \"Deployment\" in version \"apps/v2\"");

        let err = k.err(["get", "--raw", "/apis/apps/v2/deployments"]);
        assert_contains(&err, "Error from server (NotFound)");
        k.assert_still_serving();
    }

    /// Invalid names and missing required fields are 422 Invalid with field paths.
    fn validation_errors(k) {
        let bad_name = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\ndata:\n  a: b\n";
        let err = k.err_stdin(["create", "-f", "-"], bad_name);
        assert_contains(
            &err,
            &format!(
                "The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \
                 \"Bad_Name\": {RFC1123_SUBDOMAIN}"
            ),
        );
        let err = k.err(["create", "configmap", "Bad_Name", "--from-literal=a=b"]);
        assert_contains(&err, "metadata.name: Invalid value: \"Bad_Name\"");

        let no_containers = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: empty\nspec:\n  containers: []\n";
        let err = k.err_stdin(["create", "-f", "-"], no_containers);
        assert_contains(&err, "The Pod \"empty\" is invalid: spec.containers: Required value");

        let no_selector = deployment(1).replace(
            "  selector:\n    matchLabels:\n      app: web\n",
            "",
        );
        let err = k.err_stdin(["create", "-f", "-"], &no_selector);
        assert_contains(&err, "The Deployment \"web\" is invalid");
        assert_contains(&err, "spec.selector: Required value");

        let no_name = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    a: b\n";
        let err = k.err_stdin(["create", "-f", "-"], no_name);
        assert_contains(&err, "name or generateName is required");
        k.assert_still_serving();
        let out = k.ok(["get", "configmaps", "-o", "name"]);
        assert!(!out.contains("Bad_Name"), "{out}");
    }

    /// Unknown fields: rejected under --validate=strict, warned about under warn.
    fn unknown_fields(k) {
        let with_foo = deployment(1).replace("  replicas: 1\n", "  replicas: 1\n  foo: bar\n");
        let err = k.err_stdin(["create", "--validate=strict", "-f", "-"], &with_foo);
        assert_contains(
            &err,
            "Error from server (BadRequest): error when creating \"STDIN\": Deployment in version \
             \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.foo\"",
        );
        // strict is kubectl's default.
        let err = k.err_stdin(["apply", "-f", "-"], &with_foo);
        assert_contains(&err, "unknown field \"spec.foo\"");
        let out = k.cmd(["get", "deployment", "web"]).output();
        assert!(!out.status.success(), "the rejected Deployment must not exist");

        let out = k.cmd(["create", "--validate=warn", "-f", "-"]).stdin(&with_foo).output();
        assert!(out.status.success(), "{}", k8rs_e2e::render(&out));
        assert_contains(&String::from_utf8_lossy(&out.stderr), "Warning: unknown field \"spec.foo\"");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deployment.apps/web created");
        let live = k.ok(["get", "deployment", "web", "-o", "json"]);
        assert!(!live.contains("\"foo\""), "unknown fields are dropped:\n{live}");
        k.assert_still_serving();
    }

    /// Request bodies over 3 MiB are refused with 413 before they are decoded.
    fn oversized_body(k) {
        let big = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {}\n",
            "x".repeat(3 * 1024 * 1024 + 1024)
        );
        let err = k.err_stdin(["create", "-f", "-"], &big);
        assert_contains(
            &err,
            "Error from server (RequestEntityTooLarge): error when creating \"STDIN\": \
             Request entity too large: limit is 3145728",
        );
        k.assert_still_serving();
        let err = k.err(["get", "configmap", "big"]);
        assert_contains(&err, "configmaps \"big\" not found");
        common::create_configmap(k, "small", "a", "b");
    }
}
