//! ServiceAccounts in the registry: `TokenRequest` (`POST serviceaccounts/<name>/token`,
//! upstream `pkg/registry/core/serviceaccount/storage/token.go`), the ServiceAccount
//! admission plugin for pods (`plugin/pkg/admission/serviceaccount`), and legacy token
//! Secrets, filled at create time as upstream's tokens controller fills them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::meta;
use super::{Registry, Resource};
use crate::satoken::{self, BoundClaims, ObjectRef, TokenIssuer};
use crate::status::{ApiError, ApiResult};
use k8rs_api::FieldError;

/// `authentication.k8s.io/v1 TokenRequest`'s discovery facts, for its `422 Invalid` messages.
static TOKEN_REQUEST_INFO: k8rs_api::ResourceInfo = k8rs_api::ResourceInfo {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    plural: "tokenrequests",
    singular: "tokenrequest",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &["create"],
    subresources: k8rs_api::Subresources {
        status: false,
        scale: false,
        extra: &[],
    },
};

/// Default `spec.expirationSeconds` (upstream `SetDefaults_TokenRequestSpec`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Shortest and longest lifetimes `ValidateTokenRequest` allows.
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The ServiceAccount pods get when they name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where the token volume is mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the projected token volume's name.
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Annotation that marks mirror pods (the kubelet's static pods).
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Legacy token Secrets: their type and the annotations naming their ServiceAccount.
const SA_TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl Registry {
    /// Give the registry the ServiceAccount signing key (legacy token Secrets are signed
    /// at create time). Set once at start-up; later calls are ignored.
    pub fn set_token_issuer(&self, issuer: Arc<TokenIssuer>) {
        let _ = self.tokens.set(issuer);
    }

    /// An object of a core kind, read consistently; `None` when it does not exist.
    async fn get_core(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<(Arc<Resource>, Arc<Value>)>> {
        let Some(res) = self.resource_by_kind("", kind).cloned() else {
            return Ok(None);
        };
        match self.get(&res, namespace, name, None).await {
            Ok(obj) => Ok(Some((res, obj))),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`: issue a token for the
    /// ServiceAccount, optionally bound to a Pod, Secret or Node, and answer the
    /// `TokenRequest` with `status.token` and `status.expirationTimestamp`.
    pub async fn request_token(
        &self,
        namespace: &str,
        name: &str,
        mut req: Value,
    ) -> ApiResult<Value> {
        let issuer = self
            .tokens
            .get()
            .cloned()
            .ok_or_else(|| ApiError::internal("the service account token issuer is not set"))?;
        if !req.is_object() {
            return Err(ApiError::bad_request(
                "the body is not a TokenRequest object",
            ));
        }
        let kind = str_at(&req, "/kind");
        let api_version = str_at(&req, "/apiVersion");
        if (!kind.is_empty() && kind != "TokenRequest")
            || (!api_version.is_empty() && api_version != "authentication.k8s.io/v1")
        {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type TokenRequest): {api_version}, Kind={kind}"
            )));
        }
        let body_name = str_at(&req, "/metadata/name").to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::invalid(
                &TOKEN_REQUEST_INFO,
                name,
                &[FieldError::invalid(
                    "metadata.name",
                    body_name,
                    "must match the service account name if specified",
                )],
            ));
        }
        let body_ns = str_at(&req, "/metadata/namespace").to_string();
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::invalid(
                &TOKEN_REQUEST_INFO,
                name,
                &[FieldError::invalid(
                    "metadata.namespace",
                    body_ns,
                    "must match the service account namespace if specified",
                )],
            ));
        }
        let sa_res = self
            .resource_by_kind("", "ServiceAccount")
            .cloned()
            .ok_or_else(ApiError::path_not_found)?;
        let sa = self.get(&sa_res, Some(namespace), name, None).await?;

        // Defaults: the API server's audiences, an hour.
        let mut audiences: Vec<String> = req
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if audiences.is_empty() {
            audiences = issuer.audiences().to_vec();
        }
        let expiration = match req.pointer("/spec/expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.expirationSeconds: {v} is not an integer"
                ))
            })?,
        };
        let now = chrono::Utc::now();
        let now_secs = now.timestamp();
        let mut errors = Vec::new();
        if expiration < MIN_EXPIRATION_SECONDS {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 10 minutes",
            ));
        }
        if expiration > MAX_EXPIRATION_SECONDS {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(&TOKEN_REQUEST_INFO, "", &errors));
        }

        let mut claims = BoundClaims {
            namespace: namespace.to_string(),
            service_account: ObjectRef {
                name: name.to_string(),
                uid: str_at(&sa, "/metadata/uid").to_string(),
            },
            audiences: audiences.clone(),
            issued_at: now_secs,
            expires_at: now_secs + expiration,
            id: uuid::Uuid::new_v4().to_string(),
            ..BoundClaims::default()
        };
        let bound_ref = req
            .pointer("/spec/boundObjectRef")
            .filter(|r| r.is_object())
            .cloned();
        if let Some(r) = &bound_ref {
            let ref_kind = str_at(r, "/kind");
            let ref_api_version = str_at(r, "/apiVersion");
            let ref_name = str_at(r, "/name");
            let ref_uid = str_at(r, "/uid");
            let (group, version) = match ref_api_version.split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", ref_api_version),
            };
            let gvk = format!("{group}/{version}, Kind={ref_kind}");
            let not_found = |kind: &str| -> ApiError {
                match self.resource_by_kind("", kind) {
                    Some(res) => ApiError::not_found(res.info(), ref_name),
                    None => ApiError::path_not_found(),
                }
            };
            let uid = match (group, ref_kind) {
                ("", "Pod") => {
                    let (_, pod) = self
                        .get_core("Pod", Some(namespace), ref_name)
                        .await?
                        .ok_or_else(|| not_found("Pod"))?;
                    if str_at(&pod, "/spec/serviceAccountName") != name {
                        return Err(ApiError::bad_request(format!(
                            "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                        )));
                    }
                    // The token also names the pod's node (ServiceAccountTokenPodNodeInfo).
                    let node_name = str_at(&pod, "/spec/nodeName");
                    if !node_name.is_empty() {
                        let node = self.get_core("Node", None, node_name).await?;
                        claims.node = Some(ObjectRef {
                            name: node_name.to_string(),
                            uid: node
                                .map(|(_, n)| str_at(&n, "/metadata/uid").to_string())
                                .unwrap_or_default(),
                        });
                    }
                    let pod_ref = ObjectRef {
                        name: ref_name.to_string(),
                        uid: str_at(&pod, "/metadata/uid").to_string(),
                    };
                    let uid = pod_ref.uid.clone();
                    claims.pod = Some(pod_ref);
                    uid
                }
                ("", "Node") => {
                    let (_, node) = self
                        .get_core("Node", None, ref_name)
                        .await?
                        .ok_or_else(|| not_found("Node"))?;
                    let node_ref = ObjectRef {
                        name: ref_name.to_string(),
                        uid: str_at(&node, "/metadata/uid").to_string(),
                    };
                    let uid = node_ref.uid.clone();
                    claims.node = Some(node_ref);
                    uid
                }
                ("", "Secret") => {
                    let (_, secret) = self
                        .get_core("Secret", Some(namespace), ref_name)
                        .await?
                        .ok_or_else(|| not_found("Secret"))?;
                    let secret_ref = ObjectRef {
                        name: ref_name.to_string(),
                        uid: str_at(&secret, "/metadata/uid").to_string(),
                    };
                    let uid = secret_ref.uid.clone();
                    claims.secret = Some(secret_ref);
                    uid
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token to object of type {gvk}"
                    )))
                }
            };
            if !ref_uid.is_empty() && ref_uid != uid {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {ref_kind} {ref_name:?}: the UID in the bound object reference ({ref_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
        }

        // Pod-bound tokens with the kubelet's 3607 s lifetime for the API server really
        // live a year and carry `warnafter` (--service-account-extend-token-expiration).
        if claims.pod.is_some()
            && expiration == satoken::WARN_ONLY_EXPIRATION_SECONDS
            && audiences.iter().all(|a| issuer.audiences().contains(a))
        {
            claims.warn_after = Some(now_secs + expiration);
            claims.expires_at = now_secs + satoken::EXTENDED_EXPIRATION_SECONDS;
        }
        let token = issuer
            .issue(&claims)
            .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;

        let timestamp = |secs: i64| {
            chrono::DateTime::from_timestamp(secs, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        let mut spec = json!({"audiences": audiences, "expirationSeconds": expiration});
        spec["boundObjectRef"] = bound_ref.unwrap_or(Value::Null);
        req["apiVersion"] = json!("authentication.k8s.io/v1");
        req["kind"] = json!("TokenRequest");
        let m = meta::meta_mut(&mut req);
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(namespace));
        m.insert("creationTimestamp".into(), json!(timestamp(now_secs)));
        req["spec"] = spec;
        req["status"] = json!({
            "token": token,
            "expirationTimestamp": timestamp(now_secs + expiration),
        });
        Ok(req)
    }

    /// A pod's ServiceAccount: a consistent read, retried for `default` (which its
    /// controller creates moments after the namespace) as upstream's admission does.
    async fn pod_service_account(&self, namespace: &str, name: &str) -> ApiResult<Arc<Value>> {
        let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
            10
        } else {
            1
        };
        let interval = Duration::from_millis(100 + rand::random::<u64>() % 100);
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(interval).await;
            }
            if let Some((_, sa)) = self
                .get_core("ServiceAccount", Some(namespace), name)
                .await?
            {
                return Ok(sa);
            }
        }
        Err(ApiError::not_found(&SERVICE_ACCOUNT_SINGULAR, name))
    }

    /// The ServiceAccount admission plugin on pod create: default `serviceAccountName`,
    /// refuse pods whose ServiceAccount does not exist, mount the projected API token
    /// volume, copy the ServiceAccount's image pull secrets.
    pub(crate) async fn admit_pod_service_account(&self, pod: &mut Value) -> ApiResult<()> {
        let namespace = meta::namespace(pod).to_string();
        let pod_name = meta::name(pod).to_string();
        let forbidden =
            |why: String| ApiError::forbidden(format!("pods {pod_name:?} is forbidden: {why}"));
        if !pod.get("spec").is_some_and(Value::is_object) {
            return Ok(());
        }
        let mirror = pod
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
        if mirror {
            return check_mirror_pod(pod).map_err(forbidden);
        }
        // `serviceAccount` is the deprecated spelling, used when the new one is empty.
        let mut sa_name = str_at(pod, "/spec/serviceAccountName").to_string();
        if sa_name.is_empty() {
            sa_name = str_at(pod, "/spec/serviceAccount").to_string();
        }
        if sa_name.is_empty() {
            sa_name = DEFAULT_SERVICE_ACCOUNT.to_string();
        }
        pod["spec"]["serviceAccountName"] = json!(sa_name);
        pod["spec"]["serviceAccount"] = json!(sa_name);
        let sa = self
            .pod_service_account(&namespace, &sa_name)
            .await
            .map_err(|e| {
                forbidden(format!(
                    "error looking up service account {namespace}/{sa_name}: {}",
                    e.message
                ))
            })?;
        let automount = pod
            .pointer("/spec/automountServiceAccountToken")
            .and_then(Value::as_bool)
            .or_else(|| {
                sa.get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(true);
        if automount {
            mount_service_account_token(pod);
        }
        let has_pull_secrets = pod
            .pointer("/spec/imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !has_pull_secrets {
            if let Some(secrets) = sa
                .get("imagePullSecrets")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
            {
                let refs: Vec<Value> = secrets
                    .iter()
                    .map(|s| json!({"name": str_at(s, "/name")}))
                    .collect();
                pod["spec"]["imagePullSecrets"] = json!(refs);
            }
        }
        Ok(())
    }

    /// A new `kubernetes.io/service-account-token` Secret naming an existing ServiceAccount
    /// gets `data.token` (a legacy token), `data["ca.crt"]`, `data.namespace` and the
    /// ServiceAccount's uid annotation, as upstream's tokens controller writes right after
    /// creation. Secrets for a missing ServiceAccount are left as they are.
    pub(crate) async fn fill_legacy_token_secret(&self, secret: &mut Value) -> ApiResult<()> {
        if str_at(secret, "/type") != SA_TOKEN_SECRET_TYPE {
            return Ok(());
        }
        let sa_name = secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SA_NAME_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if sa_name.is_empty() {
            // Validation refuses it with upstream's message.
            return Ok(());
        }
        let Some(issuer) = self.tokens.get().cloned() else {
            return Ok(());
        };
        let namespace = meta::namespace(secret).to_string();
        let Some((_, sa)) = self
            .get_core("ServiceAccount", Some(&namespace), &sa_name)
            .await?
        else {
            return Ok(());
        };
        let sa_uid = str_at(&sa, "/metadata/uid").to_string();
        let wanted_uid = secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SA_UID_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !wanted_uid.is_empty() && wanted_uid != sa_uid {
            return Ok(());
        }
        let secret_name = meta::name(secret).to_string();
        let token = issuer
            .issue_legacy(&namespace, &sa_name, &sa_uid, &secret_name)
            .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
        let b64 = |s: &str| json!(base64::engine::general_purpose::STANDARD.encode(s));
        if !secret.get("data").is_some_and(Value::is_object) {
            secret["data"] = json!({});
        }
        if let Some(ca) = self.cluster_ca.get() {
            secret["data"]["ca.crt"] = b64(ca);
        }
        secret["data"]["namespace"] = b64(&namespace);
        secret["data"]["token"] = b64(&token);
        // Keys in upstream's (Go map) order: sorted.
        if let Some(data) = secret["data"].as_object_mut() {
            let mut entries: Vec<(String, Value)> = std::mem::take(data).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            data.extend(entries);
        }
        let m = meta::meta_mut(secret);
        let annotations = m.entry("annotations").or_insert_with(|| json!({}));
        annotations[SA_UID_ANNOTATION] = json!(sa_uid);
        Ok(())
    }

    /// Give the registry the cluster CA certificate (PEM) that legacy token Secrets carry
    /// as `ca.crt`. Set once at start-up.
    pub fn set_cluster_ca(&self, ca_pem: String) {
        let _ = self.cluster_ca.set(ca_pem);
    }

    /// Create the `default` ServiceAccount of a namespace unless it exists.
    ///
    /// Upstream's ServiceAccounts controller does this for every namespace; until k8rs's
    /// controller manager runs it, the registry does it when a namespace is created, so
    /// that pod admission (which refuses pods without their ServiceAccount) works.
    pub(crate) async fn ensure_default_service_account(&self, namespace: &str) -> ApiResult<()> {
        let Some(res) = self.resource_by_kind("", "ServiceAccount").cloned() else {
            return Ok(());
        };
        let key = res.key(Some(namespace), DEFAULT_SERVICE_ACCOUNT);
        if self.store.get(&key).await?.is_some() {
            return Ok(());
        }
        let sa = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": DEFAULT_SERVICE_ACCOUNT,
                "namespace": namespace,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": meta::now(),
            },
        });
        let bytes = serde_json::to_vec(&sa).map_err(ApiError::internal)?;
        match self.store.create(&key, bytes.into(), None).await {
            Ok(_) | Err(k8rs_store::Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `serviceaccount "x" not found`: upstream's admission names the singular resource.
static SERVICE_ACCOUNT_SINGULAR: k8rs_api::ResourceInfo = k8rs_api::ResourceInfo {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccount",
    singular: "serviceaccount",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &[],
    subresources: k8rs_api::Subresources {
        status: false,
        scale: false,
        extra: &[],
    },
};

/// Mirror pods may not reference ServiceAccounts, Secrets or token projections.
fn check_mirror_pod(pod: &Value) -> Result<(), String> {
    if !str_at(pod, "/spec/serviceAccountName").is_empty() {
        return Err("a mirror pod may not reference service accounts".into());
    }
    let spec = &pod["spec"];
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut secrets = volumes.iter().any(|v| {
        v.get("secret").is_some()
            || v.pointer("/projected/sources")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.get("secret").is_some()))
    });
    secrets |= spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let env = c.get("env").and_then(Value::as_array).into_iter().flatten();
            let env_from = c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            secrets |= env
                .clone()
                .any(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
                || env_from.clone().any(|e| e.get("secretRef").is_some());
        }
    }
    if secrets {
        return Err("a mirror pod may not reference secrets".into());
    }
    let projects_token = volumes.iter().any(|v| {
        v.pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
    });
    if projects_token {
        return Err("a mirror pod may not use ServiceAccountToken volume projections".into());
    }
    Ok(())
}

/// Upstream's `TokenVolumeSource`: the token, the cluster CA and the namespace.
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": satoken::WARN_ONLY_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
            ],
        },
    })
}

/// Mount the API token volume at [`TOKEN_MOUNT_PATH`] in every init container and
/// container that mounts nothing there, adding the volume (`kube-api-access-<5>`) once.
fn mount_service_account_token(pod: &mut Value) {
    let existing = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .map(|v| str_at(v, "/name"))
                .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
                .map(str::to_string)
        });
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| meta::generate_name(TOKEN_VOLUME_PREFIX));
    let mount = json!({"mountPath": TOKEN_MOUNT_PATH, "name": volume_name, "readOnly": true});
    let mut needs_volume = false;
    for field in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"].get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let mounted = c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter()
                        .any(|m| str_at(m, "/mountPath") == TOKEN_MOUNT_PATH)
                });
            if mounted || !c.is_object() {
                continue;
            }
            match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                Some(ms) => ms.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
            needs_volume = true;
        }
    }
    if needs_volume && !has_volume {
        match pod["spec"].get_mut("volumes").and_then(Value::as_array_mut) {
            Some(vs) => vs.push(token_volume(&volume_name)),
            None => pod["spec"]["volumes"] = json!([token_volume(&volume_name)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_volume_is_mounted_in_every_container_once() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [
                {"name": "a", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "image": "nginx", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }});
        mount_service_account_token(&mut pod);
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 2);
        let name = volumes[1]["name"].as_str().unwrap().to_string();
        assert!(
            name.starts_with("kube-api-access-") && name.len() == 21,
            "{name}"
        );
        assert_eq!(volumes[1], token_volume(&name));
        let mount = json!({"mountPath": TOKEN_MOUNT_PATH, "name": name, "readOnly": true});
        assert_eq!(
            pod["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"][1], mount);
        // A container with its own mount at the path keeps it.
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // Idempotent: a second pass adds nothing.
        let before = pod.clone();
        mount_service_account_token(&mut pod);
        assert_eq!(pod, before);
    }

    #[test]
    fn mirror_pods_may_not_reference_accounts_or_secrets() {
        let pod = json!({"spec": {"serviceAccountName": "x", "containers": []}});
        assert_eq!(
            check_mirror_pod(&pod).unwrap_err(),
            "a mirror pod may not reference service accounts"
        );
        let pod = json!({"spec": {"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "s"}}]}]}});
        assert_eq!(
            check_mirror_pod(&pod).unwrap_err(),
            "a mirror pod may not reference secrets"
        );
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        assert!(check_mirror_pod(&pod).is_ok());
    }
}
