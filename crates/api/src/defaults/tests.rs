use serde_json::{json, Value};

use super::decode_and_default;
use crate::{ResourceInfo, Subresources};

fn info(group: &'static str, kind: &'static str) -> ResourceInfo {
    ResourceInfo {
        group,
        version: "v1",
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

fn default(group: &'static str, kind: &'static str, obj: Value) -> Value {
    decode_and_default(&info(group, kind), obj).expect("decodes")
}

#[test]
fn deployment_gets_upstream_defaults_and_pod_template_defaults() {
    let d = default(
        "apps",
        "Deployment",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "unknownField": 1},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}]}
                }
            }
        }),
    );
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(
        d["metadata"],
        json!({"name": "web"}),
        "unknown fields are dropped"
    );
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"], json!({}));
    assert!(
        pod.get("enableServiceLinks").is_none(),
        "only pods get enableServiceLinks"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["resources"], json!({}));
    assert_eq!(c["ports"][0]["protocol"], "TCP");
}

#[test]
fn pod_defaults_requests_from_limits_and_probes_and_volumes() {
    let p = default(
        "",
        "Pod",
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{
                    "name": "c", "image": "busybox:1.36",
                    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
                    "livenessProbe": {"httpGet": {"port": 8080}}
                }],
                "volumes": [{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}, {"name": "c", "hostPath": {"path": "/x"}}]
            }
        }),
    );
    let spec = &p["spec"];
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"failureThreshold": 3, "httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
               "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1})
    );
    assert_eq!(spec["volumes"][0], json!({"emptyDir": {}, "name": "a"}));
    assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
    assert_eq!(spec["volumes"][2]["hostPath"]["type"], "");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    use super::core::pull_policy_for;
    assert_eq!(pull_policy_for("nginx"), "Always");
    assert_eq!(pull_policy_for("nginx:latest"), "Always");
    assert_eq!(pull_policy_for("localhost:5000/nginx"), "Always");
    assert_eq!(pull_policy_for("localhost:5000/nginx:1.2"), "IfNotPresent");
    assert_eq!(pull_policy_for("nginx@sha256:abcd"), "IfNotPresent");
}

#[test]
fn service_defaults() {
    let s = default(
        "",
        "Service",
        json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "http");
    let e = default(
        "",
        "Service",
        json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "x.example"}}),
    );
    assert!(e["spec"].get("internalTrafficPolicy").is_none());
}

#[test]
fn job_and_cronjob_defaults() {
    let template = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}});
    let j = default(
        "batch",
        "Job",
        json!({"metadata": {"name": "j"}, "spec": {"template": template}}),
    );
    assert_eq!(j["metadata"]["labels"], json!({"a": "b"}));
    let spec = &j["spec"];
    assert_eq!(
        (spec["completions"].clone(), spec["parallelism"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");

    let cj = default(
        "batch",
        "CronJob",
        json!({"metadata": {"name": "cj"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
    );
    let spec = &cj["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn statefulset_defaults_include_claim_templates() {
    let s = default(
        "apps",
        "StatefulSet",
        json!({"metadata": {"name": "s"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
        }}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["status"]["phase"],
        "Pending"
    );
}

#[test]
fn small_kinds() {
    let ns = default("", "Namespace", json!({"metadata": {"name": "dev"}}));
    assert_eq!(
        ns["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "dev"})
    );
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        default("", "Secret", json!({"metadata": {"name": "s"}}))["type"],
        "Opaque"
    );
    let rb = default(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        json!({"metadata": {"name": "r"}, "roleRef": {"kind": "Role", "name": "x"},
               "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "d"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(rb["subjects"][1].get("apiGroup").is_none());
    let np = default(
        "networking.k8s.io",
        "NetworkPolicy",
        json!({"metadata": {"name": "n"}, "spec": {"egress": [{}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
}

#[test]
fn unknown_kinds_pass_through() {
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}});
    assert_eq!(default("example.com", "Widget", obj.clone()), obj);
}

#[test]
fn decode_errors_use_upstream_wording() {
    let err = decode_and_default(
        &info("apps", "Deployment"),
        json!({"metadata": {"name": "d"}, "spec": {"replicas": "3"}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    let err = decode_and_default(
        &info("", "Pod"),
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
    );
    let err = decode_and_default(
        &info("", "ConfigMap"),
        json!({"metadata": {"name": "c", "labels": {"a": 1}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
    );
    let err = decode_and_default(
        &info("", "Pod"),
        json!({"spec": {"containers": {"name": "c"}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"
    );
}

#[test]
fn pod_quantities_are_written_back_in_canonical_form() {
    let pod = default(
        "",
        "Pod",
        json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "resources": {
                    "requests": {"cpu": 0.5, "memory": "1024Mi"},
                    "limits": {"cpu": "1000m", "memory": "1.5Gi"}
                }}],
                "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1000M"}}],
                "overhead": {"cpu": "0.25"}
            }
        }),
    );
    let resources = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources["requests"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    assert_eq!(resources["limits"], json!({"cpu": "1", "memory": "1536Mi"}));
    assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1G");
    assert_eq!(pod["spec"]["overhead"]["cpu"], "250m");
}

#[test]
fn quantities_in_templates_quotas_and_claims_are_canonical() {
    let deployment = default(
        "apps",
        "Deployment",
        json!({
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i",
                        "resources": {"limits": {"memory": "2048Ki"}}}]}
                }
            }
        }),
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "2Mi"
    );
    let quota = default(
        "",
        "ResourceQuota",
        json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": 10, "requests.cpu": "1.5"}}}),
    );
    assert_eq!(
        quota["spec"]["hard"],
        json!({"pods": "10", "requests.cpu": "1500m"})
    );
    let claim = default(
        "",
        "PersistentVolumeClaim",
        json!({"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1e3"}}}}),
    );
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1e3");
}

#[test]
fn invalid_quantity_is_a_decode_error_in_upstream_words() {
    let err = decode_and_default(
        &info("", "Pod"),
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "half"}}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular \
         expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}
