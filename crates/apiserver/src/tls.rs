//! The HTTPS listener: binds the port, terminates TLS, records each connection's client
//! certificate chain for [`crate::authn`], and serves an axum `Router` over HTTP/1.1 and
//! HTTP/2 (with upgrades, for exec/attach/port-forward) until shutdown.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Install ring as the process-wide rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client certificate chain a connection presented and rustls verified against the
/// cluster CA (leaf first); empty when the client sent none. Set as a request extension
/// on every request of the connection.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

impl PeerCertificates {
    /// The client's own certificate, if it sent one.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.0.first()
    }
}

/// Why the listening socket could not be opened, worded for the person starting the server.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process listens on the port.
    #[error("port {port} on {ip} is already in use; stop the other process or pass --secure-port", port = .addr.port(), ip = .addr.ip())]
    InUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Ports below 1024 need root (or CAP_NET_BIND_SERVICE).
    #[error("no permission to listen on port {port} on {ip}; run as root or pass --secure-port above 1023", port = .addr.port(), ip = .addr.ip())]
    PermissionDenied {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The bind address is not one of this host's addresses.
    #[error("{ip} is not an address of this host; pass --bind-address with one of this host's addresses, or 0.0.0.0 for all", ip = .addr.ip())]
    AddressNotAvailable {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Anything else the operating system refused.
    #[error("cannot listen on {addr}: {source}; check --bind-address and --secure-port")]
    Other {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl BindError {
    fn from_io(addr: SocketAddr, source: std::io::Error) -> BindError {
        match source.kind() {
            ErrorKind::AddrInUse => BindError::InUse { addr },
            ErrorKind::PermissionDenied => BindError::PermissionDenied { addr },
            ErrorKind::AddrNotAvailable => BindError::AddressNotAvailable { addr },
            _ => BindError::Other { addr, source },
        }
    }
}

/// Open the listening socket (SO_REUSEADDR, so a restart does not wait for TIME_WAIT).
/// Call this early in start-up so a busy port fails fast with a clear message.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| BindError::from_io(addr, e))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| BindError::from_io(addr, e))?;
    socket.bind(addr).map_err(|e| BindError::from_io(addr, e))?;
    socket.listen(1024).map_err(|e| BindError::from_io(addr, e))
}

/// Accept TLS connections on `listener` and serve `app` on them until `shutdown`
/// resolves; then stop accepting and give in-flight requests a few seconds to finish.
///
/// Every request carries [`PeerCertificates`] and `ConnectInfo<SocketAddr>` extensions.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer = PeerCertificates(
                stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.to_vec())
                    .unwrap_or_default()
                    .into(),
            );
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                req.extensions_mut().insert(ConnectInfo(remote));
                app.clone().oneshot(req)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "stopped accepting connections; draining"
    );
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running after {}s; closing them", SHUTDOWN_GRACE.as_secs());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::{self, UserInfo};
    use crate::pki::Pki;
    use axum::routing::get;
    use axum::Extension;
    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::{BodyExt, Empty};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{PrivateKeyDer, ServerName};
    use std::net::{IpAddr, Ipv4Addr};

    #[tokio::test]
    async fn a_busy_port_gives_the_clear_error() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let err = bind(addr).unwrap_err();
        assert!(matches!(err, BindError::InUse { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "port {} on 127.0.0.1 is already in use; stop the other process or pass --secure-port",
                addr.port()
            )
        );
    }

    /// A client that trusts the cluster CA, optionally presenting a client certificate.
    fn client_config(
        pki: &Pki,
        cert: Option<(String, String)>,
        alpn: &[u8],
    ) -> Arc<rustls::ClientConfig> {
        install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let mut config = match cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    async fn request(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        path: &str,
    ) -> (StatusCode, String) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let req = http::Request::get(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        };
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn serves_tls_and_authenticates_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST), &[]).unwrap();
        let whoami = |Extension(user): Extension<UserInfo>| async move { user.username };
        let app = axum::Router::new()
            .route("/api", get(whoami))
            .route("/version", get(whoami))
            .layer(axum::middleware::from_fn(authn::authenticate));
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, pki.server_config().unwrap(), app, async {
            let _ = stopped.await;
        }));

        let admin = pki.issue_client_cert("admin", &["system:masters"]).unwrap();
        for alpn in [&b"http/1.1"[..], b"h2"] {
            let with_cert = client_config(&pki, Some(admin.clone()), alpn);
            assert_eq!(
                request(addr, with_cert, "/api").await,
                (StatusCode::OK, "admin".to_string())
            );

            let anonymous = client_config(&pki, None, alpn);
            let (status, body) = request(addr, anonymous.clone(), "/api").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let status_json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status_json["reason"], "Unauthorized");
            assert_eq!(status_json["code"], 401);
            assert_eq!(
                request(addr, anonymous, "/version").await,
                (StatusCode::OK, "system:anonymous".to_string())
            );
        }

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("serve returns promptly once idle")
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed"
        );
    }
}
