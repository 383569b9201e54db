//! Representative cases with upstream's exact messages (from upstream's validation tests
//! and real API server output).

use serde_json::{json, Value};

use super::validate;
use crate::field_error::invalid_message;
use crate::{ResourceInfo, Subresources};

fn info(group: &'static str, version: &'static str, kind: &'static str) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural: "",
        singular: "",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: &[],
        subresources: Subresources::default(),
    }
}

/// Default the object as the server does, then validate; return `field: message` lines.
fn errors(group: &'static str, kind: &'static str, obj: Value, old: Option<Value>) -> Vec<String> {
    let i = info(group, "v1", kind);
    let obj = crate::defaults::decode_and_default(&i, obj).expect("decodes");
    let old = old.map(|o| crate::defaults::decode_and_default(&i, o).expect("decodes"));
    validate(&i, &obj, old.as_ref())
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    }})
}

#[test]
fn valid_objects_have_no_errors() {
    assert_eq!(
        errors(
            "",
            "Pod",
            pod(json!({"containers": [{"name": "c", "image": "nginx"}]})),
            None
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(
            "apps",
            "Deployment",
            deployment(json!({"app": "web"}), json!({"app": "web"})),
            None
        ),
        Vec::<String>::new()
    );
    let svc = json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    assert_eq!(errors("", "Service", svc, None), Vec::<String>::new());
}

#[test]
fn kubectl_generated_deployment_is_valid() {
    // As `kubectl create deployment web --image=nginx -o json --dry-run=client` prints it.
    let d = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
            },
            "strategy": {}
        },
        "status": {}
    });
    assert_eq!(errors("apps", "Deployment", d, None), Vec::<String>::new());
}

#[test]
fn template_labels_path_has_no_metadata_segment() {
    let d = deployment(json!({"app": "web"}), json!({"app": "web", "bad key": "x"}));
    let errs = errors("apps", "Deployment", d, None);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "spec.template.labels: Invalid value: \"bad key\": name part must consist of"
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn object_meta_names_and_labels() {
    let errs = errors(
        "",
        "ConfigMap",
        json!({"metadata": {"name": "Foo", "labels": {"-bad": "ok"}}}),
        None,
    );
    assert_eq!(
        errs,
        vec![
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "metadata.labels: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
    let errs = errors("", "ConfigMap", json!({"metadata": {}}), None);
    assert_eq!(
        errs,
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    let errs = errors("", "Namespace", json!({"metadata": {"name": "a.b"}}), None);
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
    let errs = errors(
        "",
        "Service",
        json!({"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}),
        None,
    );
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"1svc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn name_is_immutable_on_update() {
    let old = json!({"metadata": {"name": "a", "resourceVersion": "1"}});
    let new = json!({"metadata": {"name": "b", "resourceVersion": "1"}});
    assert_eq!(
        errors("", "ConfigMap", new, Some(old)),
        vec!["metadata.name: Invalid value: \"b\": field is immutable"]
    );
}

#[test]
fn pod_spec_rules() {
    assert_eq!(
        errors("", "Pod", pod(json!({})), None),
        vec!["spec.containers: Required value"]
    );
    let errs = errors(
        "",
        "Pod",
        pod(json!({
            "restartPolicy": "Sometimes",
            "containers": [
                {"name": "c", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
                {"name": "c"}
            ]
        })),
        None,
    );
    assert_eq!(
        errs,
        vec![
            "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
            "spec.containers[1].image: Required value",
            "spec.containers[1].name: Duplicate value: \"c\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ]
    );
    let errs = errors(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
        ),
        None,
    );
    assert_eq!(errs, vec!["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]);
    let errs = errors(
        "",
        "Pod",
        pod(
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]}),
        ),
        None,
    );
    assert_eq!(errs, vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]);
}

#[test]
fn pod_updates_only_change_images() {
    let old = json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
    let image_only = json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
    assert_eq!(
        errors("", "Pod", image_only, Some(old.clone())),
        Vec::<String>::new()
    );
    let ports = json!({"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {"containers": [{"name": "c", "image": "nginx:1", "ports": [{"containerPort": 80}]}]}});
    let errs = errors("", "Pod", ports, Some(old));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", errs[0]);
}

#[test]
fn deployment_rules() {
    let errs = errors(
        "apps",
        "Deployment",
        deployment(json!({"app": "web"}), json!({"app": "other"})),
        None,
    );
    assert_eq!(
        errs,
        vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"]
    );
    let mut no_selector = deployment(json!({}), json!({"app": "web"}));
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    assert_eq!(
        errors("apps", "Deployment", no_selector, None),
        vec!["spec.selector: Required value"]
    );
    let mut old = deployment(json!({"app": "web"}), json!({"app": "web", "v": "2"}));
    old["metadata"]["resourceVersion"] = json!("1");
    let mut new = deployment(
        json!({"app": "web", "v": "2"}),
        json!({"app": "web", "v": "2"}),
    );
    new["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(
        errors("apps", "Deployment", new, Some(old)),
        vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]
    );
    let mut zero = deployment(json!({"app": "web"}), json!({"app": "web"}));
    zero["spec"]["replicas"] = json!(-1);
    zero["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    assert_eq!(
        errors("apps", "Deployment", zero, None),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ]
    );
}

#[test]
fn service_rules() {
    let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}, {"port": 443}]}});
    assert_eq!(
        errors("", "Service", svc, None),
        vec![
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value"
        ]
    );
    let no_ports = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePorts"}});
    assert_eq!(
        errors("", "Service", no_ports, None),
        vec![
            "spec.ports: Required value",
            "spec.type: Unsupported value: \"NodePorts\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ]
    );
    let old = json!({"metadata": {"name": "s", "resourceVersion": "1"}, "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": [{"port": 80}]}});
    let new = json!({"metadata": {"name": "s", "resourceVersion": "1"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 80}]}});
    assert_eq!(
        errors("", "Service", new, Some(old)),
        vec!["spec.clusterIPs[0]: Invalid value: []string{\"None\"}: may not change once set"]
    );
}

#[test]
fn config_map_and_secret_rules() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a b": "x"}});
    assert_eq!(
        errors("", "ConfigMap", cm, None),
        vec!["data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]
    );
    let old = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "immutable": true, "data": {"a": "1"}});
    let new = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "immutable": true, "data": {"a": "2"}});
    assert_eq!(
        errors("", "ConfigMap", new, Some(old)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    let tls = json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}});
    assert_eq!(
        errors("", "Secret", tls, None),
        vec!["data[tls.key]: Required value"]
    );
}

#[test]
fn job_and_cronjob_rules() {
    let job = json!({"metadata": {"name": "j"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    }});
    assert_eq!(
        errors("batch", "Job", job, None),
        vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
    );
    let cj = json!({"metadata": {"name": "cj"}, "spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}
    }}}});
    assert_eq!(
        errors("batch", "CronJob", cj, None),
        vec!["spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"]
    );
}

#[test]
fn rbac_and_small_groups() {
    let role = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]});
    assert_eq!(
        errors("rbac.authorization.k8s.io", "Role", role, None),
        vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
    );
    let pc = json!({"metadata": {"name": "high"}, "value": 2000000000});
    assert_eq!(
        errors("scheduling.k8s.io", "PriorityClass", pc, None),
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
}

#[test]
fn aggregate_message_matches_kubectl_output() {
    let i = info("apps", "v1", "Deployment");
    let obj = crate::defaults::decode_and_default(
        &i,
        deployment(json!({"app": "web"}), json!({"app": "other"})),
    )
    .unwrap();
    let errs = validate(&i, &obj, None);
    assert_eq!(
        invalid_message(&i.qualified_kind(), "web", &errs),
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
    );
}

#[test]
fn scheduling_and_security_rules_apply_to_pods_and_templates() {
    let spec = json!({
        "containers": [{"name": "c", "image": "nginx", "securityContext": {"runAsUser": -1}}],
        "tolerations": [{"key": "k", "operator": "Exists", "value": "v"}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": ""}
        ]}},
        "topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        "dnsPolicy": "None"
    });
    let pod_errors = errors("", "Pod", pod(spec.clone()), None);
    for expected in [
        "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
        "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
        "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
    ] {
        assert!(pod_errors.iter().any(|e| e == expected), "{expected} not in {pod_errors:?}");
    }
    let mut d = deployment(json!({"app": "web"}), json!({"app": "web"}));
    d["spec"]["template"]["spec"] = spec;
    let template_errors = errors("apps", "Deployment", d, None);
    assert!(
        template_errors.iter().any(|e| e
            == "spec.template.spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"),
        "{template_errors:?}"
    );
    assert!(template_errors
        .iter()
        .any(|e| e == "spec.template.spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"));
}

#[test]
fn requests_are_compared_with_limits_exactly_across_units() {
    let resources = |request: &str, limit: &str| {
        pod(
            json!({"containers": [{"name": "c", "image": "i", "resources": {
            "requests": {"memory": request}, "limits": {"memory": limit}}}]}),
        )
    };
    assert_eq!(
        errors("", "Pod", resources("1025Mi", "1Gi"), None),
        vec!["spec.containers[0].resources.requests: Invalid value: \"1025Mi\": must be less than or equal to memory limit of 1Gi"]
    );
    assert!(errors("", "Pod", resources("1024Mi", "1Gi"), None).is_empty());
    assert!(errors("", "Pod", resources("1073741824", "1Gi"), None).is_empty());
    assert_eq!(
        errors("", "Pod", resources("1073741824001m", "1Gi"), None).len(),
        1
    );
}

#[test]
fn stateful_set_service_name_must_be_a_dns_label_on_create() {
    let sts = |service_name: &str| {
        json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {
            "serviceName": service_name,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}]}}
        }})
    };
    assert_eq!(
        errors("apps", "StatefulSet", sts("db"), None),
        Vec::<String>::new()
    );
    assert_eq!(
        errors("apps", "StatefulSet", sts(""), None),
        Vec::<String>::new()
    );
    assert_eq!(
        errors("apps", "StatefulSet", sts("Not_A_Label"), None),
        ["spec.serviceName: Invalid value: \"Not_A_Label\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
    );
    // A stored invalid name does not block other updates.
    let mut scaled = sts("Not_A_Label");
    scaled["spec"]["replicas"] = json!(3);
    assert_eq!(
        errors("apps", "StatefulSet", scaled, Some(sts("Not_A_Label"))),
        Vec::<String>::new()
    );
}

#[test]
fn aggregate_message_drops_repeated_errors_as_upstream() {
    let i = info("autoscaling", "v2", "HorizontalPodAutoscaler");
    let hpa = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 3,
        "metrics": [{"type": "Custom"}]
    }});
    let errs = validate(&i, &hpa, None);
    // Upstream reports the unknown type twice; the causes keep both, the message one.
    assert_eq!(errs.len(), 2);
    assert_eq!(
        invalid_message(&i.qualified_kind(), "web", &errs),
        "HorizontalPodAutoscaler.autoscaling \"web\" is invalid: spec.metrics[0].type: Unsupported value: \"Custom\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""
    );
}
