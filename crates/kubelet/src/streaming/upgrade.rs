//! Client side of an HTTP/1.1 `Upgrade: SPDY/3.1` request, as client-go's SPDY round
//! tripper sends it: used to reach the container runtime's streaming server.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// An upgraded connection.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// Why an upgrade failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The URL is not `http://host:port/path`.
    #[error("invalid streaming URL {0:?}")]
    Url(String),
    /// Connecting or the HTTP exchange failed.
    #[error("{0}")]
    Io(String),
    /// The server answered without upgrading.
    #[error("unable to upgrade connection: {0}")]
    Refused(String),
}

/// POST `url` asking to upgrade to SPDY/3.1 with one of `protocols` (in preference
/// order) as `X-Stream-Protocol-Version`; returns the connection and the chosen protocol.
pub async fn spdy(url: &str, protocols: &[&str]) -> Result<(Upgraded, String), UpgradeError> {
    let uri: http::Uri = url.parse().map_err(|_| UpgradeError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(UpgradeError::Url(url.into()));
    }
    let host = uri.host().ok_or_else(|| UpgradeError::Url(url.into()))?;
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| UpgradeError::Io(format!("dial {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| UpgradeError::Io(e.to_string()))?;
    tokio::spawn(conn.with_upgrades());
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let mut req = http::Request::post(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(http::header::HOST, authority)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "SPDY/3.1");
    for p in protocols {
        req = req.header("X-Stream-Protocol-Version", *p);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| UpgradeError::Io(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| UpgradeError::Io(e.to_string()))?;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        return Err(UpgradeError::Refused(if body.is_empty() {
            status.to_string()
        } else {
            body
        }));
    }
    let chosen = resp
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| UpgradeError::Io(e.to_string()))?;
    Ok((TokioIo::new(upgraded), chosen))
}
