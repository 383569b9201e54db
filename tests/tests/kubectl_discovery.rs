//! Version, discovery, OpenAPI-backed `explain` and `auth whoami`.

use k8rs_e2e::{assert_contains, kubectl_tests, table_rows};

kubectl_tests! {
    /// `kubectl version` reports the server as v1.33.
    fn version(k) {
        let out = k.ok(["version"]);
        assert_contains(&out, &format!("Client Version: v{}.", k.version().as_str()));
        assert_contains(&out, "Server Version: v1.33.");

        let json: serde_json::Value = serde_json::from_str(&k.ok(["version", "-o", "json"]))
            .expect("version -o json is JSON");
        let server = &json["serverVersion"];
        assert_eq!(server["major"], "1");
        assert_eq!(server["minor"], "33");
        assert!(
            server["gitVersion"].as_str().unwrap_or("").starts_with("v1.33."),
            "gitVersion: {server}"
        );
    }

    /// `kubectl api-resources` lists core and apps resources with short names.
    fn api_resources(k) {
        let out = k.ok(["api-resources"]);
        let rows = table_rows(&out);
        assert_eq!(
            rows[0],
            ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
            "header of:\n{out}"
        );
        let row = |name: &str| {
            rows.iter()
                .find(|r| r[0] == name)
                .unwrap_or_else(|| panic!("no {name} row in:\n{out}"))
                .clone()
        };
        assert_eq!(row("pods"), ["pods", "po", "v1", "true", "Pod"]);
        assert_eq!(
            row("deployments"),
            ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        );
        assert_eq!(row("namespaces"), ["namespaces", "ns", "v1", "false", "Namespace"]);
        assert_eq!(row("nodes"), ["nodes", "no", "v1", "false", "Node"]);
        assert_eq!(row("configmaps"), ["configmaps", "cm", "v1", "true", "ConfigMap"]);

        let apps = k.ok(["api-resources", "--api-group=apps", "-o", "name"]);
        assert!(apps.lines().any(|l| l == "deployments.apps"), "{apps}");
        let namespaced = k.ok(["api-resources", "--namespaced=false", "-o", "name"]);
        assert!(namespaced.lines().any(|l| l == "nodes"), "{namespaced}");
        assert!(!namespaced.lines().any(|l| l == "pods"), "{namespaced}");
    }

    /// `kubectl api-versions` lists group/versions, core as plain `v1`.
    fn api_versions(k) {
        let out = k.ok(["api-versions"]);
        let versions: Vec<&str> = out.lines().collect();
        for expected in ["v1", "apps/v1"] {
            assert!(versions.contains(&expected), "{expected} missing from:\n{out}");
        }
    }

    /// `kubectl explain` walks the OpenAPI schema, including nested fields.
    fn explain(k) {
        let out = k.ok(["explain", "deployment.spec.template.spec.containers.image"]);
        assert_contains(&out, "KIND:       Deployment");
        assert_contains(&out, "VERSION:    v1");
        assert_contains(&out, "FIELD: image <string>");
        assert_contains(&out, "Container image name.");

        let out = k.ok(["explain", "pods.spec"]);
        assert_contains(&out, "KIND:       Pod");
        assert_contains(&out, "FIELD: spec <PodSpec>");
        assert_contains(&out, "containers\t<[]Container> -required-");

        let err = k.err(["explain", "pods.spec.nosuchfield"]);
        assert_contains(&err, "field \"nosuchfield\" does not exist");
    }

    /// `kubectl auth whoami` reports the admin identity from the client certificate.
    fn auth_whoami(k) {
        let out = k.ok(["auth", "whoami"]);
        let rows = table_rows(&out);
        assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"], "{out}");
        assert!(rows.iter().any(|r| r == &["Username", "admin"]), "{out}");
        let groups = rows
            .iter()
            .find(|r| r[0] == "Groups")
            .unwrap_or_else(|| panic!("no Groups row in:\n{out}"));
        assert!(groups.iter().any(|g| g.contains("system:masters")), "{out}");

        let json: serde_json::Value =
            serde_json::from_str(&k.ok(["auth", "whoami", "-o", "json"])).expect("JSON");
        assert_eq!(json["kind"], "SelfSubjectReview");
        assert_eq!(json["status"]["userInfo"]["username"], "admin");
        let groups = json["status"]["userInfo"]["groups"].as_array().cloned().unwrap_or_default();
        assert!(groups.contains(&"system:masters".into()), "{json}");
    }

    /// Deprecated APIs warn as upstream 1.33 does, and the `kubernetes` Service and its
    /// Endpoints point at the API server.
    fn deprecated_endpoints_warn(k) {
        let out = k.cmd(["get", "endpoints", "kubernetes"]).output();
        assert!(out.status.success(), "{}", k8rs_e2e::render(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_contains(
            &stderr,
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice",
        );
        let port = k.server().port().to_string();
        assert_contains(&String::from_utf8_lossy(&out.stdout), &format!("127.0.0.1:{port}"));
        let svc = k.ok(["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]);
        assert_eq!(svc.trim(), "10.43.0.1");
    }
}
