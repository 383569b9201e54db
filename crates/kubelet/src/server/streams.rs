//! `/exec`, `/attach` and `/portForward`: accept kubectl's upgrade (WebSocket channels,
//! WebSocket-tunnelled SPDY, or plain SPDY), ask the runtime for a streaming URL, and
//! bridge the two sessions.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper_util::rt::TokioIo;

use super::{text_error, Kubelet};
use crate::runtime::{ContainerState, SandboxState, StreamRequest};
use crate::streaming::portforward::{self, RuntimeForwarder};
use crate::streaming::remotecommand::{self, ExecOptions, V4, V5};
use crate::streaming::websocket::{self, EXEC_PROTOCOLS, PORT_FORWARD_TUNNEL};

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn is_spdy(req: &Request) -> bool {
    req.headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("spdy/3"))
}

/// The `X-Stream-Protocol-Version` values the client offers, in its order.
fn offered_protocols(req: &Request) -> Vec<String> {
    req.headers()
        .get_all("X-Stream-Protocol-Version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .collect()
}

/// The sandbox of a pod (the ready one if several) and the pod's uid.
async fn find_sandbox(k: &Kubelet, ns: &str, pod: &str) -> Result<String, Response> {
    let mut sandboxes: Vec<_> = k
        .config
        .runtime
        .list_pod_sandboxes()
        .await
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .into_iter()
        .filter(|s| s.identity.namespace == ns && s.identity.name == pod)
        .collect();
    sandboxes.sort_by_key(|s| (s.state == SandboxState::Ready, s.created_at));
    sandboxes
        .pop()
        .map(|s| s.id)
        .ok_or_else(|| text_error(StatusCode::NOT_FOUND, "pod does not exist"))
}

/// The running instance of a container.
async fn find_container(k: &Kubelet, ns: &str, pod: &str, name: &str) -> Result<String, Response> {
    let sandbox = find_sandbox(k, ns, pod).await?;
    let mut containers: Vec<_> = k
        .config
        .runtime
        .list_containers(Some(&sandbox))
        .await
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    containers.sort_by_key(|c| (c.state == ContainerState::Running, c.attempt));
    containers.pop().map(|c| c.id).ok_or_else(|| {
        text_error(
            StatusCode::NOT_FOUND,
            format!("container not found ({name:?})"),
        )
    })
}

/// Answer a SPDY upgrade with `protocol` and run `session` on the connection.
fn spdy_upgrade<F, Fut>(mut req: Request, protocol: &str, session: F) -> Response
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => session(TokioIo::new(up)).await,
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| text_error(StatusCode::INTERNAL_SERVER_ERROR, "upgrade"))
}

async fn websocket_upgrade(req: Request) -> Result<WebSocketUpgrade, Response> {
    let (mut parts, _) = req.into_parts();
    WebSocketUpgrade::from_request_parts(&mut parts, &())
        .await
        .map_err(IntoResponse::into_response)
}

/// Serve an exec or attach session whose runtime side is at `url`.
async fn remote_command(req: Request, opts: ExecOptions, url: String) -> Response {
    if is_websocket(&req) {
        let ws = match websocket_upgrade(req).await {
            Ok(ws) => ws.protocols(EXEC_PROTOCOLS),
            Err(r) => return r,
        };
        let Some(protocol) = ws
            .selected_protocol()
            .and_then(|p| p.to_str().ok())
            .map(str::to_string)
        else {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("websocket: none of the offered subprotocols is supported; use one of {EXEC_PROTOCOLS:?}"),
            );
        };
        return ws.on_upgrade(move |socket| async move {
            websocket::serve_exec(socket, &protocol, opts, |input| {
                remotecommand::dial_runtime(&url, opts, input)
            })
            .await
        });
    }
    if is_spdy(&req) {
        let offered = offered_protocols(&req);
        // SPDY half-closes streams itself, so v4 is all a SPDY session needs.
        if !offered.iter().any(|p| p == V4 || p == V5) {
            return text_error(
                StatusCode::FORBIDDEN,
                format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [\"{V4}\"]"),
            );
        }
        return spdy_upgrade(req, V4, move |io| async move {
            remotecommand::serve_spdy(io, opts, |input| {
                remotecommand::dial_runtime(&url, opts, input)
            })
            .await
        });
    }
    text_error(StatusCode::BAD_REQUEST, "Upgrade request required")
}

/// `/exec/{ns}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1`.
pub async fn exec(
    State(k): State<Arc<Kubelet>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let q = query_pairs(&req);
    let cmd: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if cmd.is_empty() {
        return text_error(StatusCode::BAD_REQUEST, "missing command");
    }
    let opts = match ExecOptions::from_kubelet_query(&q) {
        Ok(o) => o,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let container_id = match find_container(&k, &ns, &pod, &container).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let request = StreamRequest::Exec {
        container_id,
        cmd,
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        tty: opts.tty,
    };
    match k.config.runtime.stream_url(&request).await {
        Ok(url) => remote_command(req, opts, url).await,
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `/attach/{ns}/{pod}/{container}?input=1&output=1&error=1&tty=1`.
pub async fn attach(
    State(k): State<Arc<Kubelet>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let q = query_pairs(&req);
    let opts = match ExecOptions::from_kubelet_query(&q) {
        Ok(o) => o,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let container_id = match find_container(&k, &ns, &pod, &container).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let request = StreamRequest::Attach {
        container_id,
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        tty: opts.tty,
    };
    match k.config.runtime.stream_url(&request).await {
        Ok(url) => remote_command(req, opts, url).await,
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Run a port-forward session: every kubectl pair goes through one runtime session.
async fn forward_session<IO>(io: IO, url: String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let runtime = Arc::new(RuntimeForwarder::dial(&url).await);
    portforward::serve(io, move |pair| {
        let runtime = runtime.clone();
        async move {
            match runtime.as_ref() {
                Ok(r) => r.forward(pair).await,
                Err(e) => {
                    let msg = format!("error forwarding port {}: {e}", pair.port);
                    portforward::fail(pair, &msg).await
                }
            }
        }
    })
    .await;
}

/// `/portForward/{ns}/{pod}?port=…`: WebSocket-tunnelled SPDY (kubectl ≥ 1.31) or SPDY.
pub async fn port_forward(
    State(k): State<Arc<Kubelet>>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ports: Vec<i32> = query_pairs(&req)
        .into_iter()
        .filter(|(k, _)| k == "port")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let sandbox_id = match find_sandbox(&k, &ns, &pod).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    let url = match k
        .config
        .runtime
        .stream_url(&StreamRequest::PortForward { sandbox_id, ports })
        .await
    {
        Ok(url) => url,
        Err(e) => return text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if is_websocket(&req) {
        let ws = match websocket_upgrade(req).await {
            Ok(ws) => ws.protocols([PORT_FORWARD_TUNNEL]),
            Err(r) => return r,
        };
        if ws.selected_protocol().is_none() {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("websocket: port-forward requires the {PORT_FORWARD_TUNNEL} subprotocol"),
            );
        }
        return ws.on_upgrade(move |socket| forward_session(websocket::tunnel(socket), url));
    }
    if is_spdy(&req) {
        if !offered_protocols(&req)
            .iter()
            .any(|p| p == portforward::PROTOCOL)
        {
            return text_error(
                StatusCode::FORBIDDEN,
                format!(
                    "unable to upgrade: unable to negotiate protocol: server supports [\"{}\"]",
                    portforward::PROTOCOL
                ),
            );
        }
        return spdy_upgrade(req, portforward::PROTOCOL, move |io| {
            forward_session(io, url)
        });
    }
    text_error(StatusCode::BAD_REQUEST, "Upgrade request required")
}
