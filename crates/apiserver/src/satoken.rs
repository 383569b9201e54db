//! ServiceAccount tokens: the signing key, the JWT claims upstream issues (bound tokens from
//! `TokenRequest` and legacy Secret tokens), their verification, and the bearer-token
//! [`Authenticator`] that turns a valid token into `system:serviceaccount:<ns>:<name>`
//! (upstream `pkg/serviceaccount` and `k8s.io/apiserver/pkg/authentication/serviceaccount`).
//!
//! Tokens are ES256 JWTs: upstream accepts ECDSA signing keys as well as RSA, and P-256
//! keys can be generated with `ring`, which the TLS stack already uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use base64::Engine;
use http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::PublicKeyData;
use serde_json::{json, Map, Value};

use crate::authn::{Authenticator, AuthnError, UserInfo, EXTRA_CREDENTIAL_ID};
use crate::registry::Registry;

/// The issuer of bound tokens and the API server's own audience (upstream
/// `--service-account-issuer`, as k3s and kubeadm set it).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy (Secret-based) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Group of every ServiceAccount.
pub const GROUP_ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// `extra` keys upstream sets for pod- and node-bound tokens.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// See [`EXTRA_POD_NAME`].
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// See [`EXTRA_POD_NAME`].
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
/// See [`EXTRA_POD_NAME`].
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
/// Expiry kubelets request for projected tokens (`WarnOnlyBoundTokenExpirationSeconds`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// What such pod-bound tokens really get (`ExpirationExtensionSeconds`, one year), so old
/// clients that never reload their token keep working while `warnafter` flags them.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;
/// Where the OpenID provider configuration and the key set are served.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
/// See [`OPENID_CONFIGURATION_PATH`].
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// Label that invalidates a legacy token Secret's token.
const LEGACY_TOKEN_INVALID_SINCE: &str = "kubernetes.io/legacy-token-invalid-since";
/// Clock skew tolerated on `exp` and `nbf` (go-jose's `DefaultLeeway`).
const LEEWAY_SECONDS: i64 = 60;

/// `system:serviceaccount:<ns>:<name>`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A name and uid in the `kubernetes.io` private claim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid (empty for a node that does not exist).
    pub uid: String,
}

impl ObjectRef {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.name.is_empty() {
            m.insert("name".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        Value::Object(m)
    }

    fn from_json(v: Option<&Value>) -> Option<ObjectRef> {
        let v = v?;
        Some(ObjectRef {
            name: str_at(v, "/name").to_string(),
            uid: str_at(v, "/uid").to_string(),
        })
    }
}

/// What a bound token says about its ServiceAccount and the objects it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoundClaims {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// The ServiceAccount.
    pub service_account: ObjectRef,
    /// The pod the token is bound to.
    pub pod: Option<ObjectRef>,
    /// The Secret the token is bound to.
    pub secret: Option<ObjectRef>,
    /// The node the token (or its pod) is bound to.
    pub node: Option<ObjectRef>,
    /// Audiences (`aud`).
    pub audiences: Vec<String>,
    /// Issued at, seconds since the epoch.
    pub issued_at: i64,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// Seconds since the epoch after which upstream flags the token as stale.
    pub warn_after: Option<i64>,
    /// Token id (`jti`).
    pub id: String,
}

/// A verified token's identity, before the objects it names are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A bound token from `TokenRequest`.
    Bound(BoundClaims),
    /// A legacy token stored in a `kubernetes.io/service-account-token` Secret.
    Legacy {
        /// Namespace of the ServiceAccount and Secret.
        namespace: String,
        /// ServiceAccount name.
        service_account: String,
        /// ServiceAccount uid.
        service_account_uid: String,
        /// Name of the Secret that holds the token.
        secret: String,
    },
}

/// Why a token was refused (never shown to clients, who only see `Unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// The ServiceAccount signing key: signs new tokens and verifies presented ones.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    audiences: Vec<String>,
    /// The public key as a JWK (`/openid/v1/jwks`).
    jwk: Value,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("TokenIssuer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer over a PKCS#8 PEM ECDSA P-256 private key (`DATA/pki/sa.key`), accepting
    /// the API server's audiences (the issuer URL).
    pub fn from_pem(key_pem: &str) -> anyhow::Result<TokenIssuer> {
        let key = rcgen::KeyPair::from_pem(key_pem)
            .map_err(|e| anyhow!("parsing the service account signing key: {e}"))?;
        if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            anyhow::bail!("the service account signing key must be an ECDSA P-256 key");
        }
        // Upstream's key id: the unpadded base64url SHA-256 of the PKIX public key.
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
        let key_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        // An uncompressed P-256 point: 0x04, then X and Y, 32 bytes each.
        let point = key.public_key_raw();
        if point.len() != 65 || point[0] != 4 {
            anyhow::bail!("the service account signing key's public point is malformed");
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({
            "use": "sig", "kty": "EC", "kid": key_id, "crv": "P-256", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        Ok(TokenIssuer {
            encoding: EncodingKey::from_ec_der(&key.serialize_der()),
            decoding: DecodingKey::from_ec_der(point),
            key_id,
            audiences: vec![ISSUER.to_string()],
            jwk,
        })
    }

    /// The JSON Web Key Set relying parties verify tokens with (`GET /openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// The OpenID provider configuration (`GET /.well-known/openid-configuration`), with
    /// the key set served by this API server at `server_address` (`host:port`), as
    /// upstream does without `--service-account-jwks-uri`.
    pub fn openid_configuration(&self, server_address: &str) -> Value {
        json!({
            "issuer": ISSUER,
            "jwks_uri": format!("https://{server_address}{JWKS_PATH}"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// The audiences the API server accepts, and gives tokens that name none.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        // Upstream's tokens carry no `typ`.
        header.typ = None;
        jsonwebtoken::encode(&header, claims, &self.encoding).context("signing a token")
    }

    /// Sign a bound token with upstream's claims.
    pub fn issue(&self, claims: &BoundClaims) -> anyhow::Result<String> {
        let mut k8s = Map::new();
        k8s.insert("namespace".into(), json!(claims.namespace));
        if let Some(node) = &claims.node {
            k8s.insert("node".into(), node.to_json());
        }
        if let Some(pod) = &claims.pod {
            k8s.insert("pod".into(), pod.to_json());
        }
        if let Some(secret) = &claims.secret {
            k8s.insert("secret".into(), secret.to_json());
        }
        k8s.insert("serviceaccount".into(), claims.service_account.to_json());
        if let Some(w) = claims.warn_after {
            k8s.insert("warnafter".into(), json!(w));
        }
        let body = json!({
            "aud": claims.audiences,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "iss": ISSUER,
            "jti": claims.id,
            "kubernetes.io": k8s,
            "nbf": claims.issued_at,
            "sub": username(&claims.namespace, &claims.service_account.name),
        });
        self.sign(&body)
    }

    /// Sign a legacy token for a `kubernetes.io/service-account-token` Secret: no expiry,
    /// no audience, the claims upstream's tokens controller writes.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        service_account: &str,
        service_account_uid: &str,
        secret: &str,
    ) -> anyhow::Result<String> {
        self.sign(&json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret,
            "kubernetes.io/serviceaccount/service-account.name": service_account,
            "kubernetes.io/serviceaccount/service-account.uid": service_account_uid,
            "sub": username(namespace, service_account),
        }))
    }

    /// Check a token's signature, issuer, time window (at `now`, seconds since the epoch)
    /// and audience against the API server's audiences. The objects it names are checked
    /// by the caller. Errors carry upstream's wording (what `TokenReview` reports).
    pub fn verify(&self, token: &str, now: i64) -> Result<Verified, TokenError> {
        self.verify_for(token, now, &self.audiences)
            .map(|(verified, _)| verified)
    }

    /// Like [`verify`](Self::verify) for the audiences a caller names (`TokenReview`), also
    /// returning the audiences the token is valid for among them.
    pub fn verify_for(
        &self,
        token: &str,
        now: i64,
        wanted: &[String],
    ) -> Result<(Verified, Vec<String>), TokenError> {
        // Upstream's authenticators skip tokens whose issuer they cannot read; the bearer
        // token authenticator then reports this.
        let invalid = || TokenError("invalid bearer token".into());
        if token.split('.').count() != 3 {
            return Err(invalid());
        }
        let issuer = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        if issuer != ISSUER && issuer != LEGACY_ISSUER {
            return Err(invalid());
        }
        let mut validation = Validation::new(Algorithm::ES256);
        // Times and audiences are checked below, with upstream's rules and leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Value>(token, &self.decoding, &validation).map_err(|e| {
                tracing::debug!(error = %e, "service account token signature");
                TokenError("go-jose/go-jose: error in cryptographic primitive".into())
            })?;
        let c = data.claims;
        // Audiences: legacy tokens have none and count as the API server's own.
        let token_audiences: Vec<String> = match c.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let effective = if token_audiences.is_empty() {
            self.audiences.clone()
        } else {
            token_audiences.clone()
        };
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| effective.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(TokenError(format!(
                "token audiences {effective:?} is invalid for the target audiences {wanted:?}"
            )));
        }
        let verified = match c.get("iss").and_then(Value::as_str).unwrap_or("") {
            LEGACY_ISSUER => {
                let get = |k: &str| {
                    c.get(format!("kubernetes.io/serviceaccount/{k}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let namespace = get("namespace");
                let service_account = get("service-account.name");
                let service_account_uid = get("service-account.uid");
                let secret = get("secret.name");
                if namespace.is_empty() || service_account.is_empty() || secret.is_empty() {
                    return Err(TokenError(
                        "service account token claims are missing".into(),
                    ));
                }
                if c.get("sub").and_then(Value::as_str)
                    != Some(&username(&namespace, &service_account))
                {
                    return Err(TokenError(
                        "service account token subject does not match its claims".into(),
                    ));
                }
                Verified::Legacy {
                    namespace,
                    service_account,
                    service_account_uid,
                    secret,
                }
            }
            _ => {
                let exp = c.get("exp").and_then(Value::as_i64);
                let nbf = c.get("nbf").and_then(Value::as_i64);
                match exp {
                    Some(exp) if now > exp + LEEWAY_SECONDS => {
                        return Err(TokenError("service account token has expired".into()))
                    }
                    Some(_) => {}
                    None => {
                        return Err(TokenError(
                            "service account token claims are missing".into(),
                        ))
                    }
                }
                if nbf.is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
                    return Err(TokenError("service account token is not valid yet".into()));
                }
                let audiences = token_audiences;
                let k = c.get("kubernetes.io").cloned().unwrap_or(Value::Null);
                let claims = BoundClaims {
                    namespace: str_at(&k, "/namespace").to_string(),
                    service_account: ObjectRef::from_json(k.get("serviceaccount"))
                        .unwrap_or_default(),
                    pod: ObjectRef::from_json(k.get("pod")),
                    secret: ObjectRef::from_json(k.get("secret")),
                    node: ObjectRef::from_json(k.get("node")),
                    audiences,
                    issued_at: c.get("iat").and_then(Value::as_i64).unwrap_or(0),
                    expires_at: exp.unwrap_or(0),
                    warn_after: k.get("warnafter").and_then(Value::as_i64),
                    id: c
                        .get("jti")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                };
                if claims.namespace.is_empty() || claims.service_account.name.is_empty() {
                    return Err(TokenError(
                        "service account token claims are missing".into(),
                    ));
                }
                if c.get("sub").and_then(Value::as_str)
                    != Some(&username(&claims.namespace, &claims.service_account.name))
                {
                    return Err(TokenError(
                        "service account token subject does not match its claims".into(),
                    ));
                }
                Verified::Bound(claims)
            }
        };
        Ok((verified, matched))
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The user a valid ServiceAccount token authenticates as (upstream
/// `ServiceAccountInfo.UserInfo`).
pub fn user_info(
    namespace: &str,
    name: &str,
    uid: &str,
    pod: Option<&ObjectRef>,
    node: Option<&ObjectRef>,
    credential_id: Option<String>,
) -> UserInfo {
    let mut extra = BTreeMap::new();
    if let Some(pod) = pod.filter(|p| !p.name.is_empty() && !p.uid.is_empty()) {
        extra.insert(EXTRA_POD_NAME.to_string(), vec![pod.name.clone()]);
        extra.insert(EXTRA_POD_UID.to_string(), vec![pod.uid.clone()]);
    }
    if let Some(id) = credential_id {
        extra.insert(EXTRA_CREDENTIAL_ID.to_string(), vec![id]);
    }
    if let Some(node) = node.filter(|n| !n.name.is_empty()) {
        extra.insert(EXTRA_NODE_NAME.to_string(), vec![node.name.clone()]);
        if !node.uid.is_empty() {
            extra.insert(EXTRA_NODE_UID.to_string(), vec![node.uid.clone()]);
        }
    }
    UserInfo {
        username: username(namespace, name),
        uid: uid.to_string(),
        groups: vec![
            GROUP_ALL_SERVICE_ACCOUNTS.to_string(),
            format!("{GROUP_ALL_SERVICE_ACCOUNTS}:{namespace}"),
        ],
        extra,
    }
}

/// Authenticates `Authorization: Bearer <ServiceAccount JWT>`: the signature and claims,
/// then that the ServiceAccount (same uid) and any bound pod, Secret or node still exist,
/// as upstream's validators do with `--service-account-lookup` (the default).
pub struct ServiceAccountAuthenticator {
    issuer: Arc<TokenIssuer>,
    registry: Arc<Registry>,
}

impl ServiceAccountAuthenticator {
    /// An authenticator over the signing key and the registry it looks objects up in.
    pub fn new(issuer: Arc<TokenIssuer>, registry: Arc<Registry>) -> Self {
        ServiceAccountAuthenticator { issuer, registry }
    }

    /// The audiences the API server accepts.
    pub fn audiences(&self) -> &[String] {
        self.issuer.audiences()
    }

    /// The signing key's issuer.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The user of a token valid for the API server, or why it is refused.
    pub async fn authenticate_token(&self, token: &str) -> Result<UserInfo, TokenError> {
        let audiences = self.issuer.audiences().to_vec();
        self.review(token, &audiences).await.map(|(user, _)| user)
    }

    /// The user of a token valid for one of `audiences`, and those of them it is valid
    /// for (`TokenReview`); or why it is refused, in upstream's words.
    pub async fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), TokenError> {
        let now = chrono::Utc::now().timestamp();
        let (verified, matched) = self.issuer.verify_for(token, now, audiences)?;
        self.check_objects(verified, token, now)
            .await
            .map(|user| (user, matched))
    }

    /// Whether the objects a verified token names still exist as it names them.
    async fn check_objects(
        &self,
        verified: Verified,
        token: &str,
        now: i64,
    ) -> Result<UserInfo, TokenError> {
        match verified {
            Verified::Bound(c) => {
                let ns = c.namespace.as_str();
                let sa = self
                    .lookup("ServiceAccount", Some(ns), &c.service_account.name)
                    .await?
                    .ok_or_else(|| {
                        TokenError(format!(
                            "serviceaccounts {:?} not found",
                            c.service_account.name
                        ))
                    })?;
                if deleted_before_leeway(&sa, now) {
                    return Err(TokenError(format!(
                        "service account {ns}/{} has been deleted",
                        c.service_account.name
                    )));
                }
                let sa_uid = str_at(&sa, "/metadata/uid");
                if sa_uid != c.service_account.uid {
                    return Err(TokenError(format!(
                        "service account UID ({sa_uid}) does not match claim ({})",
                        c.service_account.uid
                    )));
                }
                for (kind, bound, namespace) in
                    [("Secret", &c.secret, Some(ns)), ("Pod", &c.pod, Some(ns))]
                {
                    let Some(bound) = bound else { continue };
                    let obj = self
                        .lookup(kind, namespace, &bound.name)
                        .await?
                        .ok_or_else(|| {
                            TokenError("service account token has been invalidated".into())
                        })?;
                    if deleted_before_leeway(&obj, now) {
                        return Err(TokenError(
                            "service account token has been invalidated".into(),
                        ));
                    }
                    let uid = str_at(&obj, "/metadata/uid");
                    if uid != bound.uid {
                        return Err(TokenError(format!(
                            "{} UID ({uid}) does not match service account {} ref claim ({})",
                            kind.to_lowercase(),
                            kind.to_lowercase(),
                            bound.uid
                        )));
                    }
                }
                // A token bound to a node directly (not through its pod) dies with the node.
                if let (Some(node), None) = (&c.node, &c.pod) {
                    let obj = self
                        .lookup("Node", None, &node.name)
                        .await?
                        .ok_or_else(|| {
                            TokenError("service account token has been invalidated".into())
                        })?;
                    if str_at(&obj, "/metadata/uid") != node.uid {
                        return Err(TokenError("node UID does not match claim".into()));
                    }
                }
                let credential_id = (!c.id.is_empty()).then(|| format!("JTI={}", c.id));
                Ok(user_info(
                    ns,
                    &c.service_account.name,
                    sa_uid,
                    c.pod.as_ref(),
                    c.node.as_ref(),
                    credential_id,
                ))
            }
            Verified::Legacy {
                namespace,
                service_account,
                service_account_uid,
                secret,
            } => {
                let ns = namespace.as_str();
                let sa = self
                    .lookup("ServiceAccount", Some(ns), &service_account)
                    .await?
                    .ok_or_else(|| {
                        TokenError(format!("serviceaccounts {service_account:?} not found"))
                    })?;
                let sa_uid = str_at(&sa, "/metadata/uid");
                if sa_uid != service_account_uid {
                    return Err(TokenError(format!(
                        "service account UID ({sa_uid}) does not match claim ({service_account_uid})"
                    )));
                }
                let stored = self
                    .lookup("Secret", Some(ns), &secret)
                    .await?
                    .ok_or_else(|| TokenError(format!("secrets {secret:?} not found")))?;
                if meta_deleting(&stored) {
                    return Err(TokenError(format!(
                        "token secret {ns}/{secret} is being deleted"
                    )));
                }

                // Marked by upstream's legacy token clean-up (or by hand) as no longer valid.
                if stored
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(LEGACY_TOKEN_INVALID_SINCE))
                    .is_some()
                {
                    return Err(TokenError(format!(
                        "the token in secret {ns}/{secret} for service account {ns}/{service_account} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '{LEGACY_TOKEN_INVALID_SINCE}' label from the secret to re-enable it"
                    )));
                }
                let copy = stored
                    .pointer("/data/token")
                    .and_then(Value::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .unwrap_or_default();
                if copy != token.as_bytes() {
                    return Err(TokenError("token does not match server's copy".into()));
                }
                Ok(user_info(ns, &service_account, sa_uid, None, None, None))
            }
        }
    }

    /// An object by kind (core group), through a consistent read so that a deletion is
    /// seen by the very next request.
    async fn lookup(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<Value>>, TokenError> {
        let Some(res) = self.registry.resource_by_kind("", kind).cloned() else {
            return Ok(None);
        };
        match self.registry.get(&res, namespace, name, None).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(TokenError(format!(
                "looking up {kind} {name:?}: {}",
                e.message
            ))),
        }
    }
}

fn meta_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Upstream treats objects deleted more than the leeway ago as gone (graceful deletion
/// keeps pods around for a while).
fn deleted_before_leeway(obj: &Value, now: i64) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.timestamp() < now - LEEWAY_SECONDS)
}

/// WebSocket subprotocol prefix that carries a bearer token (browsers cannot set headers
/// on WebSocket requests), as upstream's `websocket.NewProtocolAuthenticator`.
const WEBSOCKET_TOKEN_PROTOCOL: &str = "base64url.bearer.authorization.k8s.io.";

/// The bearer token of a request, if it carries one: the `Authorization` header, or on
/// a WebSocket upgrade a `base64url.bearer.authorization.k8s.io.<token>` subprotocol.
fn bearer_token(req: &Parts) -> Option<String> {
    if let Some(value) = req.headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
            .filter(|t| !t.is_empty());
    }
    let upgrade = req
        .headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return None;
    }
    req.headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WEBSOCKET_TOKEN_PROTOCOL))
        .and_then(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|t| !t.is_empty())
}

#[async_trait]
impl Authenticator for ServiceAccountAuthenticator {
    async fn authenticate(&self, req: &Parts) -> Result<Option<UserInfo>, AuthnError> {
        let Some(token) = bearer_token(req) else {
            return Ok(None);
        };
        match self.authenticate_token(&token).await {
            Ok(user) => Ok(Some(user)),
            Err(e) => Err(AuthnError(e.0)),
        }
    }
}

/// Load `DATA/pki/sa.key` or create it (ECDSA P-256, PKCS#8 PEM, mode 0600) on first
/// start. Replacing it would invalidate every token handed out, so a broken file is an
/// error naming the fix rather than silently regenerated.
pub fn load_or_create_key(pki_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = pki_dir.join("sa.key");
    match std::fs::read_to_string(&path) {
        Ok(pem) => {
            TokenIssuer::from_pem(&pem).map_err(|e| {
                anyhow!(
                    "{} is not a usable service account signing key ({e}); restore it from a backup or remove it to create a new one (tokens issued so far stop working)",
                    path.display()
                )
            })?;
            Ok(pem)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .context("generating the service account signing key")?;
            let pem = key.serialize_pem();
            crate::pki::write_file_atomic(&path, pem.as_bytes(), 0o600)?;
            tracing::info!(path = %path.display(), "created service account signing key");
            Ok(pem)
        }
        Err(e) => Err(anyhow!(
            "cannot read {}: {e}; fix its permissions or pass another --data-dir",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        let dir = tempfile::tempdir().unwrap();
        let pem = load_or_create_key(dir.path()).unwrap();
        TokenIssuer::from_pem(&pem).unwrap()
    }

    fn claims(now: i64) -> BoundClaims {
        BoundClaims {
            namespace: "default".into(),
            service_account: ObjectRef {
                name: "robot".into(),
                uid: "sa-uid".into(),
            },
            audiences: vec![ISSUER.into()],
            issued_at: now,
            expires_at: now + 3600,
            id: "jti-1".into(),
            ..BoundClaims::default()
        }
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(dir.path()).unwrap();
        let second = load_or_create_key(dir.path()).unwrap();
        assert_eq!(first, second);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("sa.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("sa.key"), "garbage").unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err().to_string();
        assert!(err.contains("sa.key is not a usable"), "{err}");
    }

    #[test]
    fn bound_token_round_trips_with_upstream_claims() {
        let issuer = issuer();
        let now = chrono::Utc::now().timestamp();
        let mut c = claims(now);
        c.pod = Some(ObjectRef {
            name: "web".into(),
            uid: "pod-uid".into(),
        });
        c.node = Some(ObjectRef {
            name: "n1".into(),
            uid: "node-uid".into(),
        });
        let token = issuer.issue(&c).unwrap();
        let p = payload(&token);
        assert_eq!(p["iss"], ISSUER);
        assert_eq!(p["sub"], "system:serviceaccount:default:robot");
        assert_eq!(p["aud"], json!([ISSUER]));
        assert_eq!(p["exp"], json!(now + 3600));
        assert_eq!(p["nbf"], json!(now));
        assert_eq!(
            p["kubernetes.io"],
            json!({"namespace": "default", "node": {"name": "n1", "uid": "node-uid"},
                   "pod": {"name": "web", "uid": "pod-uid"},
                   "serviceaccount": {"name": "robot", "uid": "sa-uid"}})
        );
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], json!(issuer.key_id));
        assert_eq!(issuer.verify(&token, now).unwrap(), Verified::Bound(c));
    }

    #[test]
    fn expired_early_and_foreign_audience_tokens_are_refused() {
        let issuer = issuer();
        let now = chrono::Utc::now().timestamp();
        let token = issuer.issue(&claims(now)).unwrap();
        // Within the leeway after expiry: still valid; past it: expired.
        assert!(issuer.verify(&token, now + 3600 + 30).is_ok());
        assert_eq!(
            issuer.verify(&token, now + 3600 + 61).unwrap_err().0,
            "service account token has expired"
        );
        assert_eq!(
            issuer.verify(&token, now - 120).unwrap_err().0,
            "service account token is not valid yet"
        );
        let mut other = claims(now);
        other.audiences = vec!["vault".into()];
        let token = issuer.issue(&other).unwrap();
        let err = issuer.verify(&token, now).unwrap_err().0;
        assert!(err.contains("is invalid for the target audiences"), "{err}");
        other.audiences = vec!["vault".into(), ISSUER.into()];
        assert!(issuer.verify(&issuer.issue(&other).unwrap(), now).is_ok());
    }

    #[test]
    fn tampered_garbage_and_foreign_key_tokens_are_refused() {
        let issuer = issuer();
        let now = chrono::Utc::now().timestamp();
        let token = issuer.issue(&claims(now)).unwrap();
        // Change the subject, keep the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut p = payload(&token);
        p["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        p["sub"] = json!("system:serviceaccount:default:admin");
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&p).unwrap());
        assert!(issuer.verify(&parts.join("."), now).is_err());
        assert!(issuer.verify("garbage", now).is_err());
        assert!(issuer.verify("a.b.c", now).is_err());
        let other = self::issuer();
        assert!(other.verify(&token, now).is_err());
    }

    #[test]
    fn legacy_token_has_no_expiry_and_names_its_secret() {
        let issuer = issuer();
        let token = issuer
            .issue_legacy("default", "robot", "sa-uid", "robot-token")
            .unwrap();
        let p = payload(&token);
        assert_eq!(p["iss"], LEGACY_ISSUER);
        assert!(p.get("exp").is_none() && p.get("aud").is_none());
        assert_eq!(p["kubernetes.io/serviceaccount/secret.name"], "robot-token");
        // Years later it still verifies (revocation is by deleting the Secret).
        let later = chrono::Utc::now().timestamp() + 10 * 365 * 86400;
        assert_eq!(
            issuer.verify(&token, later).unwrap(),
            Verified::Legacy {
                namespace: "default".into(),
                service_account: "robot".into(),
                service_account_uid: "sa-uid".into(),
                secret: "robot-token".into(),
            }
        );
    }

    #[test]
    fn reviews_name_their_audiences_and_legacy_tokens_count_as_the_servers() {
        let issuer = issuer();
        let now = chrono::Utc::now().timestamp();
        let mut c = claims(now);
        c.audiences = vec!["vault".into(), "api".into()];
        let token = issuer.issue(&c).unwrap();
        let (_, matched) = issuer
            .verify_for(&token, now, &["api".into(), "other".into()])
            .unwrap();
        assert_eq!(matched, ["api"]);
        let err = issuer
            .verify_for(&token, now, &["other".into()])
            .unwrap_err();
        assert_eq!(
            err.0,
            r#"token audiences ["vault", "api"] is invalid for the target audiences ["other"]"#
        );
        let legacy = issuer.issue_legacy("default", "robot", "u", "s").unwrap();
        let (_, matched) = issuer.verify_for(&legacy, now, &[ISSUER.into()]).unwrap();
        assert_eq!(matched, [ISSUER]);
        assert!(issuer.verify_for(&legacy, now, &["vault".into()]).is_err());
        assert_eq!(
            issuer.verify("garbage", now).unwrap_err().0,
            "invalid bearer token"
        );
    }

    #[test]
    fn jwks_key_verifies_issued_tokens() {
        let issuer = issuer();
        let token = issuer
            .issue(&claims(chrono::Utc::now().timestamp()))
            .unwrap();
        let jwk = &issuer.jwks()["keys"][0];
        assert_eq!(jwk["kid"], json!(issuer.key_id));
        let d = |f: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwk[f].as_str().unwrap())
                .unwrap()
        };
        let point = [vec![4u8], d("x"), d("y")].concat();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(input.as_bytes(), &sig)
            .expect("the published key verifies the token");
        let config = issuer.openid_configuration("10.0.0.1:6443");
        assert_eq!(config["jwks_uri"], "https://10.0.0.1:6443/openid/v1/jwks");
        assert_eq!(config["issuer"], ISSUER);
    }

    #[test]
    fn user_info_is_upstreams() {
        let pod = ObjectRef {
            name: "web".into(),
            uid: "p1".into(),
        };
        let user = user_info("ns1", "robot", "u1", Some(&pod), None, Some("JTI=x".into()));
        assert_eq!(user.username, "system:serviceaccount:ns1:robot");
        assert_eq!(user.uid, "u1");
        assert_eq!(
            user.groups,
            ["system:serviceaccounts", "system:serviceaccounts:ns1"]
        );
        assert_eq!(user.extra[EXTRA_POD_NAME], ["web"]);
        assert_eq!(user.extra[EXTRA_POD_UID], ["p1"]);
        assert_eq!(user.extra[EXTRA_CREDENTIAL_ID], ["JTI=x"]);
        assert!(!user.extra.contains_key(EXTRA_NODE_NAME));
    }

    #[test]
    fn bearer_token_is_read_from_the_authorization_header() {
        let req = http::Request::builder()
            .header("Authorization", "Bearer abc.def.ghi")
            .body(())
            .unwrap();
        assert_eq!(
            bearer_token(&req.into_parts().0).as_deref(),
            Some("abc.def.ghi")
        );
        let req = http::Request::builder()
            .header("Authorization", "Basic Zm9vOmJhcg==")
            .body(())
            .unwrap();
        assert_eq!(bearer_token(&req.into_parts().0), None);
        let protocol = format!(
            "v5.channel.k8s.io, {WEBSOCKET_TOKEN_PROTOCOL}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("abc.def.ghi")
        );
        let ws = |upgrade: &str| {
            http::Request::builder()
                .header("Upgrade", upgrade)
                .header("Sec-WebSocket-Protocol", protocol.as_str())
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert_eq!(
            bearer_token(&ws("websocket")).as_deref(),
            Some("abc.def.ghi")
        );
        assert_eq!(bearer_token(&ws("h2c")), None);
    }
}
