//! `kubectl get` in every output form, and `kubectl describe`.

mod common;

use common::{assert_describe_field, create_pod, describe_field, jsonpath, WEB_STACK};
use k8rs_e2e::{assert_contains, first_column, kubectl_tests, table_rows, Kubectl};

/// Three pods in `default` (alpha, beta, gamma) and one (delta) in namespace `other`.
fn seed_pods(k: &Kubectl<'_>) {
    create_pod(
        k,
        "alpha",
        "nginx:1.27",
        &[("app", "web"), ("tier", "front")],
    );
    create_pod(
        k,
        "beta",
        "busybox:1.36",
        &[("app", "web"), ("tier", "back")],
    );
    create_pod(k, "gamma", "redis:7", &[("app", "db"), ("tier", "back")]);
    common::create_namespace(k, "other");
    let out = k.ok_stdin(
        ["create", "-n", "other", "-f", "-"],
        &common::pod("delta", "nginx:1.27", &[("app", "web")]),
    );
    assert_eq!(out.trim(), "pod/delta created");
}

kubectl_tests! {
    /// The default table, `-o wide` and `-o name`.
    fn tables(k) {
        seed_pods(k);
        let out = k.ok(["get", "pods"]);
        let rows = table_rows(&out);
        assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{out}");
        assert_eq!(first_column(&out), ["alpha", "beta", "gamma"], "{out}");
        assert_eq!(rows[1][..4], ["alpha", "0/1", "Pending", "0"], "{out}");

        let out = k.ok(["get", "pods", "-o", "wide"]);
        let rows = table_rows(&out);
        assert_eq!(
            rows[0],
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
             "READINESS", "GATES"],
            "{out}"
        );
        assert_eq!(rows[1][0], "alpha");
        assert_eq!(rows[1][5], "<none>", "an unscheduled pod has no IP:\n{out}");

        let out = k.ok(["get", "pods", "-o", "name"]);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["pod/alpha", "pod/beta", "pod/gamma"]);

        let out = k.ok(["get", "pod", "alpha", "--no-headers"]);
        assert_eq!(table_rows(&out)[0][0], "alpha");

        let err = k.err(["get", "pod", "nosuch"]);
        assert_eq!(err.trim(), "Error from server (NotFound): pods \"nosuch\" not found");
    }

    /// `-o yaml`, `-o json`, jsonpath and custom-columns.
    fn structured_outputs(k) {
        seed_pods(k);
        let out = k.ok(["get", "pod", "alpha", "-o", "yaml"]);
        assert_contains(&out, "apiVersion: v1\nkind: Pod\n");
        assert_contains(&out, "  name: alpha\n");
        assert_contains(&out, "  namespace: default\n");
        assert_contains(&out, "  - image: nginx:1.27\n");

        let out = k.ok(["get", "pods", "-o", "yaml"]);
        assert_contains(&out, "kind: List");

        let list: serde_json::Value =
            serde_json::from_str(&k.ok(["get", "pods", "-o", "json"])).expect("JSON list");
        assert_eq!(list["kind"], "List");
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["kind"], "Pod");
        assert_eq!(items[0]["metadata"]["name"], "alpha");
        assert!(items[0]["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
        assert!(items[0]["metadata"]["creationTimestamp"].is_string());
        assert_eq!(items[0]["status"]["phase"], "Pending");

        let pod = k.get_json("pod", "beta", &[]);
        assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:1.36");
        assert!(pod["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()));

        let out = k.ok(["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
        assert_eq!(out, "alpha beta gamma");
        let out = k.ok([
            "get", "pods", "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.tier}{"\n"}{end}"#,
        ]);
        assert_eq!(out, "alpha=front\nbeta=back\ngamma=back\n");

        let out = k.ok([
            "get", "pods", "-o",
            "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image",
        ]);
        assert_eq!(
            table_rows(&out),
            [["NAME", "IMAGE"], ["alpha", "nginx:1.27"], ["beta", "busybox:1.36"], ["gamma", "redis:7"]]
        );
    }

    /// `--show-labels`, `--sort-by` and `-A`.
    fn labels_sorting_all_namespaces(k) {
        seed_pods(k);
        let out = k.ok(["get", "pods", "--show-labels"]);
        let rows = table_rows(&out);
        assert_eq!(rows[0].last().map(String::as_str), Some("LABELS"), "{out}");
        assert_eq!(rows[1].last().map(String::as_str), Some("app=web,tier=front"), "{out}");

        let out = k.ok(["get", "pods", "--sort-by=.spec.containers[0].image"]);
        assert_eq!(first_column(&out), ["beta", "alpha", "gamma"], "{out}");
        let out = k.ok(["get", "pods", "--sort-by=.metadata.name", "-o", "name"]);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["pod/alpha", "pod/beta", "pod/gamma"]);

        let out = k.ok(["get", "pods", "-A"]);
        let rows = table_rows(&out);
        assert_eq!(rows[0][..2], ["NAMESPACE", "NAME"], "{out}");
        let pairs: Vec<(String, String)> =
            rows[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
        for (ns, name) in [("default", "alpha"), ("default", "gamma"), ("other", "delta")] {
            assert!(pairs.contains(&(ns.into(), name.into())), "{ns}/{name} missing:\n{out}");
        }
        let out = k.ok(["get", "pods", "-n", "other", "-o", "name"]);
        assert_eq!(out.trim(), "pod/delta");
    }

    /// Label selectors, field selectors and paginated lists.
    fn selectors_and_chunks(k) {
        seed_pods(k);
        let names = |args: &[&str]| {
            let mut full = vec!["get", "pods", "-o", "name"];
            full.extend_from_slice(args);
            k.ok(full).lines().map(str::to_string).collect::<Vec<_>>()
        };
        assert_eq!(names(&["-l", "app=web"]), ["pod/alpha", "pod/beta"]);
        assert_eq!(names(&["-l", "app!=web"]), ["pod/gamma"]);
        assert_eq!(names(&["-l", "tier in (back)"]), ["pod/beta", "pod/gamma"]);
        assert_eq!(names(&["-l", "app=web,tier=back"]), ["pod/beta"]);
        assert_eq!(names(&["-l", "tier"]).len(), 3);
        assert_eq!(names(&["-l", "app=web", "-A"]).len(), 3);
        assert_eq!(names(&["--field-selector", "metadata.name=beta"]), ["pod/beta"]);
        assert_eq!(names(&["--field-selector", "metadata.name!=beta"]), ["pod/alpha", "pod/gamma"]);
        assert_eq!(names(&["--field-selector", "status.phase=Pending"]).len(), 3);
        assert_eq!(names(&["--field-selector", "status.phase=Running"]), Vec::<String>::new());

        let out = k.cmd(["get", "pods", "-l", "app=nothing"]).output();
        assert!(out.status.success());
        assert_contains(
            &String::from_utf8_lossy(&out.stderr),
            "No resources found in default namespace.",
        );

        let err = k.err(["get", "pods", "--field-selector", "spec.nosuchfield=x"]);
        assert_contains(&err, "Error from server (BadRequest)");
        assert_contains(&err, "field label not supported: spec.nosuchfield");

        let out = k.ok(["get", "pods", "--chunk-size=1"]);
        assert_eq!(first_column(&out), ["alpha", "beta", "gamma"], "{out}");
        assert_eq!(names(&["--chunk-size=2"]), ["pod/alpha", "pod/beta", "pod/gamma"]);
        assert_eq!(names(&["--chunk-size=1", "-A"]).len(), 4);
    }

    /// `describe` for pods, deployments, services, namespaces and nodes.
    fn describe(k) {
        create_pod(k, "alpha", "nginx:1.27", &[("app", "web"), ("tier", "front")]);
        let out = k.ok(["describe", "pod", "alpha"]);
        assert_describe_field(&out, "Name", "alpha");
        assert_describe_field(&out, "Namespace", "default");
        assert_describe_field(&out, "Labels", "app=web");
        assert_describe_field(&out, "Status", "Pending");
        assert_describe_field(&out, "Image", "nginx:1.27");
        assert_contains(&out, "\nContainers:\n  main:\n");

        k.ok_stdin(["create", "-f", "-"], WEB_STACK);
        let out = k.ok(["describe", "deployment", "web"]);
        assert_describe_field(&out, "Name", "web");
        assert_describe_field(&out, "Namespace", "default");
        assert_describe_field(&out, "Selector", "app=web");
        assert_describe_field(&out, "StrategyType", "RollingUpdate");
        assert_describe_field(&out, "RollingUpdateStrategy", "25% max unavailable, 25% max surge");
        let replicas = describe_field(&out, "Replicas").unwrap_or_default();
        assert!(replicas.starts_with("1 desired | "), "Replicas: {replicas}\n{out}");
        assert_describe_field(&out, "Image", "nginx:1.27");

        let out = k.ok(["describe", "service", "web"]);
        assert_describe_field(&out, "Name", "web");
        assert_describe_field(&out, "Selector", "app=web");
        assert_describe_field(&out, "Type", "ClusterIP");
        assert_describe_field(&out, "TargetPort", "8080/TCP");
        let port = describe_field(&out, "Port").unwrap_or_default();
        assert!(port.ends_with("80/TCP"), "Port: {port}\n{out}");
        let cluster_ip = jsonpath(k, "service", "web", "{.spec.clusterIP}");
        assert!(cluster_ip.parse::<std::net::Ipv4Addr>().is_ok(), "clusterIP {cluster_ip:?}");
        assert_describe_field(&out, "IP", &cluster_ip);

        let out = k.ok(["describe", "namespace", "default"]);
        assert_describe_field(&out, "Name", "default");
        assert_describe_field(&out, "Labels", "kubernetes.io/metadata.name=default");
        assert_describe_field(&out, "Status", "Active");
        assert_contains(&out, "No resource quota.");
        assert_contains(&out, "No LimitRange resource.");

        let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n  labels:\n    \
                    kubernetes.io/hostname: node-1\nspec:\n  podCIDR: 10.244.1.0/24\n";
        assert_eq!(k.ok_stdin(["create", "-f", "-"], node).trim(), "node/node-1 created");
        let out = k.ok(["describe", "node", "node-1"]);
        assert_describe_field(&out, "Name", "node-1");
        assert_describe_field(&out, "Roles", "<none>");
        assert_describe_field(&out, "Labels", "kubernetes.io/hostname=node-1");
        assert_describe_field(&out, "PodCIDR", "10.244.1.0/24");
        let out = k.ok(["get", "nodes"]);
        assert_eq!(table_rows(&out)[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "{out}");
        assert_eq!(first_column(&out), ["node-1"]);
    }
}
