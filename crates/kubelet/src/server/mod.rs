//! The kubelet's HTTPS API (port 10250), which the API server proxies `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy` to:
//!
//! - `GET /healthz`
//! - `GET /pods`: the pods bound to this node, as the kubelet sees them
//! - `GET /containerLogs/{ns}/{pod}/{container}` ([`logs`])
//! - `GET|POST /exec/{ns}/{pod}/{container}`, `/attach/…`, `/portForward/{ns}/{pod}`
//!   ([`streams`]): WebSocket or SPDY upgrades, bridged to the runtime's streaming server
//! - `GET /stats/summary` ([`stats`]): upstream's Summary API
//!
//! Clients authenticate with a certificate signed by the cluster CA (the API server's
//! kubelet client certificate); only `/healthz` is open without one.

pub mod logs;
pub mod stats;
pub mod streams;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::runtime::Runtime;

/// The port kubelets serve on.
pub const DEFAULT_PORT: u16 = 10250;

/// The pods the kubelet runs, with the status it last computed (the kubelet core
/// implements this; the server reads pod specs and container statuses from it).
#[async_trait::async_trait]
pub trait PodSource: Send + Sync + 'static {
    /// Every pod bound to this node.
    async fn pods(&self) -> Vec<Pod>;

    /// One pod by namespace and name.
    async fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.pods().await.into_iter().find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.name.as_deref() == Some(name)
        })
    }
}

/// Pods read from the API server when a request needs them (logs, `/pods`): the pods
/// bound to `node` with the status the kubelet last reported. Streaming requests are rare,
/// so a request costs one LIST or GET rather than a watch of its own.
pub struct ApiPods {
    client: kube::Client,
    node: String,
}

impl ApiPods {
    /// Pods of `node` through `client`.
    pub fn new(client: kube::Client, node: impl Into<String>) -> ApiPods {
        ApiPods {
            client,
            node: node.into(),
        }
    }
}

#[async_trait::async_trait]
impl PodSource for ApiPods {
    async fn pods(&self) -> Vec<Pod> {
        let api: kube::Api<Pod> = kube::Api::all(self.client.clone());
        let params =
            kube::api::ListParams::default().fields(&format!("spec.nodeName={}", self.node));
        match api.list(&params).await {
            Ok(list) => list.items.into_iter().map(static_pod_of).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "kubelet server: cannot list the node's pods");
                Vec::new()
            }
        }
    }

    async fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
        let pod = api.get_opt(name).await.ok()??;
        let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&self.node);
        on_node.then_some(static_pod_of(pod))
    }
}

/// A mirror pod stands for its static pod, whose uid (the one the runtime knows the
/// pod's sandbox, containers and logs by) is the mirror's `kubernetes.io/config.mirror`
/// hash (upstream `podManager.GetPodByMirrorPod`).
fn static_pod_of(mut pod: Pod) -> Pod {
    let hash = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::static_pods::CONFIG_MIRROR))
        .cloned();
    if let Some(hash) = hash {
        pod.metadata.uid = Some(hash);
    }
    pod
}

/// The serving certificate and the CA that client certificates must chain to, all PEM.
#[derive(Clone)]
pub struct TlsMaterial {
    /// Serving certificate (chain), for the node's IP and name.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// The CA client certificates are verified against (the cluster CA).
    pub client_ca_pem: String,
}

/// Everything the server needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// The node's name (reported in the stats summary).
    pub node_name: String,
    /// Pods and their statuses.
    pub pods: Arc<dyn PodSource>,
    /// The container runtime.
    pub runtime: Arc<dyn Runtime>,
    /// Where container logs live (`/var/log/pods`): `<ns>_<pod>_<uid>/<container>/<n>.log`.
    pub log_root: PathBuf,
    /// TLS material.
    pub tls: TlsMaterial,
}

/// State shared by the handlers.
pub struct Kubelet {
    config: ServerConfig,
    stats: crate::stats::StatsProvider,
}

/// Set on requests whose connection presented a CA-signed client certificate.
#[derive(Clone, Copy)]
struct Authenticated;

/// rustls configuration: the serving certificate; client certificates optional at the
/// TLS layer (so `/healthz` answers) but verified against the CA when presented.
fn tls_config(tls: &TlsMaterial) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(tls.client_ca_pem.as_bytes()) {
        roots.add(der.context("parsing the client CA")?)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .context("building the client certificate verifier")?;
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the kubelet serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
        .context("parsing the kubelet serving key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("loading the kubelet serving certificate")?;
    // Upgrades (exec, port-forward) need HTTP/1.1; plain requests may use h2.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The router, without TLS (tests drive it directly).
pub fn router(kubelet: Arc<Kubelet>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/pods", get(pods))
        .route(
            "/containerLogs/{ns}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route(
            "/exec/{ns}/{pod}/{container}",
            get(streams::exec).post(streams::exec),
        )
        .route(
            "/attach/{ns}/{pod}/{container}",
            get(streams::attach).post(streams::attach),
        )
        .route(
            "/portForward/{ns}/{pod}",
            get(streams::port_forward).post(streams::port_forward),
        )
        .route("/stats/summary", get(stats::summary))
        .layer(axum::middleware::from_fn(require_client_cert))
        .with_state(kubelet)
}

async fn require_client_cert(req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" || req.extensions().get::<Authenticated>().is_some() {
        return next.run(req).await;
    }
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
}

async fn pods(State(k): State<Arc<Kubelet>>) -> Response {
    let items = k.config.pods.pods().await;
    let body =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A plain-text error answer, as the kubelet writes them (the API server turns a 400 into
/// a `BadRequest` Status with the text as message).
pub(crate) fn text_error(code: StatusCode, msg: impl Into<String>) -> Response {
    (
        code,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

impl Kubelet {
    /// Shared state for [`router`].
    pub fn new(config: ServerConfig) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            config,
            stats: Default::default(),
        })
    }
}

/// Serve the kubelet API on `listener` until `shutdown` resolves. Also samples container
/// CPU usage in the background so that the first `/stats/summary` has rates.
pub async fn serve(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = tls_config(&config.tls)?;
    let kubelet = Kubelet::new(config);
    let sampler = tokio::spawn(stats::sample(kubelet.clone()));
    let app = router(kubelet);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => {
                        tracing::debug!(%remote, "kubelet server: TLS handshake failed");
                        return;
                    }
                };
            let authenticated = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let service =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    if authenticated {
                        req.extensions_mut().insert(Authenticated);
                    }
                    app.clone().oneshot(req)
                });
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
    sampler.abort();
    Ok(())
}
