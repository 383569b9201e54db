//! Authentication: who is making a request.
//!
//! As upstream, a chain of [`Authenticator`]s is asked in order; the first that recognises
//! a credential names the user, who then also gets the group `system:authenticated`. A
//! credential that is presented but invalid fails the request with 401 even where anonymous
//! access would be allowed. Requests without any credential are anonymous
//! (`system:anonymous`, group `system:unauthenticated`) on the public health and version
//! endpoints and 401 elsewhere.
//!
//! The server's chain holds the client-certificate authenticator, then ServiceAccount
//! bearer tokens ([`crate::satoken::ServiceAccountAuthenticator`], added with
//! [`AuthenticatorChain::with`]), and is served through [`authenticate_with`].

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, Method, StatusCode};

use crate::tls::PeerCertificates;

/// Group every authenticated user belongs to.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// Group of anonymous requests.
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
/// User name of anonymous requests.
pub const USER_ANONYMOUS: &str = "system:anonymous";
/// `extra` key upstream uses for the fingerprint of the credential.
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// The authenticated user of a request (a request extension set by [`authenticate`]);
/// serialises like `authentication.k8s.io/v1` `UserInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    /// User name.
    pub username: String,
    /// Unique id, empty when the authenticator has none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Groups the user belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Further attributes from the authenticator.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user of requests that carry no credential.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: USER_ANONYMOUS.to_string(),
            groups: vec![GROUP_UNAUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    /// Whether this is the anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.username == USER_ANONYMOUS
    }
}

/// A credential was presented but is not valid.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthnError(pub String);

/// One way of recognising a user from a request.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// `Ok(Some(user))` when the request carries a valid credential of this kind,
    /// `Ok(None)` when it carries none, `Err` when it carries an invalid one.
    async fn authenticate(&self, req: &Parts) -> Result<Option<UserInfo>, AuthnError>;
}

/// A shared authenticator is one too (the token authenticator also serves `TokenReview`).
#[async_trait]
impl<T: Authenticator + ?Sized> Authenticator for Arc<T> {
    async fn authenticate(&self, req: &Parts) -> Result<Option<UserInfo>, AuthnError> {
        (**self).authenticate(req).await
    }
}

/// Authenticates by the verified TLS client certificate: CN is the user name, O values the
/// groups (as upstream's `CommonNameUserConversion`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertAuthenticator;

#[async_trait]
impl Authenticator for ClientCertAuthenticator {
    async fn authenticate(&self, req: &Parts) -> Result<Option<UserInfo>, AuthnError> {
        let Some(leaf) = req
            .extensions
            .get::<PeerCertificates>()
            .and_then(|p| p.leaf().cloned())
        else {
            return Ok(None);
        };
        user_from_client_cert(&leaf)
    }
}

/// Map a (verified) client certificate to its user; `None` when its CN is empty.
pub fn user_from_client_cert(der: &[u8]) -> Result<Option<UserInfo>, AuthnError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| AuthnError(format!("parsing client certificate: {e}")))?;
    let (username, groups) = crate::pki::subject_user(&cert);
    if username.is_empty() {
        return Ok(None);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let fingerprint: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let extra = BTreeMap::from([(
        EXTRA_CREDENTIAL_ID.to_string(),
        vec![format!("X509SHA256={fingerprint}")],
    )]);
    Ok(Some(UserInfo {
        username,
        uid: String::new(),
        groups,
        extra,
    }))
}

/// Authenticators asked in order.
#[derive(Clone)]
pub struct AuthenticatorChain {
    authenticators: Vec<Arc<dyn Authenticator>>,
}

impl Default for AuthenticatorChain {
    /// The client-certificate authenticator alone.
    fn default() -> Self {
        AuthenticatorChain {
            authenticators: vec![Arc::new(ClientCertAuthenticator)],
        }
    }
}

impl AuthenticatorChain {
    /// A chain with `authenticator` appended.
    pub fn with(mut self, authenticator: impl Authenticator + 'static) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }

    /// The user of a request: `Ok(Some)` authenticated, `Ok(None)` no credential at all,
    /// `Err` a credential that no authenticator accepted.
    pub async fn authenticate(&self, req: &Parts) -> Result<Option<UserInfo>, AuthnError> {
        let mut errors = Vec::new();
        for authenticator in &self.authenticators {
            match authenticator.authenticate(req).await {
                Ok(Some(mut user)) => {
                    if !user.groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
                        user.groups.push(GROUP_AUTHENTICATED.to_string());
                    }
                    return Ok(Some(user));
                }
                Ok(None) => {}
                Err(e) => errors.push(e.0),
            }
        }
        if errors.is_empty() {
            Ok(None)
        } else {
            Err(AuthnError(errors.join(", ")))
        }
    }
}

static DEFAULT_CHAIN: LazyLock<AuthenticatorChain> = LazyLock::new(AuthenticatorChain::default);

/// Middleware (`axum::middleware::from_fn`) authenticating with the default chain (client
/// certificates); inserts [`UserInfo`] as a request extension or answers 401.
pub async fn authenticate(req: Request, next: Next) -> Response {
    run_chain(&DEFAULT_CHAIN, req, next).await
}

/// Like [`authenticate`] with a given chain (`axum::middleware::from_fn_with_state`).
pub async fn authenticate_with(
    State(chain): State<Arc<AuthenticatorChain>>,
    req: Request,
    next: Next,
) -> Response {
    run_chain(&chain, req, next).await
}

async fn run_chain(chain: &AuthenticatorChain, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match chain.authenticate(&parts).await {
        Ok(Some(user)) => user,
        Ok(None) if is_public(&parts.method, parts.uri.path()) => UserInfo::anonymous(),
        Ok(None) => return unauthorized(),
        Err(e) => {
            tracing::debug!(path = parts.uri.path(), error = %e, "authentication failed");
            return unauthorized();
        }
    };
    parts.extensions.insert(user);
    next.run(Request::from_parts(parts, body)).await
}

/// Endpoints anyone may read without credentials (upstream's `system:public-info-viewer`).
fn is_public(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if matches!(path, "/version" | "/version/") {
        return true;
    }
    ["/healthz", "/livez", "/readyz"].iter().any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Upstream's 401 answer.
fn unauthorized() -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401
    });
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Pki;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn client_certificate_maps_to_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let (cert, _) = pki.issue_client_cert("jane", &["dev", "ops"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let user = user_from_client_cert(&der).unwrap().unwrap();
        assert_eq!(user.username, "jane");
        assert_eq!(user.groups, ["dev", "ops"]);
        assert_eq!(user.uid, "");
        let id = &user.extra[EXTRA_CREDENTIAL_ID][0];
        assert!(
            id.starts_with("X509SHA256=") && id.len() == "X509SHA256=".len() + 64,
            "{id}"
        );
    }

    #[tokio::test]
    async fn chain_adds_the_authenticated_group_and_reports_no_credential() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let (cert, _) = pki.issue_client_cert("jane", &["dev"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();

        let (mut parts, ()) = http::Request::new(()).into_parts();
        let chain = AuthenticatorChain::default();
        assert!(chain.authenticate(&parts).await.unwrap().is_none());

        parts.extensions.insert(PeerCertificates(vec![der].into()));
        let user = chain.authenticate(&parts).await.unwrap().unwrap();
        assert_eq!(user.groups, ["dev", GROUP_AUTHENTICATED]);
    }

    struct Rejecting;
    #[async_trait]
    impl Authenticator for Rejecting {
        async fn authenticate(&self, _: &Parts) -> Result<Option<UserInfo>, AuthnError> {
            Err(AuthnError("invalid bearer token".into()))
        }
    }

    #[tokio::test]
    async fn an_invalid_credential_is_an_error_not_anonymous() {
        let (parts, ()) = http::Request::new(()).into_parts();
        let chain = AuthenticatorChain::default().with(Rejecting);
        let err = chain.authenticate(&parts).await.unwrap_err();
        assert_eq!(err.to_string(), "invalid bearer token");
    }

    #[test]
    fn public_paths() {
        for path in [
            "/version",
            "/readyz",
            "/readyz/etcd",
            "/livez",
            "/healthz",
            "/healthz/ping",
        ] {
            assert!(is_public(&Method::GET, path), "{path}");
        }
        for path in ["/api", "/readyzz", "/versions", "/metrics", "/"] {
            assert!(!is_public(&Method::GET, path), "{path}");
        }
        assert!(!is_public(&Method::POST, "/version"));
    }

    #[test]
    fn user_info_serialises_like_upstream() {
        let json = serde_json::to_value(UserInfo::anonymous()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]})
        );
    }
}
