//! Changing live objects: label, annotate, patch, scale, delete and the `create`
//! generators.

mod common;

use common::{create_pod, deployment, jsonpath};
use k8rs_e2e::{assert_contains, kubectl_tests};

kubectl_tests! {
    /// `label`: add, refuse to overwrite, `--overwrite`, remove with `key-`, `--all`.
    fn label(k) {
        create_pod(k, "alpha", "nginx:1.27", &[("app", "web")]);
        create_pod(k, "beta", "nginx:1.27", &[("app", "db")]);
        assert_eq!(k.ok(["label", "pod", "alpha", "tier=front"]).trim(), "pod/alpha labeled");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.labels.tier}"), "front");

        let err = k.err(["label", "pod", "alpha", "tier=back"]);
        assert_contains(&err, "'tier' already has a value (front), and --overwrite is false");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.labels.tier}"), "front");

        let out = k.ok(["label", "pod", "alpha", "tier=back", "--overwrite"]);
        assert_eq!(out.trim(), "pod/alpha labeled");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.labels.tier}"), "back");

        assert_eq!(k.ok(["label", "pod", "alpha", "tier-"]).trim(), "pod/alpha unlabeled");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.labels}"), r#"{"app":"web"}"#);

        let out = k.ok(["label", "pods", "--all", "env=test"]);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["pod/alpha labeled", "pod/beta labeled"]);
        let out = k.ok(["get", "pods", "-l", "env=test", "-o", "name"]);
        assert_eq!(out.lines().count(), 2, "{out}");

        // kubectl itself rejects a malformed spec; the server rejects an invalid key.
        let err = k.err(["label", "pod", "alpha", "tier=a=b"]);
        assert_contains(&err, "invalid label spec: tier=a=b");
        let err = k.err(["label", "pod", "alpha", "bad key=x"]);
        assert_contains(&err, "The Pod \"alpha\" is invalid: metadata.labels: Invalid value: \"bad key\"");
    }

    /// `annotate`: add, refuse to overwrite, `--overwrite`, remove with `key-`.
    fn annotate(k) {
        create_pod(k, "alpha", "nginx:1.27", &[("app", "web")]);
        let out = k.ok(["annotate", "pod", "alpha", "note=hello"]);
        assert_eq!(out.trim(), "pod/alpha annotated");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.annotations.note}"), "hello");

        let err = k.err(["annotate", "pod", "alpha", "note=bye"]);
        assert_contains(&err, "'note' already has a value (hello)");
        assert_contains(&err, "--overwrite is false");

        let out = k.ok(["annotate", "pod", "alpha", "note=bye", "--overwrite"]);
        assert_eq!(out.trim(), "pod/alpha annotated");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.annotations.note}"), "bye");

        assert_eq!(k.ok(["annotate", "pod", "alpha", "note-"]).trim(), "pod/alpha annotated");
        assert_eq!(jsonpath(k, "pod", "alpha", "{.metadata.annotations.note}"), "");
    }

    /// `patch` with strategic merge, JSON merge and JSON patches.
    fn patch_three_kinds(k) {
        k.ok_stdin(["create", "-f", "-"], &deployment(1));
        let containers = |k: &k8rs_e2e::Kubectl<'_>| {
            jsonpath(k, "deployment", "web", "{.spec.template.spec.containers[*].name}")
        };

        // Strategic merge: containers merge by name.
        let sidecar = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}"#;
        let out = k.ok(["patch", "deployment", "web", "-p", sidecar]);
        assert_eq!(out.trim(), "deployment.apps/web patched");
        // Upstream's element-order normalisation puts items new to the list first.
        assert_eq!(containers(k), "sidecar web");
        let out = k.ok(["patch", "deployment", "web", "--type", "strategic", "-p", sidecar]);
        assert_eq!(out.trim(), "deployment.apps/web patched (no change)");
        let delete = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
        k.ok(["patch", "deployment", "web", "--type=strategic", "-p", delete]);
        assert_eq!(containers(k), "web");

        // JSON merge patch: lists are replaced whole; null removes a key.
        k.ok(["patch", "deployment", "web", "--type=strategic", "-p", sidecar]);
        let out = k.ok(["patch", "deployment", "web", "--type", "merge", "-p", sidecar]);
        assert_eq!(out.trim(), "deployment.apps/web patched");
        assert_eq!(containers(k), "sidecar");
        let out = k.ok([
            "patch", "deployment", "web", "--type=merge",
            "-p", r#"{"metadata":{"labels":{"app":null,"team":"blue"}}}"#,
        ]);
        assert_eq!(out.trim(), "deployment.apps/web patched");
        assert_eq!(jsonpath(k, "deployment", "web", "{.metadata.labels}"), r#"{"team":"blue"}"#);

        // JSON patch (RFC 6902).
        let out = k.ok([
            "patch", "deployment", "web", "--type", "json",
            "-p", r#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/annotations","value":{"via":"json"}}]"#,
        ]);
        assert_eq!(out.trim(), "deployment.apps/web patched");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "3");
        assert_eq!(jsonpath(k, "deployment", "web", "{.metadata.annotations.via}"), "json");

        // A patch that breaks validation is refused.
        let err = k.err(["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"replicas":-1}}"#]);
        assert_contains(
            &err,
            "The Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        );
        let err = k.err(["patch", "deployment", "nosuch", "-p", "{}"]);
        assert_contains(&err, "Error from server (NotFound): deployments.apps \"nosuch\" not found");
    }

    /// `scale` through the scale subresource, with a replica-count precondition.
    fn scale(k) {
        k.ok_stdin(["create", "-f", "-"], &deployment(1));
        let out = k.ok(["scale", "deployment", "web", "--replicas=3"]);
        assert_eq!(out.trim(), "deployment.apps/web scaled");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "3");
        let scale: serde_json::Value = serde_json::from_str(&k.ok([
            "get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ]))
        .expect("Scale JSON");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 3);

        let err = k.err(["scale", "deployment", "web", "--current-replicas=2", "--replicas=5"]);
        assert_contains(&err, "Expected replicas to be 2, was 3");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "3");

        let out = k.ok(["scale", "deployment/web", "--current-replicas=3", "--replicas=0"]);
        assert_eq!(out.trim(), "deployment.apps/web scaled");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "0");
    }

    /// `delete` by name, by label, `--all`, with and without `--wait`.
    fn delete(k) {
        for (name, app) in [("alpha", "web"), ("beta", "web"), ("gamma", "db"), ("delta", "db")] {
            create_pod(k, name, "nginx:1.27", &[("app", app)]);
        }
        let out = k.ok(["delete", "pod", "alpha"]);
        assert_contains(&out, "pod \"alpha\" deleted");
        let err = k.err(["get", "pod", "alpha"]);
        assert_contains(&err, "Error from server (NotFound): pods \"alpha\" not found");

        let err = k.err(["delete", "pod", "alpha"]);
        assert_contains(&err, "Error from server (NotFound): pods \"alpha\" not found");
        let out = k.ok(["delete", "pod", "alpha", "--ignore-not-found"]);
        assert_eq!(out.trim(), "");

        let out = k.ok(["delete", "pods", "-l", "app=web"]);
        assert_contains(&out, "pod \"beta\" deleted");
        assert_eq!(k.ok(["get", "pods", "-o", "name"]).lines().count(), 2);

        let out = k.ok(["delete", "pod", "gamma", "--wait=false"]);
        assert_contains(&out, "pod \"gamma\" deleted");

        common::create_configmap(k, "one", "a", "1");
        common::create_configmap(k, "two", "a", "2");
        let out = k.ok(["delete", "configmaps", "--all", "--wait=true"]);
        assert_contains(&out, "configmap \"one\" deleted");
        assert_contains(&out, "configmap \"two\" deleted");
        let out = k.ok(["get", "configmaps", "-o", "name"]);
        assert!(!out.contains("configmap/one") && !out.contains("configmap/two"), "{out}");

        let out = k.ok(["delete", "pods", "--all"]);
        assert_contains(&out, "pod \"delta\" deleted");
        let out = k.cmd(["get", "pods"]).output();
        assert_contains(
            &String::from_utf8_lossy(&out.stderr),
            "No resources found in default namespace.",
        );
    }

    /// The `create` generators (kubectl sends these as protobuf).
    fn generators(k) {
        assert_eq!(k.ok(["create", "namespace", "team"]).trim(), "namespace/team created");
        assert_eq!(jsonpath(k, "namespace", "team", "{.status.phase}"), "Active");

        let file = k.write_file("app.properties", b"color=blue\n");
        let out = k.ok([
            "create", "configmap", "settings", "-n", "team",
            "--from-literal=mode=fast",
            &format!("--from-file={}", file.display()),
        ]);
        assert_eq!(out.trim(), "configmap/settings created");
        let cm = k.get_json("configmap", "settings", &["-n", "team"]);
        assert_eq!(cm["data"]["mode"], "fast");
        assert_eq!(cm["data"]["app.properties"], "color=blue\n");

        let out = k.ok(["create", "secret", "generic", "creds", "--from-literal=password=hunter2"]);
        assert_eq!(out.trim(), "secret/creds created");
        let secret = k.get_json("secret", "creds", &[]);
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

        let out = k.ok(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"]);
        assert_eq!(out.trim(), "deployment.apps/web created");
        let deploy = k.get_json("deployment", "web", &[]);
        assert_eq!(deploy["spec"]["replicas"], 2);
        assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
        assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["name"], "nginx");
        assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");

        let out = k.ok(["create", "service", "clusterip", "web", "--tcp=80:8080"]);
        assert_eq!(out.trim(), "service/web created");
        let svc = k.get_json("service", "web", &[]);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["selector"]["app"], "web");
        assert_eq!(svc["spec"]["ports"][0]["name"], "80-8080");
        assert_eq!(svc["spec"]["ports"][0]["port"], 80);
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");

        let err = k.err(["create", "namespace", "team"]);
        assert_contains(&err, "Error from server (AlreadyExists): namespaces \"team\" already exists");
    }
}
