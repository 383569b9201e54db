//! ServiceAccount tokens: `kubectl create token`, the token used as a bearer token by a
//! kubeconfig without a client certificate, the ServiceAccount admission of pods, and
//! legacy token Secrets.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use common::create_pod;
use k8rs_e2e::{assert_contains, kubectl_tests, render, Kubectl, KubectlVersion, TestServer};
use serde_json::{json, Value};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)";

/// A kubeconfig with the server and its CA only: no client certificate, so a `--token`
/// is the only credential kubectl sends.
fn token_only_kubeconfig(server: &TestServer) -> PathBuf {
    let admin = std::fs::read_to_string(server.kubeconfig()).expect("read admin.kubeconfig");
    let field = |key: &str| {
        admin
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} missing in admin.kubeconfig:\n{admin}"))
            .trim()
            .to_string()
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    \
         certificate-authority-data: {}\n    server: {}\nusers:\n- name: u\n  user: {{}}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
        field("certificate-authority-data:"),
        field("server:"),
    );
    let path = server.scratch_dir().join("token-only.kubeconfig");
    std::fs::write(&path, text).expect("write token-only kubeconfig");
    path
}

/// Runs `kubectl --token TOKEN ARGS` with the token-only kubeconfig.
fn with_token(k: &Kubectl<'_>, token: &str, args: &[&str]) -> Output {
    let server = k.server();
    Command::new(k.version().binary())
        .arg("--kubeconfig")
        .arg(token_only_kubeconfig(server))
        .arg("--cache-dir")
        .arg(server.scratch_dir().join("token-cache"))
        .args(["--token", token])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", server.scratch_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl")
}

/// `kubectl auth whoami` with the token: stdout on success, panics otherwise.
fn whoami(k: &Kubectl<'_>, token: &str) -> String {
    let out = with_token(k, token, &["auth", "whoami"]);
    assert!(
        out.status.success(),
        "whoami with the token failed\n{}",
        render(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the server refuses the token with upstream's 401.
#[track_caller]
fn assert_unauthorized(k: &Kubectl<'_>, token: &str) {
    let out = with_token(k, token, &["auth", "whoami"]);
    assert!(!out.status.success(), "expected 401\n{}", render(&out));
    assert_contains(&String::from_utf8_lossy(&out.stderr), UNAUTHORIZED);
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a JWT (not verified).
fn claims(token: &str) -> Value {
    let part = token
        .trim()
        .split('.')
        .nth(1)
        .expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Signs `claims` with the server's own ServiceAccount key (`DATA/pki/sa.key`), so a test
/// can present tokens the server never issued, e.g. expired ones, with a valid signature.
fn sign_with_server_key(server: &TestServer, header: &Value, claims: &Value) -> String {
    use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let pem = std::fs::read_to_string(server.data_dir().join("pki/sa.key")).expect("sa.key");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM body");
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
        .expect("sa.key is a PKCS#8 P-256 key");
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(header).unwrap()),
        b64url(&serde_json::to_vec(claims).unwrap())
    );
    let sig = key.sign(&rng, input.as_bytes()).expect("sign");
    format!("{input}.{}", b64url(sig.as_ref()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

kubectl_tests! {
    /// Node-bound tokens, and pod-bound tokens of a pod on a node, name the node; a token
    /// bound to a node dies with it.
    fn node_bound_tokens(k) {
        k.ok_stdin(["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n");
        let node_uid = k.get_json("node", "n1", &[])["metadata"]["uid"].as_str().unwrap().to_string();
        let token = k.ok(["create", "token", "default", "--bound-object-kind", "Node", "--bound-object-name", "n1"]);
        assert_eq!(claims(&token)["kubernetes.io"]["node"], json!({"name": "n1", "uid": node_uid}));
        let me = whoami(k, token.trim());
        assert_contains(&me, "authentication.kubernetes.io/node-name");
        assert_contains(&me, &node_uid);

        create_pod(k, "web", "nginx:1.27", &[("app", "web")]);
        k.ok_stdin(
            ["create", "--raw", "/api/v1/namespaces/default/pods/web/binding", "-f", "-"],
            r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"web"},"target":{"kind":"Node","name":"n1"}}"#,
        );
        let pod_token = k.ok(["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "web"]);
        let c = claims(&pod_token);
        assert_eq!(c["kubernetes.io"]["node"], json!({"name": "n1", "uid": node_uid}));
        assert_eq!(c["kubernetes.io"]["pod"]["name"], "web");

        k.ok(["delete", "node", "n1"]);
        assert_unauthorized(k, token.trim());
        let err = k.err(["create", "token", "default", "--bound-object-kind", "Node", "--bound-object-name", "n1"]);
        assert_eq!(err.trim(), "error: failed to create token: nodes \"n1\" not found");
    }

    /// `kubectl create token default` issues an hour-long token for the API server's
    /// audience; with a kubeconfig holding no certificate it authenticates as the
    /// ServiceAccount; `--duration` and `--audience` shape it as upstream does.
    fn create_token_and_use_it(k) {
        let token = k.ok(["create", "token", "default"]);
        let token = token.trim();
        let c = claims(token);
        assert_eq!(c["iss"], ISSUER);
        assert_eq!(c["aud"], json!([ISSUER]));
        assert_eq!(c["sub"], "system:serviceaccount:default:default");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
        let sa_uid = k.get_json("serviceaccount", "default", &[])["metadata"]["uid"].clone();
        assert_eq!(
            c["kubernetes.io"],
            json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": sa_uid}})
        );

        let me = whoami(k, token);
        assert_contains(&me, "system:serviceaccount:default:default");
        assert_contains(&me, "[system:serviceaccounts system:serviceaccounts:default system:authenticated]");
        assert_contains(&me, sa_uid.as_str().unwrap());
        assert_contains(&me, &format!("JTI={}", c["jti"].as_str().unwrap()));
        // The token is a full credential: it can read.
        let out = with_token(k, token, &["get", "serviceaccounts", "-o", "name"]);
        assert!(out.status.success(), "{}", render(&out));
        assert_contains(&String::from_utf8_lossy(&out.stdout), "serviceaccount/default");

        k.ok(["create", "serviceaccount", "robot"]);
        let short = k.ok(["create", "token", "robot", "--duration", "10m", "--audience", "x"]);
        let c = claims(&short);
        assert_eq!(c["aud"], json!(["x"]));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
        // Meant for someone else: the API server does not accept it.
        assert_unauthorized(k, short.trim());
        let both = k.ok(["create", "token", "robot", "--audience", "x", "--audience", ISSUER]);
        assert_contains(&whoami(k, both.trim()), "system:serviceaccount:default:robot");

        let err = k.err(["create", "token", "robot", "--duration", "1m"]);
        assert_eq!(
            err.trim(),
            "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: \
             spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let err = k.err(["create", "token", "nope"]);
        assert_eq!(err.trim(), "error: failed to create token: serviceaccounts \"nope\" not found");

        // TokenReview: what webhooks and in-cluster servers ask the API server.
        let review = |token: &str, audiences: &str| -> Value {
            let manifest = format!(
                r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"{audiences}}}}}"#
            );
            serde_json::from_str(&k.ok_stdin(["create", "-o", "json", "-f", "-"], &manifest)).unwrap()
        };
        let ok = review(both.trim(), r#","audiences":["x","y"]"#);
        assert_eq!(ok["status"]["authenticated"], true);
        assert_eq!(ok["status"]["audiences"], json!(["x"]));
        assert_eq!(ok["status"]["user"]["username"], "system:serviceaccount:default:robot");
        assert_eq!(
            ok["status"]["user"]["groups"],
            json!(["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"])
        );
        let denied = review(token, r#","audiences":["vault"]"#);
        assert_eq!(
            denied["status"],
            json!({"user": {}, "error": format!("token audiences [\"{ISSUER}\"] is invalid for the target audiences [\"vault\"]")})
        );
        assert_eq!(review("garbage", "")["status"], json!({"user": {}, "error": "invalid bearer token"}));

        // Issuer discovery: relying parties find the key set and verify tokens offline.
        let config: Value = serde_json::from_str(&k.ok(["get", "--raw", "/.well-known/openid-configuration"])).unwrap();
        assert_eq!(config["issuer"], ISSUER);
        assert_eq!(config["jwks_uri"], format!("https://127.0.0.1:{}/openid/v1/jwks", k.server().port()));
        assert_eq!(config["response_types_supported"], json!(["id_token"]));
        let out = with_token(k, token, &["get", "--raw", "/openid/v1/jwks"]);
        assert!(out.status.success(), "{}", render(&out));
        let jwks: Value = serde_json::from_slice(&out.stdout).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["use"].as_str()), (Some("EC"), Some("P-256"), Some("sig")));
        let coordinate = |f: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk[f].as_str().unwrap()).unwrap();
        let point = [vec![4u8], coordinate("x"), coordinate("y")].concat();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(signed.as_bytes(), &signature)
            .expect("the published key verifies `kubectl create token`'s token");

        // Discovery lists the subresource as upstream does.
        let v1: Value = serde_json::from_str(&k.ok(["get", "--raw", "/api/v1"])).unwrap();
        let token_sub = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .cloned()
            .expect("serviceaccounts/token in /api/v1");
        assert_eq!(
            token_sub,
            json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
                   "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                   "verbs": ["create"]})
        );
    }

    /// Garbage, expired, tampered and revoked tokens are all `401 Unauthorized`.
    fn bad_tokens_are_unauthorized(k) {
        assert_unauthorized(k, "garbage");
        assert_unauthorized(k, "a.b.c");

        k.ok(["create", "serviceaccount", "robot"]);
        let token = k.ok(["create", "token", "robot"]);
        let token = token.trim();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let mut c = claims(token);
        // Re-signed with the server's key and fresh times: accepted, so the signing here
        // is right and the refusals below are about the claims.
        let resigned = sign_with_server_key(k.server(), &header, &c);
        assert_contains(&whoami(k, &resigned), "system:serviceaccount:default:robot");
        // Expired two minutes ago (past the one-minute leeway).
        c["iat"] = json!(now() - 4000);
        c["nbf"] = json!(now() - 4000);
        c["exp"] = json!(now() - 120);
        assert_unauthorized(k, &sign_with_server_key(k.server(), &header, &c));
        // Someone else's name under the original signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = claims(token);
        forged["sub"] = json!("system:serviceaccount:kube-system:default");
        forged["kubernetes.io"]["namespace"] = json!("kube-system");
        parts[1] = b64url(&serde_json::to_vec(&forged).unwrap());
        assert_unauthorized(k, &parts.join("."));

        // Deleting the ServiceAccount revokes its tokens, and a new one of the same name
        // (another uid) does not revive them.
        assert_contains(&whoami(k, token), "system:serviceaccount:default:robot");
        k.ok(["delete", "serviceaccount", "robot"]);
        assert_unauthorized(k, token);
        k.ok(["create", "serviceaccount", "robot"]);
        assert_unauthorized(k, token);
    }

    /// Pods get the `default` ServiceAccount and its token volume in every container; a
    /// missing ServiceAccount is refused; a pod-bound token dies with its pod.
    fn pod_admission_and_pod_bound_tokens(k) {
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  \
            initContainers:\n  - name: init\n    image: busybox\n  containers:\n  \
            - name: main\n    image: nginx:1.27\n  - name: side\n    image: busybox\n";
        k.ok_stdin(["create", "-f", "-"], manifest);
        let pod = k.get_json("pod", "web", &[]);
        let spec = &pod["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["serviceAccount"], "default");
        let volumes = spec["volumes"].as_array().expect("volumes");
        assert_eq!(volumes.len(), 1, "{volumes:?}");
        let name = volumes[0]["name"].as_str().unwrap();
        assert!(name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5, "{name}");
        assert_eq!(
            volumes[0]["projected"],
            json!({"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]})
        );
        let mount = json!([{"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
        assert_eq!(spec["initContainers"][0]["volumeMounts"], mount);
        assert_eq!(spec["containers"][0]["volumeMounts"], mount);
        assert_eq!(spec["containers"][1]["volumeMounts"], mount);

        let err = k.err_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lost\nspec:\n  serviceAccountName: ghost\n  \
             containers:\n  - name: main\n    image: nginx:1.27\n",
        );
        assert_contains(
            &err,
            "Error from server (Forbidden): error when creating \"STDIN\": pods \"lost\" is forbidden: \
             error looking up service account default/ghost: serviceaccount \"ghost\" not found",
        );

        k.ok_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: quiet\nspec:\n  automountServiceAccountToken: false\n  \
             containers:\n  - name: main\n    image: nginx:1.27\n",
        );
        let quiet = k.get_json("pod", "quiet", &[]);
        assert!(quiet["spec"].get("volumes").is_none(), "{quiet}");
        assert!(quiet["spec"]["containers"][0].get("volumeMounts").is_none(), "{quiet}");

        // The ServiceAccount's own choices: no token, and its image pull secrets.
        k.ok_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\n\
             automountServiceAccountToken: false\nimagePullSecrets:\n- name: regcred\n",
        );
        k.ok_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: build\nspec:\n  serviceAccountName: builder\n  \
             containers:\n  - name: main\n    image: nginx:1.27\n",
        );
        let build = k.get_json("pod", "build", &[]);
        assert!(build["spec"].get("volumes").is_none(), "{build}");
        assert_eq!(build["spec"]["imagePullSecrets"], json!([{"name": "regcred"}]));

        // A new namespace has its `default` ServiceAccount, so pods can be created there.
        k.ok(["create", "namespace", "team"]);
        let out = k.ok_stdin(["create", "-n", "team", "-f", "-"], &common::pod("api", "nginx:1.27", &[("app", "api")]));
        assert_eq!(out.trim(), "pod/api created");
        let api = k.get_json("pod", "api", &["-n", "team"]);
        assert_eq!(api["spec"]["serviceAccountName"], "default");

        // Bound to the pod: the pod's name and uid come with the user; deleting the pod
        // revokes the token.
        let token = k.ok(["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "web"]);
        let pod_uid = pod["metadata"]["uid"].as_str().unwrap();
        let c = claims(&token);
        assert_eq!(c["kubernetes.io"]["pod"], json!({"name": "web", "uid": pod_uid}));
        let me = whoami(k, token.trim());
        assert_contains(&me, "authentication.kubernetes.io/pod-name");
        assert_contains(&me, "[web]");
        assert_contains(&me, pod_uid);
        k.ok(["create", "serviceaccount", "robot"]);
        let err = k.err(["create", "token", "robot", "--bound-object-kind", "Pod", "--bound-object-name", "web"]);
        assert_eq!(
            err.trim(),
            "error: failed to create token: cannot bind token for serviceaccount \"robot\" to pod running with different serviceaccount name."
        );
        let err = k.err(["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "web", "--bound-object-uid", "not-the-uid"]);
        assert_eq!(
            err.trim(),
            "error: failed to create token: Operation cannot be fulfilled on Pod \"web\": the UID in the bound object reference (not-the-uid) does not match the UID in record. The object might have been deleted and then recreated"
        );
        k.ok(["delete", "pod", "web"]);
        assert_unauthorized(k, token.trim());
        let err = k.err(["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "web"]);
        assert_eq!(err.trim(), "error: failed to create token: pods \"web\" not found");
    }

    /// A `kubernetes.io/service-account-token` Secret gets a token, the CA and the
    /// namespace; the token authenticates until the Secret is deleted.
    fn legacy_token_secret(k) {
        k.ok(["create", "serviceaccount", "robot"]);
        k.ok_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: robot-token\n  annotations:\n    \
             kubernetes.io/service-account.name: robot\ntype: kubernetes.io/service-account-token\n",
        );
        let secret = k.get_json("secret", "robot-token", &[]);
        let data = secret["data"].as_object().expect("data");
        assert_eq!(data.keys().collect::<Vec<_>>(), ["ca.crt", "namespace", "token"]);
        let decode = |key: &str| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(data[key].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(decode("namespace"), "default");
        let ca = std::fs::read_to_string(k.server().data_dir().join("pki/ca.crt")).unwrap();
        assert_eq!(decode("ca.crt"), ca);
        let sa_uid = k.get_json("serviceaccount", "robot", &[])["metadata"]["uid"].clone();
        assert_eq!(secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"], sa_uid);
        let token = decode("token");
        assert_eq!(claims(&token)["iss"], "kubernetes/serviceaccount");
        assert_contains(&whoami(k, &token), "system:serviceaccount:default:robot");
        // Marked invalid, it stops working; unmarked, it works again.
        k.ok(["label", "secret", "robot-token", "kubernetes.io/legacy-token-invalid-since=2026-01-01"]);
        assert_unauthorized(k, &token);
        k.ok(["label", "secret", "robot-token", "kubernetes.io/legacy-token-invalid-since-"]);
        assert_contains(&whoami(k, &token), "system:serviceaccount:default:robot");
        k.ok(["delete", "secret", "robot-token"]);
        assert_unauthorized(k, &token);

        // A TokenRequest bound to an ordinary Secret lives as long as that Secret.
        k.ok(["create", "secret", "generic", "anchor", "--from-literal", "k=v"]);
        let bound = k.ok(["create", "token", "robot", "--bound-object-kind", "Secret", "--bound-object-name", "anchor"]);
        let anchor_uid = k.get_json("secret", "anchor", &[])["metadata"]["uid"].clone();
        assert_eq!(claims(&bound)["kubernetes.io"]["secret"], json!({"name": "anchor", "uid": anchor_uid}));
        assert_contains(&whoami(k, bound.trim()), "system:serviceaccount:default:robot");
        k.ok(["delete", "secret", "anchor"]);
        assert_unauthorized(k, bound.trim());
        // kubectl only offers Pod, Secret and Node; the server refuses other kinds itself.
        let err = k.err_stdin(
            ["create", "--raw", "/api/v1/namespaces/default/serviceaccounts/robot/token", "-f", "-"],
            r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"boundObjectRef":{"apiVersion":"v1","kind":"ConfigMap","name":"x"}}}"#,
        );
        assert_contains(&err, "Error from server (BadRequest): cannot bind token to object of type /v1, Kind=ConfigMap");

        // Without the annotation the Secret is refused as upstream refuses it.
        let err = k.err_stdin(
            ["create", "-f", "-"],
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bare\ntype: kubernetes.io/service-account-token\n",
        );
        assert_contains(&err, "metadata.annotations[kubernetes.io/service-account.name]: Required value");
    }
}

/// The signing key is kept in the data dir: tokens issued before a restart still work.
/// A namespace missing its `default` ServiceAccount gets it back at start-up.
#[test]
fn tokens_survive_a_restart() {
    let version = KubectlVersion::V1_33;
    let mut server = TestServer::start();
    let token = server.kubectl_ok(version, ["create", "token", "default"]);
    let key = std::fs::read(server.data_dir().join("pki/sa.key")).unwrap();
    server.kubectl_ok(version, ["create", "namespace", "team"]);
    server.kubectl_ok(
        version,
        ["delete", "serviceaccount", "default", "-n", "team"],
    );
    server.restart();
    assert_eq!(
        std::fs::read(server.data_dir().join("pki/sa.key")).unwrap(),
        key
    );
    let k = server.with_version(version);
    assert_contains(
        &whoami(&k, token.trim()),
        "system:serviceaccount:default:default",
    );
    k.ok(["get", "serviceaccount", "default", "-n", "team"]);
}

/// kube-rs: `Api<ServiceAccount>::create_token_request`, then a client whose kubeconfig
/// holds only that token lists ConfigMaps and is refused once the account is gone.
#[test]
fn kube_rs_token_request_and_bearer_client() {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use kube::api::{Api, DeleteParams, ListParams, PostParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};

    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let client = |kubeconfig: Kubeconfig| async move {
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .expect("kube Config");
            kube::Client::try_from(config).expect("kube Client")
        };
        let admin = client(Kubeconfig::read_from(server.kubeconfig()).unwrap()).await;
        let accounts: Api<ServiceAccount> = Api::namespaced(admin, "default");
        let robot: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap();
        accounts
            .create(&PostParams::default(), &robot)
            .await
            .expect("create ServiceAccount");
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(1200),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let answer = accounts
            .create_token_request("robot", &PostParams::default(), &request)
            .await
            .expect("TokenRequest");
        assert_eq!(answer.spec.audiences, [ISSUER]);
        assert_eq!(answer.spec.expiration_seconds, Some(1200));
        let status = answer.status.expect("status");
        let token = status.token;
        assert_eq!(claims(&token)["sub"], "system:serviceaccount:default:robot");

        // A kubeconfig with the token as its only credential.
        let text = std::fs::read_to_string(token_only_kubeconfig(&server))
            .unwrap()
            .replace("  user: {}", &format!("  user:\n    token: {token}"));
        let as_robot = client(Kubeconfig::from_yaml(&text).expect("kubeconfig")).await;
        let config_maps: Api<ConfigMap> = Api::namespaced(as_robot.clone(), "default");
        config_maps
            .list(&ListParams::default())
            .await
            .expect("list as the ServiceAccount");

        accounts
            .delete("robot", &DeleteParams::default())
            .await
            .expect("delete");
        match config_maps.list(&ListParams::default()).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
            other => panic!("expected 401 after the ServiceAccount is gone, got {other:?}"),
        }
    });
}
