//! kube-rs clients for the API benchmarks, over the two transports real clients use.

use std::fmt;
use std::path::Path;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::{Body, ConfigExt};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::ServiceBuilder;

/// How benchmark clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Every client has its own HTTP/1.1 connection: what kube-rs does (it speaks
    /// HTTP/1.1 only), and client-go when HTTP/2 is disabled.
    Http1PerClient,
    /// All clients multiplex over one shared HTTP/2 connection: what client-go does by
    /// default when its components share a rest config.
    Http2Shared,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Http1PerClient => "HTTP/1.1, one connection per client (kube-rs)",
            Transport::Http2Shared => "HTTP/2, one connection shared by all clients (client-go)",
        })
    }
}

/// Reads a kubeconfig file into a kube [`Config`].
pub async fn load_config(path: &Path) -> Result<Config, kube::Error> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kube::Error::InferKubeconfig)
}

/// A stock kube-rs client: its own connection pool, HTTP/1.1.
pub fn http1_client(config: &Config) -> Result<Client, kube::Error> {
    Client::try_from(config.clone())
}

/// A kube client whose requests all go over one HTTP/2 connection (clones share it).
pub fn http2_client(config: &Config) -> Result<Client, kube::Error> {
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    // Go (client-go) sets TCP_NODELAY on every connection; without it Nagle holds a
    // request's DATA frame behind its HEADERS frame until the server's delayed ACK.
    connector.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config.rustls_client_config()?)
        .https_only()
        .enable_http2()
        .wrap_connector(connector);
    let hyper_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, Body>(https);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        // The auth layer fails with boxed errors; both arms of its option must agree.
        .map_err(tower::BoxError::from)
        .service(hyper_client);
    Ok(Client::new(service, config.default_namespace.clone()))
}

/// `count` clients over `transport`.
pub fn clients(
    config: &Config,
    transport: Transport,
    count: usize,
) -> Result<Vec<Client>, kube::Error> {
    match transport {
        Transport::Http1PerClient => (0..count).map(|_| http1_client(config)).collect(),
        Transport::Http2Shared => {
            let shared = http2_client(config)?;
            Ok(vec![shared; count])
        }
    }
}

/// Sends `GET /version` and returns the HTTP version the response came over.
pub async fn negotiated_version(client: &Client) -> Result<http::Version, kube::Error> {
    let request = http::Request::get("/version")
        .body(Body::from(Vec::new()))
        .map_err(kube::Error::HttpError)?;
    let response = client.send(request).await?;
    if !response.status().is_success() {
        return Err(kube::Error::Service(
            format!("GET /version answered {}", response.status()).into(),
        ));
    }
    Ok(response.version())
}

/// Whether `GET /readyz` answers 200.
pub async fn readyz(client: &Client) -> bool {
    let Ok(request) = http::Request::get("/readyz").body(Body::from(Vec::new())) else {
        return false;
    };
    matches!(client.send(request).await, Ok(response) if response.status() == http::StatusCode::OK)
}
