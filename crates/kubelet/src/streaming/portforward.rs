//! Port-forward (`portforward.k8s.io` over SPDY): for every connection kubectl accepts
//! locally it opens a pair of streams, `streamtype: error` and `streamtype: data`, with the
//! same `port` and `requestid` headers. The kubelet pairs them up ([`serve`]) and connects
//! each pair to the runtime's streaming server ([`RuntimeForwarder`]) or, for a target it
//! can dial itself, to a TCP address ([`to_tcp`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::spdy::{header, Role, Session, Stream};

/// `X-Stream-Protocol-Version` of port-forward.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// How long the first stream of a pair waits for the second (as upstream).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

/// A data stream and its error stream for one forwarded connection.
pub struct StreamPair {
    /// The port in the pod.
    pub port: u16,
    /// kubectl's request id for the pair.
    pub request_id: String,
    /// The connection's bytes.
    pub data: Stream,
    /// Where errors for this connection are reported.
    pub error: Stream,
}

/// Serve a port-forward session on `io` (a SPDY connection, plain or tunnelled through a
/// WebSocket): pair up kubectl's streams and hand every pair to `forward`.
pub async fn serve<IO, F, Fut>(io: IO, forward: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    F: Fn(StreamPair) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (session, mut incoming) = Session::start(io, Role::Server);
    let mut pending: HashMap<String, (Stream, tokio::time::Instant)> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let request_id = header(&stream.headers, "requestid")
            .unwrap_or("")
            .to_string();
        let kind = header(&stream.headers, "streamtype")
            .unwrap_or("")
            .to_string();
        let port = header(&stream.headers, "port").and_then(|p| p.parse::<u16>().ok());
        // Forget halves whose partner never came.
        pending.retain(|_, (_, since)| since.elapsed() < PAIR_TIMEOUT);
        let Some(port) = port.filter(|p| *p > 0) else {
            let msg = format!(
                "invalid port header {:?}",
                header(&stream.headers, "port").unwrap_or("")
            );
            report(&stream, &kind, &msg).await;
            continue;
        };
        if kind != "error" && kind != "data" {
            stream.writer.reset().await;
            continue;
        }
        let other = match pending.remove(&request_id) {
            Some((other, _)) => other,
            None => {
                pending.insert(request_id, (stream, tokio::time::Instant::now()));
                continue;
            }
        };
        let (data, error) = if kind == "data" {
            (stream, other)
        } else {
            (other, stream)
        };
        tokio::spawn(forward(StreamPair {
            port,
            request_id,
            data,
            error,
        }));
    }
    session.close().await;
}

async fn report(stream: &Stream, kind: &str, msg: &str) {
    if kind == "error" {
        let _ = stream.writer.write(Bytes::from(msg.to_string())).await;
        let _ = stream.writer.close().await;
    } else {
        stream.writer.reset().await;
    }
}

/// Report a failure for one forwarded connection on its error stream and end it.
pub async fn fail(pair: StreamPair, msg: &str) {
    let _ = pair.error.writer.write(Bytes::from(msg.to_string())).await;
    let _ = pair.error.writer.close().await;
    let _ = pair.data.writer.close().await;
}

/// Copy one stream's data into another, half-closing the destination at the end.
async fn pump(mut from: super::spdy::StreamReader, to: super::spdy::StreamWriter) {
    while let Some(chunk) = from.recv().await {
        if to.write(chunk).await.is_err() {
            return;
        }
    }
    let _ = to.close().await;
}

/// Connect a pair to a TCP address (bytes both ways, half-closes passed on).
pub async fn to_tcp(pair: StreamPair, addr: std::net::SocketAddr) {
    let tcp = match tokio::net::TcpStream::connect(addr).await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod: failed to connect to {addr}: {e}",
                pair.port
            );
            return fail(pair, &msg).await;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let StreamPair {
        mut data, error, ..
    } = pair;
    let to_pod = tokio::spawn(async move {
        while let Some(chunk) = data.reader.recv().await {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if data
                    .writer
                    .write(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = data.writer.close().await;
    let _ = to_pod.await;
    let _ = error.writer.close().await;
}

/// A port-forward session on the runtime's streaming server (containerd dials the port
/// inside the pod's network namespace).
pub struct RuntimeForwarder {
    session: Session,
    next_request: AtomicU64,
}

impl RuntimeForwarder {
    /// Upgrade to SPDY at the runtime's port-forward `url`.
    pub async fn dial(url: &str) -> Result<RuntimeForwarder, String> {
        let (io, protocol) = super::upgrade::spdy(url, &[PROTOCOL])
            .await
            .map_err(|e| e.to_string())?;
        if protocol != PROTOCOL {
            return Err(format!(
                "the runtime's streaming server chose protocol {protocol:?}; {PROTOCOL} is required"
            ));
        }
        let (session, _incoming) = Session::start(io, Role::Client);
        Ok(RuntimeForwarder {
            session,
            next_request: AtomicU64::new(0),
        })
    }

    /// Forward one kubectl pair through the runtime.
    pub async fn forward(&self, pair: StreamPair) {
        let id = self
            .next_request
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let headers = |kind: &str| {
            vec![
                ("streamtype".to_string(), kind.to_string()),
                ("port".to_string(), pair.port.to_string()),
                ("requestid".to_string(), id.clone()),
            ]
        };
        let error = match self.session.open(headers("error")).await {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("error forwarding port {}: {e}", pair.port);
                return fail(pair, &msg).await;
            }
        };
        // As client-go: nothing is ever written on the error stream by this side.
        let _ = error.writer.close().await;
        let data = match self.session.open(headers("data")).await {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("error forwarding port {}: {e}", pair.port);
                return fail(pair, &msg).await;
            }
        };
        splice(pair, data, error).await;
    }
}

/// Join a kubectl pair to the runtime's pair: data both ways, the runtime's errors back.
async fn splice(pair: StreamPair, data: Stream, error: Stream) {
    let StreamPair {
        data: k_data,
        error: k_error,
        ..
    } = pair;
    let up = tokio::spawn(pump(k_data.reader, data.writer));
    let down = tokio::spawn(pump(data.reader, k_data.writer));
    let errors = tokio::spawn(pump(error.reader, k_error.writer));
    let _ = down.await;
    let _ = errors.await;
    up.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn pairs_are_forwarded_to_tcp() {
        let target = echo_server().await;
        let (a, b) = tokio::io::duplex(4096);
        tokio::spawn(serve(b, move |pair| to_tcp(pair, target)));
        let (client, _) = Session::start(a, Role::Client);
        let h = |kind: &str, id: &str| {
            vec![
                ("streamtype".to_string(), kind.to_string()),
                ("port".to_string(), "80".to_string()),
                ("requestid".to_string(), id.to_string()),
            ]
        };
        for id in ["0", "1"] {
            let mut err = client.open(h("error", id)).await.unwrap();
            err.writer.close().await.unwrap();
            let mut data = client.open(h("data", id)).await.unwrap();
            data.writer
                .write(Bytes::from(format!("ping {id}")))
                .await
                .unwrap();
            data.writer.close().await.unwrap();
            let mut got = Vec::new();
            while let Some(b) = data.reader.recv().await {
                got.extend_from_slice(&b);
            }
            assert_eq!(got, format!("ping {id}").into_bytes());
            assert!(err.reader.recv().await.is_none(), "no error reported");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_reported_on_the_error_stream() {
        let (a, b) = tokio::io::duplex(4096);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        tokio::spawn(serve(b, move |pair| to_tcp(pair, closed)));
        let (client, _) = Session::start(a, Role::Client);
        let h = |kind: &str| {
            vec![
                ("streamtype".to_string(), kind.to_string()),
                ("port".to_string(), "8080".to_string()),
                ("requestid".to_string(), "0".to_string()),
            ]
        };
        let mut err = client.open(h("error")).await.unwrap();
        let _data = client.open(h("data")).await.unwrap();
        let msg = err.reader.recv().await.unwrap();
        let msg = String::from_utf8_lossy(&msg);
        assert!(
            msg.starts_with("error forwarding port 8080 to pod"),
            "{msg}"
        );
    }
}
