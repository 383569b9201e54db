//! The HTTP layer: routes, content negotiation, and the translation of requests into
//! registry calls.

pub mod body;
mod handlers;
pub mod metrics_api;
pub mod node_proxy;
pub mod request_info;
mod responses;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{header, HeaderValue, StatusCode};

use crate::discovery::Discovery;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// Everything request handlers share.
pub struct AppState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Discovery documents, built once.
    pub discovery: Discovery,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Who a request comes from: client certificates, then ServiceAccount tokens.
    pub authenticators: Arc<crate::authn::AuthenticatorChain>,
    /// The ServiceAccount token authenticator, for `TokenReview`.
    pub tokens: Arc<crate::satoken::ServiceAccountAuthenticator>,
    /// Dials kubelets for logs, exec, attach, port-forward, node proxy and metrics.
    pub kubelet: node_proxy::KubeletClient,
}

/// The whole router: health, version, discovery, OpenAPI, metrics and resources.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(health))
        .route("/healthz/{*check}", get(health))
        .route("/livez/{*check}", get(health))
        .route("/readyz/{*check}", get(health))
        .route("/metrics", get(metrics))
        .route(
            crate::satoken::OPENID_CONFIGURATION_PATH,
            get(openid_configuration),
        )
        .route(crate::satoken::JWKS_PATH, get(jwks))
        .route("/openapi/v2", get(crate::discovery::openapi_v2))
        .route("/openapi/v3", get(crate::discovery::openapi_index))
        .route(
            "/openapi/v3/{*path}",
            get(crate::discovery::openapi_document),
        )
        .route("/api/v1/nodes/{name}/proxy", any(node_proxy::node_proxy))
        .route(
            "/api/v1/nodes/{name}/proxy/{*path}",
            any(node_proxy::node_proxy),
        )
        .fallback(handlers::api)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::observe,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.authenticators.clone(),
            crate::authn::authenticate_with,
        ))
        .with_state(state)
}

/// `GET /version`: kubectl's dispatcher picks its minor version from this.
async fn version() -> Response {
    let body = serde_json::json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": concat!("v1.33.0+k8rs-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    });
    responses::json(StatusCode::OK, &body)
}

/// `/healthz`, `/livez`, `/readyz`: the server answers only once it is ready.
async fn health(req: Request) -> Response {
    let verbose = req.uri().query().is_some_and(|q| q.contains("verbose"));
    let path = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    if verbose {
        let body = format!(
            "[+]ping ok\n[+]etcd ok\n[+]poststarthook/start-apiserver ok\n{path} check passed\n"
        );
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        "ok",
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`: ServiceAccount issuer discovery, so relying
/// parties can verify tokens without calling `TokenReview`.
async fn openid_configuration(State(state): State<Arc<AppState>>) -> Response {
    let body = state
        .tokens
        .issuer()
        .openid_configuration(state.discovery.server_address());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /openid/v1/jwks`: the ServiceAccount token signing key set.
async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        state.tokens.issuer().jwks().to_string(),
    )
        .into_response()
}

/// `GET /metrics` in Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .set_storage_objects(state.registry.resources().iter().filter_map(|r| {
            state
                .registry
                .cache()
                .resource(&r.storage_prefix)
                .map(|c| (r.info().qualified_resource(), c.len()))
        }));
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
