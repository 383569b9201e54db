//! Decoding tests. The fixtures in `tests/fixtures/protobuf/` are bodies captured from real
//! kubectl 1.32 and 1.33 (`capture.py` and `drive.sh` there); next to most of them is the
//! JSON kubectl itself prints for the same object with `--dry-run=client -o json`, i.e.
//! Go's encoding/json of the very struct it encoded, which is what decoding must give.

use prost::Message;
use prost_reflect::{DynamicMessage, Value as PbValue};
use serde_json::{json, Value};

use super::{decode, SCHEMA};

fn fixtures_dir() -> String {
    format!("{}/tests/fixtures/protobuf", env!("CARGO_MANIFEST_DIR"))
}

fn decode_fixture(name: &str) -> Value {
    let path = format!("{}/{name}.pb", fixtures_dir());
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_captured_body_decodes_to_kubectls_own_json() {
    let mut compared = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap();
        let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let decoded = decode_fixture(name);
        assert_eq!(
            decoded, expected,
            "{name}:\n got  {decoded}\n want {expected}"
        );
        // Key order too: kind and apiVersion first, then Go's struct order.
        assert_eq!(
            decoded.to_string(),
            expected.to_string(),
            "{name}: field order"
        );
        compared += 1;
    }
    // 20 commands with a client-side dry run, captured from two kubectl versions.
    assert_eq!(compared, 46);
}

#[test]
fn decodes_bodies_of_commands_without_dry_run() {
    for version in ["1.32", "1.33"] {
        assert_eq!(
            decode_fixture(&format!("{version}-create-token")),
            json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"audiences": ["api"], "expirationSeconds": 3600, "boundObjectRef": null},
                   "status": {"token": "", "expirationTimestamp": null}})
        );
        assert_eq!(
            decode_fixture(&format!("{version}-can-i-subresource")),
            json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "get",
                                                   "resource": "pods", "subresource": "log"}},
                   "status": {"allowed": false}})
        );
        assert_eq!(
            decode_fixture(&format!("{version}-can-i-list")),
            json!({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"namespace": "default"},
                   "status": {"resourceRules": null, "nonResourceRules": null, "incomplete": false}})
        );
        assert_eq!(
            decode_fixture(&format!("{version}-whoami")),
            json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {"creationTimestamp": null}, "status": {"userInfo": {}}})
        );
    }
    // kubectl 1.33 tries autoscaling/v2 first and falls back to v1 on failure.
    assert_eq!(
        decode_fixture("1.33-autoscale-2")["spec"],
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
               "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80})
    );
}

/// Wraps `object` in the `k8s\0` + runtime.Unknown envelope, as client-go does.
fn envelope(api_version: &str, kind: &str, object: &DynamicMessage) -> Vec<u8> {
    let pool = &SCHEMA.pool;
    let mut type_meta = DynamicMessage::new(
        pool.get_message_by_name("apimachinery.pkg.runtime.TypeMeta")
            .unwrap(),
    );
    type_meta.set_field_by_name("apiVersion", PbValue::String(api_version.into()));
    type_meta.set_field_by_name("kind", PbValue::String(kind.into()));
    let mut unknown = DynamicMessage::new(
        pool.get_message_by_name("apimachinery.pkg.runtime.Unknown")
            .unwrap(),
    );
    unknown.set_field_by_name("typeMeta", PbValue::Message(type_meta));
    unknown.set_field_by_name("raw", PbValue::Bytes(object.encode_to_vec().into()));
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn new_message(name: &str) -> DynamicMessage {
    DynamicMessage::new(SCHEMA.pool.get_message_by_name(name).unwrap())
}

fn with(mut msg: DynamicMessage, fields: &[(&str, PbValue)]) -> DynamicMessage {
    for (name, value) in fields {
        msg.set_field_by_name(name, value.clone());
    }
    msg
}

#[test]
fn delete_options_keep_an_explicit_zero_grace_period() {
    let options = with(
        new_message("apimachinery.pkg.apis.meta.v1.DeleteOptions"),
        &[
            ("gracePeriodSeconds", PbValue::I64(0)),
            ("propagationPolicy", PbValue::String("Background".into())),
        ],
    );
    assert_eq!(
        decode(&envelope("v1", "DeleteOptions", &options)).unwrap(),
        json!({"kind": "DeleteOptions", "apiVersion": "v1",
               "gracePeriodSeconds": 0, "propagationPolicy": "Background"})
    );
}

#[test]
fn inline_fields_times_and_quantities_take_their_json_form() {
    let secret_ref = with(
        new_message("api.core.v1.SecretKeySelector"),
        &[
            (
                "localObjectReference",
                PbValue::Message(with(
                    new_message("api.core.v1.LocalObjectReference"),
                    &[("name", PbValue::String("creds".into()))],
                )),
            ),
            ("key", PbValue::String("token".into())),
        ],
    );
    let env = with(
        new_message("api.core.v1.EnvVar"),
        &[
            ("name", PbValue::String("TOKEN".into())),
            (
                "valueFrom",
                PbValue::Message(with(
                    new_message("api.core.v1.EnvVarSource"),
                    &[("secretKeyRef", PbValue::Message(secret_ref))],
                )),
            ),
        ],
    );
    let quantity = |q: &str| {
        PbValue::Message(with(
            new_message("apimachinery.pkg.api.resource.Quantity"),
            &[("string", PbValue::String(q.into()))],
        ))
    };
    let resources = with(
        new_message("api.core.v1.ResourceRequirements"),
        &[(
            "limits",
            PbValue::Map(
                [(
                    prost_reflect::MapKey::String("cpu".into()),
                    quantity("100m"),
                )]
                .into_iter()
                .collect(),
            ),
        )],
    );
    let probe = with(
        new_message("api.core.v1.Probe"),
        &[
            (
                "handler",
                PbValue::Message(with(
                    new_message("api.core.v1.ProbeHandler"),
                    &[(
                        "exec",
                        PbValue::Message(with(
                            new_message("api.core.v1.ExecAction"),
                            &[(
                                "command",
                                PbValue::List(vec![PbValue::String("true".into())]),
                            )],
                        )),
                    )],
                )),
            ),
            ("periodSeconds", PbValue::I32(5)),
        ],
    );
    let container = with(
        new_message("api.core.v1.Container"),
        &[
            ("name", PbValue::String("app".into())),
            ("image", PbValue::String("busybox".into())),
            ("env", PbValue::List(vec![PbValue::Message(env)])),
            ("resources", PbValue::Message(resources)),
            ("livenessProbe", PbValue::Message(probe)),
        ],
    );
    let time = with(
        new_message("apimachinery.pkg.apis.meta.v1.Time"),
        &[("seconds", PbValue::I64(1_704_067_200))],
    );
    let metadata = with(
        new_message("apimachinery.pkg.apis.meta.v1.ObjectMeta"),
        &[
            ("name", PbValue::String("p".into())),
            ("creationTimestamp", PbValue::Message(time)),
        ],
    );
    let pod = with(
        new_message("api.core.v1.Pod"),
        &[
            ("metadata", PbValue::Message(metadata)),
            (
                "spec",
                PbValue::Message(with(
                    new_message("api.core.v1.PodSpec"),
                    &[
                        (
                            "containers",
                            PbValue::List(vec![PbValue::Message(container)]),
                        ),
                        ("terminationGracePeriodSeconds", PbValue::I64(0)),
                    ],
                )),
            ),
        ],
    );
    let decoded = decode(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        decoded["metadata"],
        json!({"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"})
    );
    assert_eq!(decoded["spec"]["terminationGracePeriodSeconds"], json!(0));
    assert_eq!(
        decoded["spec"]["containers"][0],
        json!({"name": "app", "image": "busybox",
               "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
               "resources": {"limits": {"cpu": "100m"}},
               "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5}})
    );
    // Fields the body never set read as Go's zero values: a nil slice without omitempty.
    assert_eq!(decoded["spec"]["containers"][0].get("ports"), None);
    assert_eq!(decoded["status"], json!({}));
}

#[test]
fn rejects_what_upstream_rejects() {
    assert_eq!(
        decode(b"{\"kind\":\"Pod\"}").unwrap_err(),
        "provided data does not appear to be a protobuf message, expected prefix [107, 56, 115, 0]"
    );
    let spec = new_message("api.apps.v1.DeploymentSpec");
    assert_eq!(
        decode(&envelope("apps/v1", "DeploymentSpec", &spec)).unwrap_err(),
        "no kind \"DeploymentSpec\" is registered for version \"apps/v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
    );
    assert!(decode(&envelope("apps/v1", "Frobnicator", &spec))
        .unwrap_err()
        .contains("no kind \"Frobnicator\""));
    assert!(decode(&envelope("apps/v1", "", &spec))
        .unwrap_err()
        .contains("'Kind' is missing"));
    let mut truncated = envelope("v1", "ConfigMap", &new_message("api.core.v1.ConfigMap"));
    truncated.extend([0x0a, 0x05]);
    assert!(decode(&truncated).is_err());
}
